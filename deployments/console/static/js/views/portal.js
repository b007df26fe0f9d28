// The driver's portal: score with its credibility and top factors in words, premium with the next band's forecast,
// and the trips, a page at a time.
import { get } from "../api.js";
import { duration, factorInWords, h, km, money, percent, when } from "../format.js";

const PAGE_SIZE = 10;

export async function portalView({ main, params }) {
  const page = Math.max(1, Number.parseInt(params.get("page") || "1", 10) || 1);
  const [me, score, quote, trips] = await Promise.all([
    get("/api/v1/drivers/me"), get("/api/v1/risk/me/score"), get("/api/v1/policies/me/quote"),
    get(`/api/v1/drivers/me/trips?page=${page}&page_size=${PAGE_SIZE}`),
  ]);
  main.append(
    h("h1", {}, `Hello, ${me.first_name}`),
    h("div", { class: "cards" }, scoreCard(score), premiumCard(quote)),
    h("h2", { id: "trips-title" }, "Your trips"),
    tripsTable(trips),
    pager(trips),
  );
  return null;
}

function scoreCard(score) {
  const own = score.source === "prior"
    ? "No trip of yours has been scored yet: this is the average of all drivers until you drive."
    : `${percent(score.credibility)} of this score comes from your own driving; the rest is the average driver's, `
      + "a share that grows as you drive more.";
  const factors = (score.top_factors || []).filter((f) => f.name);
  return h("section", { class: "card", "aria-labelledby": "score-title", "data-testid": "score" },
    h("h2", { id: "score-title" }, "Risk score"),
    h("p", {}, h("span", { class: "big", "data-testid": "score-value" }, score.score.toFixed(1)),
      ` / 100, band ${score.band} (lower is safer)`),
    h("p", { "data-testid": "credibility" }, own),
    factors.length ? h("h3", {}, "What moves it most") : null,
    factors.length ? h("ul", { class: "plain" }, factors.slice(0, 5).map((f) => h("li", {}, factorInWords(f)))) : null,
    h("p", { class: "muted" }, score.scored_at ? `Scored ${when(score.scored_at)}, model ${score.model_version}.`
      : `Model ${score.model_version}.`));
}

function premiumCard(q) {
  const lines = [];
  if (q.previous_premium !== null && q.previous_premium !== undefined) {
    lines.push(`Before this score it was ${money(q.previous_premium, q.currency)}.`);
  }
  if (q.cap_applied) lines.push(`The change was capped (${q.cap_direction || "limited"}) so it moves gradually.`);
  lines.push(`It is priced on about ${Math.round(q.annual_km).toLocaleString()} km a year.`);
  if (q.better_band) {
    const saving = q.saving_at_better_band !== null ? `, saving ${money(q.saving_at_better_band, q.currency)}` : "";
    lines.push(`Lower your score by ${Number(q.score_drop_to_better_band).toFixed(1)} points to reach band `
      + `${q.better_band}: the premium would be ${money(q.premium_at_better_band, q.currency)}${saving}.`);
  } else {
    lines.push("You are in the best band already.");
  }
  if (q.worse_band) {
    lines.push(`If your score rose by ${Number(q.score_rise_to_worse_band).toFixed(1)} points (band ${q.worse_band}), `
      + `it would be ${money(q.premium_at_worse_band, q.currency)}.`);
  }
  return h("section", { class: "card", "aria-labelledby": "premium-title", "data-testid": "premium" },
    h("h2", { id: "premium-title" }, "Yearly premium"),
    h("p", {}, h("span", { class: "big", "data-testid": "premium-value" }, money(q.premium, q.currency)),
      ` (band ${q.band})`),
    h("ul", { class: "plain" }, lines.map((line) => h("li", {}, line))));
}

function tripsTable(trips) {
  if (!trips.items.length) return h("p", { "data-testid": "no-trips" }, "No trips yet.");
  const rows = trips.items.map((t) => h("tr", {},
    h("td", {}, h("a", { href: `#/trip/${t.trip_id}`, "data-testid": "trip-link" }, when(t.start_time))),
    h("td", {}, km(t.distance_m)), h("td", {}, duration(t.duration_s)),
    h("td", {}, String(t.harsh_braking_count + t.harsh_acceleration_count + t.harsh_cornering_count)),
    h("td", {}, t.speeding_moderate_s + t.speeding_severe_s > 0
      ? duration(t.speeding_moderate_s + t.speeding_severe_s) : "none")));
  return h("div", { class: "table-wrap" }, h("table", { "aria-labelledby": "trips-title" },
    h("thead", {}, h("tr", {}, ["Started", "Distance", "Duration", "Harsh events", "Speeding"].map(
      (c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows)));
}

function pager(trips) {
  const pages = Math.max(1, Math.ceil(trips.total / trips.page_size));
  const link = (page, text) => h("a", { href: `#/portal?page=${page}`, "aria-label": `${text} page` }, text);
  return h("nav", { class: "pager", "aria-label": "Trip pages" },
    trips.page > 1 ? link(trips.page - 1, "Previous") : null,
    h("span", {}, `Page ${trips.page} of ${pages} (${trips.total} trips)`),
    trips.page < pages ? link(trips.page + 1, "Next") : null);
}
