// The console's shell: hash routes, the navigation for the signed-in role, one view at a time (each returns a
// cleanup that stops its feeds and maps), errors shown as plain messages, and stats for tests (window.__consoleStats).
import { ApiError, logout, session, setExpiredHandler } from "./api.js";
import { h } from "./format.js";
import { fleetView } from "./views/fleet.js";
import { liveView } from "./views/live.js";
import { loginView } from "./views/login.js";
import { portalView } from "./views/portal.js";
import { tripView } from "./views/trip.js";

window.__consoleStats = window.__consoleStats || {};
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const notice = document.getElementById("notice");
let cleanup = null;
let config = { tile_url: "", tile_attribution: "" };

export function showError(error) {
  notice.textContent = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  notice.hidden = false;
}

export function clearError() { notice.hidden = true; notice.textContent = ""; }

export function go(hash) { if (location.hash === hash) render(); else location.hash = hash; }

setExpiredHandler(() => {
  const next = "#/login?expired=1";
  if (!location.hash.startsWith("#/login")) location.hash = next;
});

function homeFor(user) { return user && user.role === "admin" ? "#/fleet" : "#/portal"; }

function renderNav(user) {
  nav.replaceChildren();
  if (!user) return;
  const links = user.role === "admin"
    ? [["#/fleet", "Fleet"]]
    : [["#/portal", "My score & trips"], ["#/live", "Live"]];
  for (const [href, text] of links) nav.append(h("a", { href }, text));
  nav.append(h("span", { class: "who" }, user.role === "admin" ? "admin" : user.driverId));
  nav.append(h("button", { type: "button", class: "secondary", onclick: () => { logout(); go("#/login"); } },
    "Log out"));
}

async function render() {
  if (cleanup) { try { cleanup(); } catch { /* a view's own teardown must not block the next */ } }
  cleanup = null;
  clearError();
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const user = session();
  renderNav(user);
  const parts = path.split("/").filter(Boolean);
  window.__consoleStats.view = parts[0] || "home";
  if (!user && parts[0] !== "login") { go("#/login"); return; }
  const context = { main, user, params, config, go, showError };
  main.replaceChildren();
  try {
    if (parts[0] === "login") cleanup = loginView(context, homeFor);
    else if (parts[0] === "portal") cleanup = await portalView(context);
    else if (parts[0] === "trip" && parts[1]) cleanup = await tripView(context, decodeURIComponent(parts[1]));
    else if (parts[0] === "live") cleanup = await liveView(context);
    else if (parts[0] === "fleet") cleanup = await fleetView(context);
    else { go(homeFor(user)); return; }
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;  // the expired handler took us to login
    showError(error);
  }
  window.__consoleStats.rendered = location.hash;
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

async function start() {
  try {
    const response = await fetch("/console/config.json");
    if (response.ok) config = await response.json();
  } catch { /* defaults: no tiles */ }
  window.addEventListener("hashchange", render);
  render();
}

start();
