// Words for the live feeds' event messages (the domain events' tags, docs/OPERATIONS.md).
const WORDS = {
  harsh_braking_detected: "harsh braking", harsh_acceleration_detected: "harsh acceleration",
  harsh_cornering_detected: "harsh cornering", speeding_detected: "speeding", phone_use_detected: "phone use",
  crash_detected: "possible crash", trip_started: "trip started", trip_ended: "trip ended",
};

export function liveEventText(m) {
  const p = m.payload || {};
  const at = new Date(m.ts_ms).toLocaleTimeString();
  if (m.type === "risk_scored") return `${at} ${m.driver_id}: scored ${Number(p.score).toFixed(1)} (band ${p.band})`;
  if (m.type === "premium_quoted") return `${at} ${m.driver_id}: premium now ${p.premium} ${p.currency || ""}`;
  const grade = p.grade ? ` (${p.grade})` : "";
  return `${at} ${m.driver_id}: ${WORDS[m.type] || m.type.replace(/_/g, " ")}${grade}`;
}

export function isNotable(m) {
  return m.type !== "position" && m.type !== "trip_started" && m.type !== "trip_ended";
}
