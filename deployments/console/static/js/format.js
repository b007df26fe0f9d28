// Plain words and numbers for people, not field names.

const FACTORS = {
  trip_count: "how many trips you drove",
  exposure_km: "how far you drove",
  total_hours: "how long you spent driving",
  annual_km: "your yearly mileage",
  avg_speed_kmh: "your average speed",
  harsh_braking_per_100km: "harsh braking",
  harsh_acceleration_per_100km: "harsh acceleration",
  harsh_cornering_per_100km: "harsh cornering",
  crash_count: "detected crashes",
  night_share: "driving at night",
  speeding_moderate_share: "driving somewhat over the limit",
  speeding_severe_share: "driving far over the limit",
  phone_use_share: "using the phone while moving",
  idle_share: "time idling",
};

export function factorInWords(factor) {
  const what = FACTORS[factor.name] || factor.name.replace(/_/g, " ");
  if (Math.abs(factor.contribution) < 0.005) return `${capital(what)}: about average, no effect.`;
  const direction = factor.contribution > 0 ? "raises" : "lowers";
  const pct = Math.round((Math.exp(Math.abs(factor.contribution)) - 1) * 100);
  return `${capital(what)} ${direction} your expected claims by about ${pct} % compared with the average driver.`;
}

export function capital(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

export function money(value, currency) {
  const number = Number(value);
  if (!Number.isFinite(number)) return "—";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "EUR" }).format(number);
  } catch {
    return `${number.toFixed(2)} ${currency || ""}`.trim();
  }
}

export function km(metres) { return `${(Number(metres) / 1000).toFixed(1)} km`; }

export function duration(seconds) {
  const s = Math.round(Number(seconds) || 0);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : `${m} min ${s % 60} s`;
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function percent(share) { return `${Math.round(Number(share) * 100)} %`; }

export const EPISODE_WORDS = {
  harsh_braking: "Harsh braking", harsh_acceleration: "Harsh acceleration", harsh_cornering: "Harsh cornering",
  speeding: "Speeding", phone_use: "Phone use", crash: "Possible crash",
};

// Build DOM without innerHTML on data: h("p", {class: "x"}, "text", child).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
