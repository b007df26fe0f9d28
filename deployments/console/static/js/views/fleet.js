// The admins' fleet view: every active vehicle from /ws/fleet on one canvas layer (updates coalesced per
// animation frame), recent harsh events and scores, the dashboard's counts and the risk distribution.
import { get, session } from "../api.js";
import { barChart } from "../chart.js";
import { isNotable, liveEventText } from "../events.js";
import { h } from "../format.js";
import { LiveFeed } from "../feed.js";
import { createMap, percentile, VehicleLayer } from "../map.js";

const LIST_LIMIT = 50;

export async function fleetView({ main, config, go }) {
  const [dashboard, distribution] = await Promise.all([
    get("/api/v1/admin/dashboard"), get("/api/v1/admin/analytics/risk-distribution"),
  ]);
  const status = h("p", { class: "status", role: "status", "aria-live": "polite", "data-testid": "feed-status" },
    "connecting…");
  const vehicles = h("span", { "data-testid": "vehicle-count" }, "0");
  const list = h("ol", { "aria-label": "Recent harsh events and scores", "data-testid": "fleet-events" });
  const mapElement = h("div", { class: "map", role: "region", "aria-label": "Map of the fleet's vehicles" });
  const fit = h("button", { type: "button", class: "secondary" }, "Show all vehicles");
  main.append(
    h("h1", {}, "Fleet"), counts(dashboard),
    h("div", { class: "fleet" },
      h("section", { "aria-label": "Live map" }, status,
        h("p", {}, "Vehicles seen: ", vehicles, " ", fit), mapElement),
      h("section", { class: "side", "aria-labelledby": "events-title" },
        h("h2", { id: "events-title" }, "Recent events and scores"), list)),
    h("h2", {}, "Drivers by risk band"),
    barChart(distribution.items.map((b) => ({ label: `band ${b.band}`, value: b.drivers })),
      { title: "Number of drivers in each risk band" }));

  const map = createMap(mapElement, config, { zoomAnimation: false });
  const stats = window.__consoleStats.fleet = {
    frames: 0, draws: 0, updatesApplied: 0, vehicles: 0, messages: 0, workMs: [], drawMs: [], intervalMs: [],
    summary() {
      return { frames: this.frames, draws: this.draws, vehicles: this.vehicles, updatesApplied: this.updatesApplied,
               work_p50_ms: percentile(this.workMs, 0.5), work_p95_ms: percentile(this.workMs, 0.95),
               draw_p50_ms: percentile(this.drawMs, 0.5), draw_p95_ms: percentile(this.drawMs, 0.95),
               draw_max_ms: this.drawMs.length ? Math.max(...this.drawMs) : null, draw_samples: this.drawMs.length,
               interval_p50_ms: percentile(this.intervalMs, 0.5), interval_p95_ms: percentile(this.intervalMs, 0.95),
               samples: this.workMs.length };
    },
    reset() {
      for (const buffer of [this.workMs, this.drawMs, this.intervalMs]) buffer.length = 0;
      this.frames = 0; this.draws = 0;
    },
  };
  const layer = new VehicleLayer(stats).addTo(map);
  let fitted = false, pendingRows = [], listTimer = null;
  const fitAll = () => { const b = layer.bounds(); if (b) map.fitBounds(b, { padding: [20, 20] }); };
  fit.addEventListener("click", fitAll);

  // The side list is text: redrawn at most twice a second, however many events arrive.
  const flushList = () => {
    listTimer = null;
    for (const text of pendingRows.splice(0)) list.prepend(h("li", {}, text));
    while (list.children.length > LIST_LIMIT) list.lastChild.remove();
    vehicles.textContent = String(layer.vehicles.size);
    if (!fitted && layer.vehicles.size) { fitAll(); fitted = true; }
  };
  const receive = (messages) => {
    for (const m of messages) {
      stats.messages += 1;
      if (m.type === "position") layer.update(m);
      else if (isNotable(m)) pendingRows.push(liveEventText(m));
    }
    if (pendingRows.length > LIST_LIMIT) pendingRows = pendingRows.slice(-LIST_LIMIT);
    if (!listTimer) listTimer = setTimeout(flushList, 500);
  };
  const feed = new LiveFeed("/fleet", session().token, {
    onStatus: (text) => { status.textContent = `Fleet feed: ${text}`; },
    onExpired: () => go("#/login?expired=1"),
    onMessage: receive,
  });
  // Benchmarks feed synthetic fleets through the same path as the socket's messages.
  window.__consoleFleet = {
    receive, feed, map,
    snapshot: () => Object.fromEntries([...layer.vehicles].map(([d, v]) => [d, [v.lat, v.lon, v.seq]])),
  };
  return () => { feed.stop(); if (listTimer) clearTimeout(listTimer); map.remove(); };
}

function counts(d) {
  const policies = Object.entries(d.policies_by_status || {}).map(([k, v]) => `${v} ${k}`).join(", ") || "none";
  const rows = [
    ["Drivers", `${d.drivers} (${d.active_drivers} active)`], ["Policies", policies], ["Trips", String(d.trips)],
    ["Average risk score", d.average_risk_score === null ? "—" : d.average_risk_score.toFixed(1)],
    ["Events in the last hour", String(d.events_last_hour)],
  ];
  return h("dl", { class: "figures", "data-testid": "dashboard" },
    rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}
