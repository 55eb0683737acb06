import { request } from "node:http";
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import {
  type Answer,
  type Body,
  findRoute,
  type Input,
  type Params,
  RELAY_PATH,
  RELAY_PROTOCOL,
  type Route,
  type RouteName,
  ROUTES,
  routePath,
} from "../../shared/api.js";
import { HASHING_TIMEOUT_MS, SIGNAL_WAIT_MS, TRACKER_TIMEOUT_MS } from "../../shared/constants.js";
import { GsError, isErrorCode } from "../../shared/errors.js";
import { printable } from "../../shared/ids.js";
import { validate } from "../../shared/schema.js";
import { formatHostPort, type TrackerAddress } from "../../shared/trackerInfo.js";
import { KnownTrackers } from "./knownTrackers.js";
import { TrackerAgent, TrackerTrust } from "./trackerTls.js";

/** The relay answers once the other member's leg has come (it waits for it 10 s at most). */
const RELAY_JOIN_TIMEOUT_MS = 12_000;

/** Largest tracker answer we read (a group's file list, a file's piece hashes). */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** Longest tracker-sent message we print (a tracker's own are under 300 characters). */
const MAX_MESSAGE_CHARS = 500;

/** How long a call may take, and what ends it early (a long poll at logout). */
export interface CallOptions {
  signal?: AbortSignal;
}

/**
 * The arguments of a call to route K, from the contract: its path parameters (and
 * query) when it has any, its body when it takes one, then the call's options.
 */
export type CallArgs<K extends RouteName> = [
  ...(Input<K> extends undefined ? [] : Params<K> extends undefined ? [query?: Input<K>] : [input: Input<K>]),
  ...(Body<K> extends undefined ? [] : [body: Body<K>]),
  opts?: CallOptions,
];

/** A call's arguments apart, by what route K takes. */
function splitArgs<K extends RouteName>(
  name: K,
  args: CallArgs<K>,
): { input: Input<K>; body: unknown; opts: CallOptions } {
  const route: Route = ROUTES[name];
  const list = args as unknown[];
  let i = 0;
  const input = (route.params || route.query ? list[i++] : undefined) as Input<K>;
  const body = route.body ? list[i++] : undefined;
  return { input, body, opts: (list[i] as CallOptions | undefined) ?? {} };
}

export interface TrackerClientOptions {
  trackers: TrackerAddress[];
  /** Per-tracker timeout before moving on to the next one. */
  timeoutMs?: number;
  /**
   * The local IP for connections to trackers: the peer server's, when it listens on
   * a specific address, so that the tracker (which hands out the connection's source
   * IP) sees the address peers can reach. Used only for trackers of the same family.
   */
  localAddress?: string;
  /** The trackers' keys as first met (in memory only when absent). */
  known?: KnownTrackers;
}

/** The transport's outcome: an answer, or why there was none (then the next tracker is tried). */
type Exchange =
  | { status: number; text: string }
  | { failed: string; midAnswer: boolean; reusedSocket: boolean; code?: string }
  | { refused: GsError };

interface Wire {
  tracker: TrackerAddress;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  localAddress?: string;
  agent: TrackerAgent;
  /** Ends the exchange early (a long poll at logout). */
  signal?: AbortSignal;
}

/**
 * One HTTPS exchange with one tracker (TrackerAgent: TLS 1.3, the tracker's key
 * checked before a byte of the request is sent), bounded in time (the timeout covers the
 * answer's body too) and in size. This is the only place that knows the transport.
 */
function exchange(w: Wire): Promise<Exchange> {
  return new Promise((resolve) => {
    let settled = false;
    let midAnswer = false;
    const finish = (e: Exchange) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // the signal outlives the exchange (a login's long polls share one): leave nothing on it
      w.signal?.removeEventListener("abort", onAbort);
      resolve(e);
    };
    const fail = (why: string, code?: string) =>
      finish({ failed: why, midAnswer, reusedSocket: req.reusedSocket, code });
    const req = request({
      host: w.tracker.host,
      port: w.tracker.port,
      method: w.method,
      path: w.path,
      headers: w.headers,
      agent: w.agent,
      localAddress: w.localAddress,
    });
    const timer = setTimeout(() => {
      fail("timed out");
      req.destroy();
    }, w.timeoutMs);
    const onAbort = () => {
      fail("aborted");
      req.destroy();
    };
    w.signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err instanceof GsError && err.code === "TRACKER_KEY_MISMATCH") finish({ refused: err });
      else fail(describeError(err), err.code);
    });
    req.on("response", (res) => {
      midAnswer = true;
      const declared = Number(res.headers["content-length"] ?? "0");
      if (declared > MAX_RESPONSE_BYTES) {
        finish({
          status: -1,
          text: `an answer of ${declared} bytes, over the ${MAX_RESPONSE_BYTES}-byte bound`,
        });
        req.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let total = 0;
      res.on("data", (chunk: Buffer) => {
        total += chunk.length;
        if (total > MAX_RESPONSE_BYTES) {
          finish({ status: -1, text: `an answer over the ${MAX_RESPONSE_BYTES}-byte bound` });
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () =>
        finish({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("close", () => {
        if (!res.complete) fail("connection reset");
      });
      res.on("error", (err: NodeJS.ErrnoException) => fail(describeError(err), err.code));
    });
    req.end(w.body);
  });
}

/**
 * Talks to whichever tracker answers: tries them in order from the one that last
 * answered, moves on after a connection error or a timeout, and sticks to the one
 * that answers. Sessions are valid on every tracker, so a failover needs no login.
 * Every answer is checked against its route in the contract (shared/api.ts).
 */
export class TrackerClient {
  readonly trackers: TrackerAddress[];
  readonly #timeoutMs: number;
  readonly #localAddress: string | undefined;
  readonly #agents: TrackerAgent[];
  readonly #trust: TrackerTrust;
  #current = 0;
  token: string | undefined;

  constructor({ trackers, timeoutMs = TRACKER_TIMEOUT_MS, localAddress, known }: TrackerClientOptions) {
    if (trackers.length === 0) throw new Error("no trackers");
    this.trackers = trackers;
    this.#timeoutMs = timeoutMs;
    this.#localAddress = localAddress;
    // every tracker of the list must present the key the first one met presented
    const trust = new TrackerTrust(trackers, known ?? new KnownTrackers());
    this.#trust = trust;
    // keep-alive: a command is one or two requests, a download's refresh one every few seconds
    this.#agents = trackers.map((t) => new TrackerAgent(t, trust, { keepAlive: true, maxSockets: 8 }));
  }

  /** The local IP connections to trackers come from, when the peer server listens on one. */
  get localAddress(): string | undefined {
    return this.#localAddress;
  }

  /** The tracker that answered last. */
  get current(): TrackerAddress {
    return this.trackers[this.#current]!;
  }

  /**
   * Calls route `name` of the contract (shared/api.ts) and resolves with that route's
   * answer, checked against its schema: `call("listFiles", { groupId })`.
   */
  call<K extends RouteName>(name: K, ...args: CallArgs<K>): Promise<Answer<K>> {
    const { input, body, opts } = splitArgs(name, args);
    return this.callPath<Answer<K>>(ROUTES[name].method, routePath(name, input), body, opts);
  }

  /** A call by method and path (encoded); the path must be one of the contract's routes. */
  async callPath<T>(
    method: "GET" | "POST" | "DELETE",
    path: string,
    body?: unknown,
    { signal }: CallOptions = {},
  ): Promise<T> {
    const found = findRoute(method, path);
    if (!found) throw new Error(`no route ${method} ${path} in the API contract`);
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let payload: string | undefined;
    if (method === "POST") {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body ?? {});
    }
    const failures: string[] = [];
    // from where this call began: a concurrent call that fails over moves #current meanwhile
    const first = this.#current;
    for (let n = 0; n < this.trackers.length; n++) {
      const index = (first + n) % this.trackers.length;
      const t = this.trackers[index]!;
      const who = `tracker ${t.no} at ${formatHostPort(t.host, t.port)}`;
      const local = this.#localFor(t);
      const wire: Wire = {
        tracker: t,
        method,
        path,
        headers,
        body: payload,
        timeoutMs: found.route.hashes
          ? Math.max(this.#timeoutMs, HASHING_TIMEOUT_MS)
          : found.route.waits
            ? this.#timeoutMs + SIGNAL_WAIT_MS
            : this.#timeoutMs,
        localAddress: local,
        agent: this.#agents[index]!,
        signal,
      };
      let r = await exchange(wire);
      if (signal?.aborted) throw signal.reason;
      // a kept-alive connection the tracker had just closed: once more, on a new one
      if ("failed" in r && r.reusedSocket && !r.midAnswer && (r.code === "ECONNRESET" || r.code === "EPIPE"))
        r = await exchange(wire);
      // not a tracker that is down: one that is not who it should be, and no other is asked in its place
      if ("refused" in r) throw r.refused;
      if ("failed" in r) {
        failures.push(`${who}: ${r.failed}${r.midAnswer ? " in the middle of its answer" : ""}`);
        continue;
      }
      this.#current = index;
      return this.#read<T>(r, t, method, found.route);
    }
    throw new GsError("TRACKER_UNAVAILABLE", `no tracker answered (tried ${failures.join("; ")})`);
  }

  /** The local address for connections to `t`: ours, when it is of the tracker's family. */
  #localFor(t: TrackerAddress): string | undefined {
    return this.#localAddress && isIP(this.#localAddress) === isIP(t.host) ? this.#localAddress : undefined;
  }

  /** An answer's JSON, checked against the route; a GsError for an error answer or a malformed one. */
  #read<T>(r: Exchange, t: TrackerAddress, method: string, route: Route): T {
    const who = `tracker ${t.no} at ${formatHostPort(t.host, t.port)}`;
    if ("refused" in r) throw r.refused;
    if ("failed" in r) throw new GsError("TRACKER_UNAVAILABLE", `${who}: ${r.failed}`);
    const bad = (what: string) =>
      new GsError("BAD_TRACKER_ANSWER", `${who} sent a malformed answer to ${method} ${route.path}: ${what}`);
    if (r.status < 0) throw bad(r.text);
    let json: unknown;
    try {
      json = JSON.parse(r.text);
    } catch {
      throw bad("not JSON");
    }
    if (r.status < 200 || r.status > 299) {
      const e = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const code = isErrorCode(e?.code) ? e.code : "INTERNAL";
      // the tracker's words reach a terminal: escaped
      const message =
        typeof e?.message === "string"
          ? printable(e.message, MAX_MESSAGE_CHARS)
          : `${who} answered ${r.status}`;
      throw new GsError(code, message);
    }
    const problem = validate(route.response, json);
    if (problem) throw bad(problem);
    return json as T;
  }

  /**
   * One call to the tracker at `at` (tracker_info.txt's spelling; the current one when
   * undefined) on a connection of its own, closed after the answer: for a hole punch,
   * which needs the local port the tracker saw. No failover: the port is this
   * connection's. Answer checked against the contract like every call.
   */
  async callFresh<K extends "punch" | "punchAnswer">(
    at: string | undefined,
    name: K,
    input: Input<K>,
    body: Body<K>,
  ): Promise<{ answer: Answer<K>; localPort: number }> {
    const method = ROUTES[name].method;
    const path = routePath(name, input);
    const index =
      at === undefined
        ? this.#current
        : this.trackers.findIndex((t) => formatHostPort(t.host, t.port) === at);
    const t = this.trackers[index];
    if (!t) throw new Error(`${at} is not one of the trackers`);
    const found = findRoute(method, path);
    if (!found) throw new Error(`no route ${method} ${path} in the API contract`);
    let localPort = 0;
    const agent = new TrackerAgent(t, this.#trust, { keepAlive: false }, (tcp) => {
      localPort = tcp.localPort ?? 0;
    });
    try {
      const local = this.#localFor(t);
      const r = await exchange({
        tracker: t,
        method,
        path,
        headers: {
          "content-type": "application/json",
          ...(this.token && { authorization: `Bearer ${this.token}` }),
        },
        body: JSON.stringify(body ?? {}),
        timeoutMs: found.route.waits ? this.#timeoutMs + SIGNAL_WAIT_MS : this.#timeoutMs,
        localAddress: local,
        agent,
      });
      return { answer: this.#read<Answer<K>>(r, t, method, found.route), localPort };
    } finally {
      agent.destroy();
    }
  }

  /**
   * One leg of a relay circuit: an upgraded HTTPS connection to the tracker at
   * `relay` (one of tracker_info.txt's, its key checked like every other call),
   * resolved once the relay has joined the other member's leg. Bytes written to it
   * reach the other member; they should be end-to-end TLS.
   */
  openRelay(relay: string, circuit: string, signal: AbortSignal): Promise<Duplex> {
    const index = this.trackers.findIndex((t) => formatHostPort(t.host, t.port) === relay);
    if (index < 0) return Promise.reject(new Error(`relay ${relay} is not one of the trackers`));
    const t = this.trackers[index]!;
    return new Promise((resolve, reject) => {
      const req = request({
        host: t.host,
        port: t.port,
        method: "GET",
        path: `${RELAY_PATH}/${circuit}`,
        headers: {
          connection: "Upgrade",
          upgrade: RELAY_PROTOCOL,
          ...(this.token && { authorization: `Bearer ${this.token}` }),
        },
        agent: this.#agents[index]!,
      });
      const fail = (err: Error) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        req.destroy();
        reject(err);
      };
      const onAbort = () => fail(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      const timer = setTimeout(
        () => fail(new Error("the relay did not join us within the time")),
        RELAY_JOIN_TIMEOUT_MS,
      );
      signal.addEventListener("abort", onAbort, { once: true });
      req.on("error", fail);
      req.on("response", (res) => {
        res.resume();
        fail(new Error(`the relay refused: ${res.statusCode} ${printable(res.statusMessage ?? "", 80)}`));
      });
      req.on("upgrade", (_res, socket, head) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.end();
    });
  }

  /** Closes kept-alive connections. */
  close(): void {
    for (const a of this.#agents) a.destroy();
  }
}

function describeError(err: NodeJS.ErrnoException): string {
  if (err.code === "ECONNREFUSED") return "connection refused";
  if (err.code === "ECONNRESET" || err.code === "EPIPE") return "connection reset";
  if (err.code === "EADDRNOTAVAIL") return "cannot connect from this client's address";
  return err.message;
}
