import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { isIP } from "node:net";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { ERRORS, type ErrorCode, GsError } from "../../shared/errors.js";
import { printable } from "../../shared/ids.js";
import { TLS_VERSION } from "../../shared/tlsPolicy.js";
import { certificateFingerprint } from "../../shared/x509.js";
import { EVENT_DEFAULTS, EventHub, type EventOptions, type Subscribe } from "./events.js";
import { crossSite, HostRule, hostName, isLoopback, isWildcard } from "./guard.js";
import { API_PREFIX, parseQuery, type RouteTable, Router } from "./routes.js";
import { SLOW_DOWN, SlowDown, type SlowDownOptions } from "./slowDown.js";
import { readStatic, UI_DIR } from "./staticFiles.js";
import { tokensEqual } from "./token.js";

/** The event stream's path (GET, token needed like every API path). */
export const EVENTS_PATH = "/api/v1/events";
/** Answers `{"ok":true}` to a right token: how the page and scripts check theirs. */
export const AUTH_PATH = "/api/v1/auth";

export interface WebLimits {
  /** Largest JSON body: the API takes names and options, never file contents. */
  maxBodyBytes: number;
  /** A handler with no answer by then is answered 503 BUSY, and its signal aborted. */
  handlerTimeoutMs: number;
  /** Time to receive a request's headers, and its whole body (Node's requestTimeout). */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** An idle kept-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Connections open at once (event streams count). */
  maxConnections: number;
}

export const WEB_LIMITS: WebLimits = {
  maxBodyBytes: 64 * 1024,
  handlerTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 64,
};

export type WebLog = (level: "info" | "warning" | "error", line: string) => void;

export interface WebServerOptions {
  /** An IP address or `localhost`; anything but loopback needs `tls`. */
  host: string;
  /** 0: any free port. */
  port: number;
  /** What every API request must carry as `Authorization: Bearer <token>`. */
  token: string;
  /** Certificate and key (PEM) for HTTPS; required off loopback. */
  tls?: { cert: string; key: string };
  /** Host names besides the bound address and localhost that requests may name. */
  allowHosts?: readonly string[];
  routes: RouteTable;
  /** The engine's events, streamed at EVENTS_PATH; without it that path does not exist. */
  events?: Subscribe;
  /** The page's files (UI_DIR unless given). */
  staticDir?: string;
  log?: WebLog;
  limits?: Partial<WebLimits>;
  slowDown?: SlowDownOptions;
  eventOptions?: Partial<EventOptions>;
}

/**
 * Sent with every answer. The page runs only its own files (no inline script, no eval:
 * an injected string cannot run), may not be framed (clickjacking), and sends no
 * Referer (the address holds no token, but keep it that way). No Access-Control-*
 * header is ever sent: no other origin may read an answer.
 */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const API_METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);
const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const JSON_TYPE = /^application\/json\s*(;\s*charset="?utf-8"?\s*)?$/i;
const BEARER = /^Bearer +(\S{1,1024})$/i;

/** Longest request value a log line or error message shows. */
const SHOWN_CHARS = 200;

/**
 * The local web UI's HTTP server: the page's static files and the JSON API under /api/,
 * behind the checks of guard.ts, in this order for every request: the Host header
 * (DNS rebinding), Origin and Sec-Fetch-Site (another site's page), the method, then for
 * the API the token (constant-time, failures slowed down), the route, a bounded JSON
 * body, and a handler with a timeout.
 */
export class WebServer {
  readonly scheme: "http" | "https";
  readonly host: string;
  readonly port: number;
  readonly #server: Server;
  readonly #o: WebServerOptions;
  readonly #limits: WebLimits;
  readonly #hosts: HostRule;
  readonly #router: Router;
  readonly #slowDown: SlowDown;
  readonly #events: EventHub | undefined;
  readonly #staticDir: string;
  readonly #log: WebLog;
  readonly #closing = new AbortController();

  private constructor(o: WebServerOptions, server: Server, port: number, parts: Parts) {
    this.#o = o;
    this.#server = server;
    this.scheme = o.tls ? "https" : "http";
    this.host = o.host;
    this.port = port;
    this.#limits = parts.limits;
    this.#hosts = parts.hosts;
    this.#router = parts.router;
    this.#slowDown = new SlowDown(o.slowDown ?? SLOW_DOWN);
    this.#log = parts.log;
    this.#staticDir = o.staticDir ?? UI_DIR;
    this.#events = o.events && new EventHub(o.events, { ...EVENT_DEFAULTS, ...o.eventOptions }, this.#log);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res));
  }

  /** Checks the options, then listens. Refuses a non-loopback address without TLS. */
  static async start(o: WebServerOptions): Promise<WebServer> {
    if (isIP(o.host) === 0 && o.host !== "localhost")
      throw new GsError("BAD_REQUEST", `the web UI listens on an IP address or localhost, not '${o.host}'`);
    if (!isLoopback(o.host) && !o.tls)
      throw new GsError(
        "BAD_REQUEST",
        `the web UI on ${o.host} (not loopback) must use HTTPS: give it a certificate and key`,
      );
    if (o.token.length < 32) throw new Error("the web token is too short: use newWebToken()");
    for (const name of o.allowHosts ?? [])
      if (hostName(name) !== name.toLowerCase())
        throw new GsError("BAD_REQUEST", `'${printable(name, SHOWN_CHARS)}' is not a host name`);
    const limits = { ...WEB_LIMITS, ...o.limits };
    const timeouts = { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs };
    const server = o.tls
      ? createHttpsServer({ ...timeouts, cert: o.tls.cert, key: o.tls.key, ...TLS_VERSION })
      : createHttpServer(timeouts);
    server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    server.maxConnections = limits.maxConnections;
    const parts: Parts = {
      limits,
      hosts: new HostRule(o.host, o.allowHosts ?? []),
      router: new Router(o.routes, [AUTH_PATH, EVENTS_PATH]),
      log: o.log ?? (() => {}),
    };
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(o.port, o.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return new WebServer(o, server, (server.address() as AddressInfo).port, parts);
  }

  /** The link that logs a browser in: the token is in the fragment, which no request carries. */
  get url(): string {
    const host = isWildcard(this.host) ? (this.host === "::" ? "::1" : "127.0.0.1") : this.host;
    const h = isIP(host) === 6 ? `[${host}]` : host;
    return `${this.scheme}://${h}:${this.port}/#token=${this.#o.token}`;
  }

  /** What to print at start: the link, and off loopback a warning first. */
  startLines(): string[] {
    const lines: string[] = [];
    if (!isLoopback(this.host) && this.#o.tls)
      lines.push(
        `warning: the web UI listens on ${this.host} port ${this.port}, reachable from other hosts: ` +
          `HTTPS only, with a self-signed certificate (key ${certificateFingerprint(this.#o.tls.cert)}); ` +
          "whoever has the token controls this client",
      );
    lines.push(`web UI: ${this.url}`);
    return lines;
  }

  /** Event streams open now. */
  get streams(): number {
    return this.#events?.streams ?? 0;
  }

  /**
   * Ends the event streams cleanly, answers what is in flight (held-back failures at
   * once), and closes every connection.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    this.#events?.close();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    // handlers have their own timeout; this is for a connection that never finishes
    const force = setTimeout(() => this.#server.closeAllConnections(), this.#limits.handlerTimeoutMs);
    await closed;
    clearTimeout(force);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    req.on("error", () => {});
    try {
      await this.#route(req, res);
    } catch (err) {
      this.#fail(req, res, err);
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.#hosts.allows(req.headers.host))
      throw new GsError(
        "HOST_NOT_ALLOWED",
        `this server does not answer to the name '${printable(req.headers.host ?? "", SHOWN_CHARS)}'`,
      );
    const why = crossSite(req.headers, this.scheme);
    if (why) throw new GsError("CROSS_SITE", `${why} is refused: this API answers only its own page`);
    const method = req.method ?? "";
    const target = req.url ?? "";
    if (!target.startsWith("/")) throw new GsError("BAD_REQUEST", "the request names no path");
    const url = new URL(target, "http://host.invalid");
    if (url.pathname.startsWith(API_PREFIX)) {
      res.setHeader("cache-control", "no-store");
      if (!API_METHODS.has(method)) throw notAllowed(res, method, [...API_METHODS]);
      await this.#authenticate(req);
      return await this.#api(req, res, method, url);
    }
    if (method !== "GET" && method !== "HEAD") throw notAllowed(res, method, ["GET", "HEAD"]);
    const file = await readStatic(this.#staticDir, url.pathname);
    if (!file) throw new GsError("NO_ROUTE", `no page ${printable(url.pathname, SHOWN_CHARS)}`);
    res.writeHead(200, {
      "content-type": file.type,
      "content-length": file.body.length,
      "cache-control": "no-cache",
    });
    res.end(method === "HEAD" ? undefined : file.body);
  }

  async #authenticate(req: IncomingMessage): Promise<void> {
    const header = req.headers.authorization;
    if (header === undefined)
      throw new GsError("UNAUTHORIZED", "send the web token: 'Authorization: Bearer <token>'");
    const token = BEARER.exec(header)?.[1];
    if (token !== undefined && tokensEqual(token, this.#o.token)) return;
    const addr = req.socket.remoteAddress ?? "";
    const delay = this.#slowDown.fail(addr);
    if (delay === undefined)
      throw new GsError("TOO_MANY_ATTEMPTS", "too many wrong tokens from your address: wait, then try again");
    try {
      this.#log(
        "warning",
        `warning: ${addr} ${req.method} ${esc(req.url)}: wrong web token (held ${delay} ms)`,
      );
      await sleep(delay, undefined, { signal: this.#closing.signal }).catch(() => {});
    } finally {
      this.#slowDown.release(addr);
    }
    throw new GsError("UNAUTHORIZED", "wrong web token: use the one the client printed at start");
  }

  async #api(req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<void> {
    const query = parseQuery(url.search);
    if (url.pathname === AUTH_PATH) {
      if (method !== "GET") throw notAllowed(res, method, ["GET"]);
      return json(res, 200, { ok: true });
    }
    if (this.#events && url.pathname === EVENTS_PATH) {
      if (method !== "GET") throw notAllowed(res, method, ["GET"]);
      const after = Number(query.after);
      const resume =
        query.run !== undefined && Number.isSafeInteger(after) ? { run: query.run, after } : undefined;
      // an event stream is not reused: the connection ends with it, cleanly
      res.setHeader("connection", "close");
      this.#events.open(res, resume);
      return;
    }
    const m = this.#router.match(method, url.pathname);
    if (!m.route) {
      if (m.methods.length) throw notAllowed(res, method, m.methods);
      throw new GsError("NO_ROUTE", `no route ${method} ${printable(url.pathname, SHOWN_CHARS)}`);
    }
    const body = BODY_METHODS.has(method) ? await this.#body(req) : undefined;
    const done = new AbortController();
    const onClose = () => done.abort(new GsError("BAD_REQUEST", "the caller went away"));
    res.once("close", onClose);
    const timer = setTimeout(
      () => done.abort(new GsError("BUSY", `no answer in ${this.#limits.handlerTimeoutMs} ms`)),
      this.#limits.handlerTimeoutMs,
    );
    try {
      const running = m.route.handler({ params: m.params, query, body, signal: done.signal });
      // a handler that ignores its signal settles later, unheard
      running.catch(() => {});
      const answer = await Promise.race([running, aborted(done.signal)]);
      if (answer === undefined) {
        res.writeHead(204).end();
        return;
      }
      json(res, m.route.status ?? 200, answer);
    } finally {
      clearTimeout(timer);
      res.off("close", onClose);
    }
  }

  /** The JSON body, read up to maxBodyBytes; undefined when there is none. */
  async #body(req: IncomingMessage): Promise<unknown> {
    const max = this.#limits.maxBodyBytes;
    const length = req.headers["content-length"];
    if (length === undefined && req.headers["transfer-encoding"] === undefined) return undefined;
    if (length !== undefined && Number(length) > max)
      throw new GsError("BODY_TOO_LARGE", `request body over ${max} bytes`);
    if (length === "0") return undefined;
    if (!JSON_TYPE.test(req.headers["content-type"] ?? ""))
      throw new GsError("NOT_JSON", "the API takes JSON bodies only (Content-Type: application/json)");
    const text = await readBody(req, max);
    if (text === "") return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new GsError("BAD_REQUEST", "the body is not valid JSON");
    }
  }

  #fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    let code: ErrorCode;
    let message: string;
    if (err instanceof GsError) {
      code = err.code;
      message = err.message;
    } else {
      code = "INTERNAL";
      message = "internal error";
      this.#log("error", `error: ${req.method} ${esc(req.url)}: ${(err as Error)?.stack ?? String(err)}`);
    }
    const status = ERRORS[code].status;
    if (code !== "INTERNAL") {
      // a page without its token yet, or a mistyped path: what a user does, not an attack
      const level = code === "UNAUTHORIZED" || code === "NO_ROUTE" ? "info" : "warning";
      const line = `${req.socket.remoteAddress} ${req.method} ${esc(req.url)} -> ${status} ${code}: ${esc(message)}`;
      this.#log(level, `${level}: ${line}`);
    }
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    // a body left unread is not drained: the connection ends with this answer
    if (!req.complete) res.setHeader("connection", "close");
    res.setHeader("cache-control", "no-store");
    json(res, status, { error: { code, message } });
  }
}

interface Parts {
  limits: WebLimits;
  hosts: HostRule;
  router: Router;
  log: WebLog;
}

function esc(s: string | undefined): string {
  return printable(s ?? "", SHOWN_CHARS);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function notAllowed(res: ServerResponse, method: string, allowed: string[]): GsError {
  res.setHeader("allow", allowed.join(", "));
  return new GsError("METHOD_NOT_ALLOWED", `${printable(method, 20)} is not allowed here`);
}

/**
 * The body as text, at most `max` bytes. Past that it stops reading (the answer then
 * closes the connection) instead of breaking the socket, so the caller gets its 413.
 */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = (err?: GsError) => {
      req.off("data", onData).off("end", onEnd).off("close", onClose);
      if (err) {
        req.pause();
        reject(err);
      } else resolve(Buffer.concat(chunks).toString("utf8"));
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > max) stop(new GsError("BODY_TOO_LARGE", `request body over ${max} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = () => stop();
    const onClose = () => stop(new GsError("BAD_REQUEST", "the request broke off before its end"));
    req.on("data", onData).on("end", onEnd).on("close", onClose);
  });
}

/** Rejects with the signal's reason when it aborts. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
