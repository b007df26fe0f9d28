// A live feed (/ws/drivers/{id} or /ws/fleet, docs/OPERATIONS.md): the token goes as a subprotocol
// ("autoins.v1", "bearer.<jwt>"), checked before the socket is accepted and never in the URL, so it stays out of
// access logs; a refused handshake (closed before "hello") with an expired token ends the session. After a drop
// it reconnects with backoff and resumes with
// ?since=<seq>:<type>:<stream_version> of the last message received, which the server answers with exactly the
// messages missed (driver feeds; the fleet feed has no history and simply resumes live).

const FATAL = { 4400: "the resume cursor was refused", 4403: "you may not watch this feed",
                4404: "this driver does not exist" };

export class LiveFeed {
  constructor(path, token, { onMessage, onStatus, onExpired }) {
    this.path = path;
    this.token = token;
    this.onMessage = onMessage;
    this.onStatus = onStatus || (() => {});
    this.onExpired = onExpired || (() => {});
    this.cursor = null;
    this.delayMs = 500;
    this.stopped = false;
    this.stats = { connects: 0, messages: 0, lastSeq: null, resumedFrom: null };
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const since = this.cursor ? `?since=${encodeURIComponent(this.cursor)}` : "";
    this.stats.resumedFrom = this.cursor;
    const ws = new WebSocket(`${scheme}//${location.host}/ws${this.path}${since}`, ["autoins.v1", `bearer.${this.token}`]);
    this.ws = ws;
    this.onStatus(this.stats.connects ? "reconnecting…" : "connecting…");
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", (event) => this.closed(ws, event));
    ws.addEventListener("error", () => {});  // a close event always follows; it decides what to do
  }

  receive(data) {
    let message;
    try { message = JSON.parse(data); } catch { return; }
    if (message.type === "hello") {
      this.stats.connects += 1;
      this.delayMs = 500;
      this.onStatus(this.cursor ? "live (resumed)" : "live");
      return;
    }
    if (message.type === "heartbeat") return;
    const messages = message.type === "fleet_batch" ? message.messages : [message];
    for (const m of messages) {
      this.stats.messages += 1;
      if (typeof m.seq === "number" && this.path !== "/fleet") {
        this.cursor = `${m.seq}:${m.type}:${m.stream_version || 0}`;
        this.stats.lastSeq = m.seq;
      }
    }
    this.onMessage(messages);
  }

  closed(ws, event) {
    if (ws !== this.ws || this.stopped) return;
    // 4401: expired or revoked while open; a refused handshake (1006) with a token past its exp: the same
    const expired = tokenExpired(this.token);
    if (event.code === 4401 || (event.code === 1006 && expired)) {
      this.onStatus("session ended"); this.onExpired(); return;
    }
    if (FATAL[event.code]) { this.onStatus(`closed: ${FATAL[event.code]}`); return; }
    this.onStatus(`disconnected; retrying in ${Math.round(this.delayMs / 100) / 10} s`);
    setTimeout(() => this.connect(), this.delayMs);
    this.delayMs = Math.min(this.delayMs * 2, 10_000);
  }

  // Tests and the "reconnect" button: drop the socket as a network would; the feed resumes by itself.
  drop() { if (this.ws) this.ws.close(4000, "dropped by the viewer"); }

  stop() { this.stopped = true; if (this.ws) this.ws.close(1000, "viewer left"); }
}

function tokenExpired(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return typeof claims.exp === "number" && claims.exp * 1000 <= Date.now();
  } catch {
    return true;
  }
}
