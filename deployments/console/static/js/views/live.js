// The driver's live view: their position as it arrives on /ws/drivers/{id}, resumed after a reconnect.
import { session } from "../api.js";
import { isNotable, liveEventText } from "../events.js";
import { h } from "../format.js";
import { LiveFeed } from "../feed.js";
import { createMap, L } from "../map.js";

export async function liveView({ main, user, config, go }) {
  const status = h("p", { class: "status", role: "status", "aria-live": "polite", "data-testid": "feed-status" },
    "connecting…");
  const where = h("p", { "data-testid": "live-position" }, "Waiting for your next position…");
  const list = h("ol", { "aria-label": "Recent events" });
  const mapElement = h("div", { class: "map", role: "region", "aria-label": "Map of your live position" });
  const reconnect = h("button", { type: "button", class: "secondary" }, "Reconnect");
  main.append(h("h1", {}, "Live"), status, where, mapElement, reconnect,
    h("h2", {}, "Recent events"), h("div", { class: "side" }, list));
  const map = createMap(mapElement, config);
  let marker = null, centred = false;
  const stats = window.__consoleStats.live = { positions: 0, lastSeq: null, events: 0 };
  const feed = new LiveFeed(`/drivers/${encodeURIComponent(user.driverId)}`, session().token, {
    onStatus: (text) => { status.textContent = `Feed: ${text}`; },
    onExpired: () => go("#/login?expired=1"),
    onMessage: (messages) => {
      for (const m of messages) {
        stats.lastSeq = m.seq;
        if (m.type === "position") {
          stats.positions += 1;
          const at = [m.lat, m.lon];
          if (!marker) marker = L.circleMarker(at, { radius: 8, color: "#fff", weight: 2, fillColor: "#0a58ca",
                                                      fillOpacity: 1, className: "live-marker" }).addTo(map);
          else marker.setLatLng(at);
          if (!centred) { map.setView(at, 14); centred = true; }
          const speed = m.speed_kmh === null ? "speed unknown" : `${Math.round(m.speed_kmh)} km/h`;
          where.textContent = `At ${m.lat.toFixed(5)}, ${m.lon.toFixed(5)}, ${speed}, `
            + `${new Date(m.ts_ms).toLocaleTimeString()}.`;
        } else if (isNotable(m)) {
          stats.events += 1;
          list.prepend(h("li", {}, liveEventText(m)));
          while (list.children.length > 50) list.lastChild.remove();
        }
      }
    },
  });
  stats.feed = feed.stats;
  window.__consoleFeed = feed;
  reconnect.addEventListener("click", () => feed.drop());
  return () => { feed.stop(); map.remove(); };
}
