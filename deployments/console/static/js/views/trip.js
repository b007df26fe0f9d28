// One trip: its route (GET /trips/{id}/route, GeoJSON) on a map, its episodes (GET /trips/{id}/events) as markers
// coloured by grade, speeding stretches highlighted, and the trip's figures.
import { get } from "../api.js";
import { duration, EPISODE_WORDS, h, km, when } from "../format.js";
import { createMap, GRADE_COLOURS, L, SPEEDING_COLOUR } from "../map.js";

const UNGRADED = "#607d8b";

export async function tripView({ main, config }, tripId) {
  const id = encodeURIComponent(tripId);
  const [trip, route, episodes] = await Promise.all([
    get(`/api/v1/trips/${id}`), get(`/api/v1/trips/${id}/route`), allEpisodes(id),
  ]);
  const mapElement = h("div", { class: "map", id: "trip-map", role: "region",
                                "aria-label": "Map of the trip's route and events" });
  main.append(
    h("p", {}, h("a", { href: "#/portal" }, "← Back to your trips")),
    h("h1", {}, `Trip of ${when(trip.start_time)}`),
    legend(), mapElement, figures(trip, route),
    h("h2", { id: "episodes-title" }, `Events on this trip (${episodes.length})`),
    episodesTable(episodes));
  const map = createMap(mapElement, config);
  const stats = window.__consoleStats.trip = { routePoints: 0, markers: 0, speedingStretches: 0 };
  const line = drawRoute(map, route, stats);
  drawEpisodes(map, episodes, line, stats);
  return () => map.remove();
}

async function allEpisodes(id) {
  const items = [];
  for (let page = 1; page <= 10; page += 1) {  // 1,000 episodes at most: a trip's page of the map stays readable
    const body = await get(`/api/v1/trips/${id}/events?page=${page}&page_size=100`);
    items.push(...body.items);
    if (items.length >= body.total || !body.items.length) break;
  }
  return items;
}

function drawRoute(map, route, stats) {
  const coordinates = route.geometry ? route.geometry.coordinates : [];
  const latlngs = coordinates.map(([lon, lat]) => [lat, lon]);
  stats.routePoints = latlngs.length;
  if (latlngs.length < 2) return latlngs;
  const line = L.polyline(latlngs, { color: "#0a58ca", weight: 4, className: "route-line" }).addTo(map);
  map.fitBounds(line.getBounds(), { padding: [20, 20] });
  return latlngs;
}

function drawEpisodes(map, episodes, latlngs, stats) {
  const placed = [];
  for (const e of episodes) {
    if (e.type === "speeding" && latlngs.length >= 2 && e.lat !== null) {
      L.polyline(speedingStretch(latlngs, e), { color: SPEEDING_COLOUR, weight: 8, opacity: 0.7,
                                                className: "speeding-stretch" })
        .bindTooltip(episodeText(e)).addTo(map);
      stats.speedingStretches += 1;
    }
    if (e.lat === null || e.lon === null || e.type === "speeding") continue;
    const colour = GRADE_COLOURS[e.grade] || UNGRADED;
    L.circleMarker([e.lat, e.lon], { radius: 7, color: "#fff", weight: 2, fillColor: colour, fillOpacity: 0.95,
                                     className: `episode-marker grade-${e.grade || "none"}` })
      .bindTooltip(episodeText(e)).addTo(map);
    placed.push([e.lat, e.lon]);
    stats.markers += 1;
  }
  if (latlngs.length < 2 && placed.length) map.fitBounds(L.latLngBounds(placed), { padding: [20, 20] });
}

// The route is simplified and carries no times, so a speeding stretch is drawn from the route point nearest to
// where it began, along the route for the distance driven at that speed for its duration (an approximation).
export function speedingStretch(latlngs, e) {
  let start = 0, best = Infinity;
  latlngs.forEach(([lat, lon], i) => {
    const d = metres([lat, lon], [e.lat, e.lon]);
    if (d < best) { best = d; start = i; }
  });
  const length = (Number(e.duration_s) || 0) * (Number(e.peak_value) || 0) / 3.6;
  const stretch = [latlngs[start]];
  let travelled = 0;
  for (let i = start + 1; i < latlngs.length && (travelled < length || stretch.length < 2); i += 1) {
    travelled += metres(latlngs[i - 1], latlngs[i]);
    stretch.push(latlngs[i]);
  }
  if (stretch.length < 2 && start > 0) stretch.unshift(latlngs[start - 1]);
  return stretch;
}

function metres([lat1, lon1], [lat2, lon2]) {
  const rad = Math.PI / 180, dLat = (lat2 - lat1) * rad, dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 12_742_000 * Math.asin(Math.sqrt(a));
}

function episodeText(e) {
  const grade = e.grade ? `, ${e.grade}` : "";
  const peak = e.peak_value !== null ? ` — peak ${Number(e.peak_value).toFixed(1)} ${e.peak_unit}` : "";
  const limit = e.speed_limit_kmh ? ` (limit ${Math.round(e.speed_limit_kmh)} km/h)` : "";
  return `${EPISODE_WORDS[e.type] || e.type}${grade}${peak}${limit} at ${when(e.start_time)}`;
}

function legend() {
  const item = (cls, text) => h("span", {}, h("span", { class: `swatch ${cls}`, "aria-hidden": "true" }), text);
  return h("div", { class: "legend", "aria-label": "Legend" }, item("low", "low"), item("medium", "medium"),
    item("high", "high"), item("speeding", "speeding stretch"));
}

function figures(trip, route) {
  const grades = trip.harsh_by_grade || {};
  const byGrade = ["braking", "acceleration", "cornering"].map((kind) => {
    const g = grades[kind] || { low: 0, medium: 0, high: 0 };
    return `${kind}: ${g.high} high, ${g.medium} medium, ${g.low} low`;
  });
  const flags = trip.quality_flags && trip.quality_flags.length
    ? trip.quality_flags.map((f) => f.replace(/_/g, " ")).join("; ") : "none";
  const props = route.properties || {};
  const rows = [
    ["Distance", km(trip.distance_m)], ["Duration", duration(trip.duration_s)],
    ["Average / top speed", `${Math.round(trip.avg_speed_kmh)} / ${Math.round(trip.max_speed_kmh)} km/h`],
    ["Harsh events by grade", byGrade.join(" · ")],
    ["Speeding", `${duration(trip.speeding_moderate_s)} moderate, ${duration(trip.speeding_severe_s)} severe`],
    ["Night driving", duration(trip.night_s)], ["Phone use while moving", duration(trip.phone_use_moving_s)],
    ["Ended by", trip.end_reason.replace(/_/g, " ")], ["Data quality notes", flags],
    ["Route", `${props.points_out ?? 0} of ${props.points_in ?? 0} positions drawn`
      + (props.truncated ? " (the trip was too long to draw whole)" : "")],
  ];
  return h("dl", { class: "figures", "data-testid": "trip-figures" },
    rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function episodesTable(episodes) {
  if (!episodes.length) return h("p", {}, "No events on this trip.");
  return h("div", { class: "table-wrap" }, h("table", { "aria-labelledby": "episodes-title" },
    h("thead", {}, h("tr", {}, ["When", "What", "Grade", "Peak", "Lasted"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, episodes.map((e) => h("tr", {},
      h("td", {}, when(e.start_time)), h("td", {}, EPISODE_WORDS[e.type] || e.type),
      h("td", { class: e.grade ? `grade-${e.grade}` : "" }, e.grade || (e.band ? e.band : "—")),
      h("td", {}, e.peak_value !== null ? `${Number(e.peak_value).toFixed(1)} ${e.peak_unit}` : "—"),
      h("td", {}, duration(e.duration_s)))))));
}
