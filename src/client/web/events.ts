import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { GsError } from "../../shared/errors.js";

/**
 * One change the engine reports (an EngineEvent): `type` names it and is the SSE event
 * name; the whole object, `type` included, is the event's data, as JSON.
 */
export interface WebEvent {
  readonly type: string;
}

/**
 * How the server hears of the engine's events, e.g. `(l) => engine.events.subscribe(l)`:
 * returns the way to stop hearing them.
 */
export type Subscribe = (listener: (e: WebEvent) => void) => () => void;

export interface EventOptions {
  /** A comment line this often on every stream, so proxies and the page see it alive. */
  heartbeatMs: number;
  /** Streams open at once; one more is answered 503 BUSY. */
  maxStreams: number;
  /** Bytes a stream may have waiting to be sent; a reader that falls further behind is dropped. */
  maxQueueBytes: number;
  /** Recent events kept, so a page that reconnects gets what it missed. */
  replay: number;
  /** Largest event (its SSE frame); a larger one is a bug, logged and not sent. */
  maxEventBytes: number;
}

export const EVENT_DEFAULTS: EventOptions = {
  heartbeatMs: 15_000,
  // a few tabs and a script or two; each holds a socket and up to maxQueueBytes
  maxStreams: 8,
  maxQueueBytes: 1024 * 1024,
  replay: 256,
  maxEventBytes: 64 * 1024,
};

/** An SSE event name: it goes on an `event:` line as it is, so no line breaks or spaces. */
const EVENT_TYPE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

export type EventLog = (level: "info" | "warning" | "error", line: string) => void;

/**
 * The event stream (`text/event-stream`, read by the page with fetch so that it can send
 * the token). Each stream starts with a `hello` event `{run, last, resumed}`: `run` names
 * this server's run and `last` the newest event id. A page that lost its stream asks for
 * `?run=R&after=N` and gets every event after N, if this run still keeps them
 * (`resumed: true`); otherwise it must fetch its lists afresh. Memory is bounded: the
 * `replay` last events, and at most maxQueueBytes unsent per stream, the stream dropped
 * beyond that (its page reconnects and resumes).
 */
export class EventHub {
  readonly run = randomBytes(9).toString("base64url");
  readonly #o: EventOptions;
  readonly #log: EventLog;
  readonly #streams = new Set<ServerResponse>();
  readonly #recent: { id: number; frame: string }[] = [];
  readonly #unsubscribe: () => void;
  #last = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(subscribe: Subscribe, o: EventOptions, log: EventLog) {
    this.#o = o;
    this.#log = log;
    this.#unsubscribe = subscribe((e) => this.#publish(e));
  }

  /** Streams open now. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Starts a stream on `res`; `resume` is the page's last run and event id, if it has one. */
  open(res: ServerResponse, resume: { run: string; after: number } | undefined): void {
    if (this.#closed) throw new GsError("BUSY", "the web server is closing");
    if (this.#streams.size >= this.#o.maxStreams)
      throw new GsError("BUSY", `${this.#o.maxStreams} event streams are open already: close one`);
    const oldest = this.#recent[0]?.id ?? this.#last + 1;
    const resumed =
      resume !== undefined &&
      resume.run === this.run &&
      resume.after >= oldest - 1 &&
      resume.after <= this.#last;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store" });
    this.#streams.add(res);
    res.on("close", () => {
      this.#streams.delete(res);
      if (this.#streams.size === 0) this.#stopHeartbeat();
      this.#log("info", `info: event stream closed (${this.#streams.size} open)`);
    });
    this.#log("info", `info: event stream opened (${this.#streams.size} open)`);
    res.write(`event: hello\ndata: ${JSON.stringify({ run: this.run, last: this.#last, resumed })}\n\n`);
    if (resumed) for (const e of this.#recent) if (e.id > resume.after) this.#send(res, e.frame);
    this.#heartbeat ??= setInterval(() => {
      for (const s of this.#streams) this.#send(s, ": keep-alive\n\n");
    }, this.#o.heartbeatMs);
  }

  /** Ends every stream cleanly (the page sees its body end) and stops listening to the engine. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#stopHeartbeat();
    for (const s of this.#streams) s.end();
  }

  #stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  // called by the engine: must never throw
  #publish(e: WebEvent): void {
    if (this.#closed) return;
    if (!EVENT_TYPE.test(e.type)) {
      this.#log("error", `error: web event with an unusable name dropped: ${JSON.stringify(e.type)}`);
      return;
    }
    let data: string;
    try {
      data = JSON.stringify(e);
    } catch (err) {
      this.#log("error", `error: web event ${e.type} is not JSON: ${(err as Error).message}`);
      return;
    }
    const id = this.#last + 1;
    // JSON.stringify leaves no line break in `data`: one data line
    const frame = `id: ${id}\nevent: ${e.type}\ndata: ${data}\n\n`;
    if (Buffer.byteLength(frame) > this.#o.maxEventBytes) {
      this.#log("error", `error: web event ${e.type} over ${this.#o.maxEventBytes} bytes dropped`);
      return;
    }
    this.#last = id;
    this.#recent.push({ id, frame });
    if (this.#recent.length > this.#o.replay) this.#recent.shift();
    for (const s of this.#streams) this.#send(s, frame);
  }

  #send(res: ServerResponse, frame: string): void {
    if (res.destroyed) return;
    if (res.writableLength + Buffer.byteLength(frame) > this.#o.maxQueueBytes) {
      this.#log(
        "warning",
        `warning: event stream dropped: its reader is ${res.writableLength} bytes behind (at most ${this.#o.maxQueueBytes})`,
      );
      res.destroy();
      return;
    }
    res.write(frame);
  }
}
