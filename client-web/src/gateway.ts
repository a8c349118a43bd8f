// gateway keeps one WebSocket session to the node's gateway (spec/client-api.md §3): heartbeats,
// Identify, Resume after a drop, and reconnection with backoff. It hands every dispatch to onDispatch.

/** Every intent group the client needs (guilds, members, presences, voice, messages, reactions, typing, DMs, content). */
export const INTENTS =
  (1 << 0) | (1 << 1) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 15);

/** Connection status shown in the UI banner. */
export type GatewayStatus = "connecting" | "connected" | "reconnecting" | "offline";

/** Close codes after which resuming or reconnecting makes no sense (bad token, bad intents, bad version). */
const FATAL = new Set([4004, 4010, 4011, 4012, 4013, 4014]);

/** WS_FAILURES_BEFORE_POLL is how many WebSocket attempts in a row may fail before Hello
 * before the client falls back to HTTP long-polling (spec/client-api.md §3.5). */
const WS_FAILURES_BEFORE_POLL = 3;
/** A WebSocket that has not reached READY or RESUMED this long after opening is closed and
 * opened again, so that a stalled handshake (a node busy restarting, a proxy that swallowed a
 * frame) does not leave the page on "Connecting" for good. (The "Connecting" page seen after
 * reloads in the DM e2e was not that: READY had arrived before the app subscribed to the store;
 * see useTopics.) */
const HANDSHAKE_TIMEOUT_MS = 10000;

/** Gateway owns its socket or poll loop and its timers; close() stops them all. It speaks the
 * WebSocket gateway, or long-polling when WebSockets do not get through (or when
 * localStorage "hearth.transport" is "poll"). */
export class Gateway {
  private ws: WebSocket | null = null;
  /** mode is the transport in use. */
  mode: "ws" | "poll" = localStorage.getItem("hearth.transport") === "poll" ? "poll" : "ws";
  private wsFailures = 0;
  /** Whether the current connection has reached READY or RESUMED. */
  private ready = false;
  /** pollGen identifies the running poll loop; bumping it stops that loop. */
  private pollGen = 0;
  private seq: number | null = null;
  private sessionId: string | null = null;
  private resumeUrl: string | null = null;
  private hbTimer: number | undefined;
  private retryTimer: number | undefined;
  private acked = true;
  private attempts = 0;
  private stopped = false;
  /** retryAt is when the next reconnect attempt happens (ms epoch), 0 when none is scheduled. */
  retryAt = 0;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly onDispatch: (t: string, d: any) => void,
    private readonly onStatus: (s: GatewayStatus) => void,
    private readonly onFatal: (code: number) => void,
  ) {}

  /** start opens the first connection. */
  start() {
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("pagehide", this.onHide);
    this.connect(false);
  }

  /** close ends the session for good (logout); no reconnect follows. */
  close() {
    this.stopped = true;
    this.pollGen++;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("pagehide", this.onHide);
    clearInterval(this.hbTimer);
    clearTimeout(this.retryTimer);
    this.ws?.close(1000);
    this.ws = null;
  }

  /** reconnectNow skips the backoff wait (the banner's "Reconnect now" button). */
  reconnectNow() {
    if (this.mode === "ws" && this.ws && this.ws.readyState === WebSocket.OPEN) return;
    if (this.mode === "poll" && this.retryAt === 0) return;
    clearTimeout(this.retryTimer);
    this.connect(true);
  }

  /** dropForTest breaks the connection as a network failure would, so the resume path can be exercised. */
  dropForTest() {
    if (this.mode === "ws") this.ws?.close(4999);
    else this.restart();
  }

  /** send writes a frame when connected; frames sent while disconnected are dropped (the state is re-sent on resume). */
  send(op: number, d: unknown) {
    if (this.mode === "poll") {
      if (this.sessionId) void this.pollFetch("POST", "/" + encodeURIComponent(this.sessionId), { op, d }).catch(() => {});
      return;
    }
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op, d }));
  }

  /** restart drops the current connection and reconnects (resuming when possible). */
  private restart() {
    if (this.mode === "ws") {
      this.ws?.close(4000);
      return;
    }
    this.pollGen++;
    this.scheduleReconnect();
  }

  private pollFetch(method: string, rest: string, body?: unknown): Promise<Response> {
    return fetch("/api/v10/gateway/poll" + rest, {
      method,
      headers: { Authorization: this.token, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  }

  /** poll identifies or resumes over HTTP, then long-polls for dispatches until stopped. */
  private async poll() {
    const gen = ++this.pollGen;
    try {
      const start = this.sessionId && this.seq !== null
        ? { op: 6, d: { token: this.token, session_id: this.sessionId, seq: this.seq } }
        : { op: 2, d: this.identifyPayload() };
      const r = await this.pollFetch("POST", "", start);
      if (gen !== this.pollGen) return;
      if (r.status === 401) {
        this.stopped = true;
        this.onStatus("offline");
        this.onFatal(4004);
        return;
      }
      if (!r.ok) throw new Error("poll start: " + r.status);
      const j = await r.json();
      for (const f of j.events ?? []) this.frame(f);
      while (!this.stopped && gen === this.pollGen && this.sessionId) {
        const w = await this.pollFetch("GET", `?session_id=${encodeURIComponent(this.sessionId)}&seq=${this.seq ?? 0}&timeout=25`);
        if (gen !== this.pollGen) return;
        if (w.status === 404) {
          // The session expired: identify afresh.
          this.sessionId = null;
          this.seq = null;
          throw new Error("poll session expired");
        }
        if (!w.ok) throw new Error("poll: " + w.status);
        for (const f of (await w.json()).events ?? []) this.frame(f);
      }
    } catch {
      if (gen === this.pollGen && !this.stopped) this.scheduleReconnect();
    }
  }

  private onOnline = () => this.reconnectNow();
  /** onHide closes with 1000 when the page goes away: a deliberate close, not a drop to resume. */
  private onHide = () => {
    this.stopped = true;
    this.ws?.close(1000);
  };

  private connect(resuming: boolean) {
    this.retryAt = 0;
    this.onStatus(resuming ? "reconnecting" : "connecting");
    if (this.mode === "poll") {
      void this.poll();
      return;
    }
    let hello = false;
    const base = resuming && this.resumeUrl ? this.resumeUrl : this.url;
    const sep = base.includes("?") ? "&" : "?";
    const ws = new WebSocket(base.replace(/\/$/, "").replace(/\/gateway$/, "") + "/gateway" + sep + "v=10&encoding=json");
    this.ws = ws;
    this.ready = false;
    const watchdog = window.setTimeout(() => {
      if (this.ws === ws && !this.ready) ws.close(4000, "handshake timed out");
    }, HANDSHAKE_TIMEOUT_MS);
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let f: any;
      try {
        f = JSON.parse(ev.data as string);
      } catch {
        return;
      }
      if (f.op === 10) {
        hello = true;
        this.wsFailures = 0;
      }
      this.frame(f);
    };
    ws.onclose = (ev) => {
      clearTimeout(watchdog);
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.hbTimer);
      if (this.stopped) return;
      if (!hello && ++this.wsFailures >= WS_FAILURES_BEFORE_POLL) {
        // WebSockets do not get through (a proxy, a firewall): use long-polling from now on.
        this.mode = "poll";
        this.attempts = 0;
      }
      if (FATAL.has(ev.code)) {
        this.onStatus("offline");
        this.onFatal(ev.code);
        return;
      }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect() {
    this.onStatus("reconnecting");
    const delay = Math.min(30000, 500 * 2 ** this.attempts) * (0.8 + Math.random() * 0.4);
    this.attempts++;
    this.retryAt = Date.now() + delay;
    this.retryTimer = window.setTimeout(() => this.connect(true), delay);
  }

  private frame(f: { op: number; d: any; s?: number | null; t?: string | null }) {
    switch (f.op) {
      case 10: {
        const iv = Number(f.d?.heartbeat_interval) || 41250;
        this.acked = true;
        clearInterval(this.hbTimer);
        this.hbTimer = window.setInterval(() => this.heartbeat(), iv);
        if (this.sessionId && this.seq !== null) {
          this.send(6, { token: this.token, session_id: this.sessionId, seq: this.seq });
        } else {
          this.identify();
        }
        break;
      }
      case 11:
        this.acked = true;
        break;
      case 1:
        this.send(1, this.seq);
        break;
      case 7:
        this.restart();
        break;
      case 9:
        if (!f.d) {
          this.sessionId = null;
          this.seq = null;
        }
        // Discord asks clients to wait 1–5 s before identifying again.
        window.setTimeout(() => (f.d || this.mode === "poll" ? this.restart() : this.identify()), 1000 + Math.random() * 1000);
        break;
      case 0:
        if (typeof f.s === "number") this.seq = f.s;
        if (f.t === "READY") {
          this.sessionId = f.d.session_id;
          this.resumeUrl = f.d.resume_gateway_url || null;
        }
        if (f.t === "READY" || f.t === "RESUMED") {
          this.ready = true;
          this.attempts = 0;
          this.onStatus("connected");
        }
        if (f.t) this.onDispatch(f.t, f.d);
        break;
    }
  }

  private identifyPayload() {
    return {
      token: this.token,
      intents: INTENTS,
      properties: { os: navigator.platform || "web", browser: "hearth-web", device: "hearth-web" },
      presence: { status: "online", since: null, activities: [], afk: false },
    };
  }

  private identify() {
    this.send(2, this.identifyPayload());
  }

  private heartbeat() {
    if (!this.acked) {
      // No ACK for a whole interval: the connection is a zombie. Drop it and resume.
      this.ws?.close(4000);
      return;
    }
    this.acked = false;
    this.send(1, this.seq);
  }
}
