import { type Agent, request } from "node:http";
import { trackerAgent } from "./tls.js";

export interface RawAnswer {
  status: number;
  body: unknown;
  /** The registry code of an error answer. */
  code?: string;
}

/** Bound on any one request of these tests. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Bound on an answer we read. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * HTTPS+JSON (the tracker's key pinned) to a tracker on 127.0.0.1 from a chosen source address (any of 127.0.0.0/8),
 * so a test can be many clients at once. Keep-alive, at most `sockets` connections.
 */
export class HttpFrom {
  readonly #agent: Agent;

  constructor(
    readonly localAddress: string,
    readonly port: number,
    sockets = 4,
  ) {
    this.#agent = trackerAgent(port, { localAddress, maxSockets: sockets });
  }

  call(method: string, path: string, body?: unknown, token?: string): Promise<RawAnswer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = {};
    if (payload) {
      headers["content-type"] = "application/json";
      headers["content-length"] = payload.length;
    }
    if (token) headers.authorization = `Bearer ${token}`;
    return new Promise((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port: this.port, method, path, headers, agent: this.#agent },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_ANSWER_BYTES) req.destroy(new Error("answer too large"));
            else chunks.push(c);
          });
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const parsed = text === "" ? undefined : (JSON.parse(text) as { error?: { code?: string } });
            resolve({ status: res.statusCode ?? 0, body: parsed, code: parsed?.error?.code });
          });
          res.on("error", reject);
        },
      );
      req.setTimeout(REQUEST_TIMEOUT_MS, () =>
        req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)),
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  login(userId: string, password: string): Promise<RawAnswer> {
    return this.call("POST", "/v1/sessions", { userId, password, peerAddr: "127.0.0.1:9" });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** Runs `tasks` with at most `limit` at once; the results in order. */
export async function pool<T>(limit: number, count: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

/** How many answers had each code (or status, for a success). */
export function tally(answers: RawAnswer[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const a of answers) {
    const k = a.code ?? String(a.status);
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}
