// The agent WebSocket (/ws/agent): hello with a resume map, keep-alive
// pings, and reconnects with capped exponential backoff and jitter.

import type { Frame } from "./types";

export type SocketState = "connecting" | "open" | "waiting" | "closed";

export interface SocketHooks {
  /** resume returns, per conversation, the last seq the console has shown. */
  resume(): Record<string, number>;
  frame(f: Frame): void;
  state(s: SocketState, retryInMs?: number): void;
  /** opened runs after hello is sent, to resend what was not acknowledged. */
  opened(): void;
}

const PING_MS = 25_000;
const MIN_BACKOFF = 500;
const MAX_BACKOFF = 30_000;

export class AgentSocket {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer = 0;
  private ping = 0;
  private stopped = false;

  constructor(private hooks: SocketHooks) {}

  connect(): void {
    this.stopped = false;
    clearTimeout(this.timer);
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/agent";
    this.hooks.state("connecting");
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      ws.send(JSON.stringify({ type: "hello", resume: this.hooks.resume() }));
      this.attempt = 0;
      this.hooks.state("open");
      clearInterval(this.ping);
      this.ping = window.setInterval(() => this.send({ type: "ping" }), PING_MS);
      this.hooks.opened();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let f: Frame;
      try {
        f = JSON.parse(String(ev.data)) as Frame;
      } catch {
        return;
      }
      this.hooks.frame(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.ping);
      if (this.stopped) {
        this.hooks.state("closed");
        return;
      }
      // 1008 with "account disabled" or a refused handshake (no session)
      // would loop forever; the app checks the session on each retry.
      const wait = Math.min(MAX_BACKOFF, MIN_BACKOFF * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt++;
      this.hooks.state("waiting", wait);
      void ev;
      this.timer = window.setTimeout(() => this.connect(), wait);
    };
  }

  /** reconnectNow skips the remaining backoff. */
  reconnectNow(): void {
    if (this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  }

  /** drop closes the socket as if the network failed (for tests and "reconnect"). */
  drop(): void {
    this.ws?.close(4000, "reconnect");
  }

  get open(): boolean {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** send writes a frame; false when the socket is not open. */
  send(f: Record<string, unknown>): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(f));
    return true;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.ping);
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, "logout");
    this.hooks.state("closed");
  }
}
