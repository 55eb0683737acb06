/**
 * Raw requests to a WebServer on 127.0.0.1, with any headers a browser or an attacker
 * would send (Host, Origin, Sec-Fetch-Site), bounded in time and size. Every answer is
 * checked for CORS headers: the web server must never send one.
 */
import assert from "node:assert/strict";
import { type IncomingHttpHeaders, type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { WebLog } from "../../src/client/web/server.js";
import { type Cluster, freePort, type Proc } from "./procs.js";
import { readAnswer } from "./tls.js";

export interface WebAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: raw answers are whatever the server sent; tests check them
  body: any;
  /** The registry code of an error answer. */
  code?: string;
}

export interface WebRequestOptions {
  method?: string;
  path?: string;
  /** Sent as `Authorization: Bearer …`. */
  token?: string;
  headers?: Record<string, string | number>;
  /** JSON unless `raw` is given. */
  body?: unknown;
  raw?: string | Buffer;
  /** Send the body chunked, with no Content-Length. */
  chunked?: boolean;
  https?: boolean;
  timeoutMs?: number;
}

const MAX_ANSWER_BYTES = 1024 * 1024;

/** Fails the test if an answer carries any Access-Control-* header, or sets a cookie. */
export function assertNoCors(headers: IncomingHttpHeaders): void {
  const cors = Object.keys(headers).filter((h) => h.toLowerCase().startsWith("access-control-"));
  assert.deepEqual(cors, [], "the web server sent CORS headers");
  assert.equal(headers["set-cookie"], undefined, "the web server set a cookie");
}

export function webCall(port: number, o: WebRequestOptions = {}): Promise<WebAnswer> {
  const payload =
    o.raw !== undefined
      ? Buffer.from(o.raw)
      : o.body === undefined
        ? undefined
        : Buffer.from(JSON.stringify(o.body));
  const headers: Record<string, string | number> = { host: `127.0.0.1:${port}` };
  if (payload) {
    headers["content-type"] = "application/json";
    if (o.chunked) headers["transfer-encoding"] = "chunked";
    else headers["content-length"] = payload.length;
  }
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  Object.assign(headers, o.headers);
  const timeoutMs = o.timeoutMs ?? 30_000;
  return new Promise<WebAnswer>((resolve, reject) => {
    const req = (o.https ? httpsRequest : httpRequest)({
      host: "127.0.0.1",
      port,
      method: o.method ?? "GET",
      path: o.path ?? "/",
      headers,
      agent: false,
      ...(o.https && { rejectUnauthorized: false }),
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`${o.method} ${o.path}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on("response", (res) => {
      void readAnswer(req, res, MAX_ANSWER_BYTES).then((a) => {
        clearTimeout(timer);
        try {
          assertNoCors(res.headers);
        } catch (err) {
          reject(err);
          return;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, ...a });
      });
    });
    req.end(payload);
  });
}

/** An open event stream: the response, and its frames as they come. */
export interface EventStreamReader {
  res: IncomingMessage;
  /** Frames received so far, parsed: {event, id, data}. */
  frames: { event: string; id?: string; data: unknown }[];
  /** Comment lines received so far (the server's keep-alives). */
  comments: () => number;
  /** Resolves once `count` frames have come (rejects if the stream ends first). */
  frame(count: number): Promise<void>;
  /** Resolves when the body ends cleanly; rejects if the connection breaks instead. */
  ended: Promise<void>;
  close(): void;
}

/** Opens GET `path` as an event stream (the token as a header, as the page does with fetch). */
export function openEvents(port: number, token: string, path = "/api/v1/events"): Promise<EventStreamReader> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      path,
      headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
      agent: false,
    });
    req.on("error", reject);
    req.on("response", (res) => {
      assertNoCors(res.headers);
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`event stream: status ${res.statusCode}`));
        return;
      }
      const frames: EventStreamReader["frames"] = [];
      const waiters: { count: number; resolve: () => void; reject: (e: Error) => void }[] = [];
      let buf = "";
      let over = false;
      let comments = 0;
      const settle = () => {
        for (const w of [...waiters]) {
          if (frames.length >= w.count) w.resolve();
          else if (over) w.reject(new Error(`the stream ended after ${frames.length} frames`));
          else continue;
          waiters.splice(waiters.indexOf(w), 1);
        }
      };
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f: Record<string, string> = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) {
              comments++;
              continue;
            }
            const at = line.indexOf(": ");
            f[line.slice(0, at)] = line.slice(at + 2);
          }
          if (f.data !== undefined)
            frames.push({ event: f.event ?? "message", ...(f.id && { id: f.id }), data: JSON.parse(f.data) });
        }
        settle();
      });
      const ended = new Promise<void>((resolveEnd, rejectEnd) => {
        res.on("end", resolveEnd);
        res.on("error", rejectEnd);
        res.on("close", () => {
          over = true;
          settle();
          if (!res.complete) rejectEnd(new Error("the event stream broke off before its end"));
        });
      });
      ended.catch(() => {});
      resolve({
        res,
        frames,
        comments: () => comments,
        frame: (count) =>
          new Promise<void>((ok, fail) => {
            waiters.push({ count, resolve: ok, reject: fail });
            settle();
          }),
        ended,
        close: () => req.destroy(),
      });
    });
    req.end();
  });
}

/** A WebServer's log, kept, with a way to wait for a line. */
export class WebLogLines {
  readonly lines: string[] = [];
  readonly #waiters: { re: RegExp; resolve: (line: string) => void }[] = [];

  readonly log: WebLog = (_level, line) => {
    this.lines.push(line);
    for (const w of [...this.#waiters]) {
      if (w.re.test(line)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };

  /** The first line from now on (or already logged, from index `from`) that matches. */
  waitFor(re: RegExp, from = this.lines.length): Promise<string> {
    const seen = this.lines.slice(from).find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ re, resolve }));
  }
}

/** A client with the web UI on a free port: its process, port and token (from the line it printed). */
export async function webClient(
  c: Cluster,
  name: string,
  extra: string[] = [],
): Promise<{ proc: Proc; port: number; token: string; url: string }> {
  const port = await freePort();
  const proc = await c.client(name, { args: ["--web", String(port), ...extra] });
  const line = await proc.expect(/^web UI: http:\/\/127\.0\.0\.1:\d+\/#token=/);
  const url = line.slice("web UI: ".length);
  const token = /#token=([A-Za-z0-9_-]+)$/.exec(url)?.[1];
  assert.ok(token, line);
  return { proc, port, token, url };
}
