// The console's only door to the system: the existing REST routes, called with the user's own token.
// A 401 anywhere ends the session and goes back to the login page; every other error becomes a readable message.

const TOKEN_KEY = "autoins.token";
let onExpired = () => {};

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export function setExpiredHandler(handler) { onExpired = handler; }

export function session() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return null;
  const claims = decodeClaims(token);
  if (!claims || (claims.exp && claims.exp * 1000 <= Date.now())) {
    sessionStorage.removeItem(TOKEN_KEY);
    return null;
  }
  return { token, role: claims.role, driverId: claims.driver_id, user: claims.sub };
}

export function logout() { sessionStorage.removeItem(TOKEN_KEY); }

// Claims are read for display and navigation only; the API decides what each token may read.
function decodeClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return null;
  }
}

export async function login(username, password) {
  const body = await request("POST", "/api/v1/auth/login", { username, password }, { anonymous: true });
  sessionStorage.setItem(TOKEN_KEY, body.access_token);
  return session();
}

export function get(path) { return request("GET", path); }

async function request(method, path, body, { anonymous = false } = {}) {
  const headers = { Accept: "application/json" };
  const current = session();
  if (!anonymous) {
    if (!current) { expire(); throw new ApiError(401, "Your session has ended: please log in again."); }
    headers.Authorization = `Bearer ${current.token}`;
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Check the connection and try again.");
  }
  const payload = await response.json().catch(() => null);
  if (response.ok) return payload;
  if (response.status === 401 && !anonymous) {
    expire();
    throw new ApiError(401, "Your session has ended: please log in again.");
  }
  throw new ApiError(response.status, readable(response, payload));
}

function expire() { logout(); onExpired(); }

function readable(response, payload) {
  const retry = response.headers.get("Retry-After");
  const wait = retry ? ` Try again in ${retry} s.` : "";
  let detail = payload && (payload.message || payload.detail);
  if (Array.isArray(detail)) detail = detail.map((d) => `${d.field || "request"}: ${d.msg}`).join("; ");
  const text = typeof detail === "string" && detail ? detail : response.statusText || "request failed";
  const prefix = {
    401: "Wrong username or password.", 403: "You are not allowed to see this.", 404: "Not found:",
    429: "Too many attempts.", 503: "The service is busy or a backing service is down.",
  }[response.status];
  if (response.status === 401 || response.status === 403) return `${prefix} (${text})`;
  return `${prefix ? prefix + " " : ""}${text}${response.status >= 500 ? ` (HTTP ${response.status})` : ""}.${wait}`
    .replace(/\.\.$/, ".");
}
