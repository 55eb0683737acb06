import { TRACKER_TIMEOUT_MS } from "../shared/constants.js";
import { GsError, isErrorCode } from "../shared/errors.js";
import { formatHostPort, type TrackerAddress } from "../shared/trackerInfo.js";

/** `/v1/groups/<g>/<tail>`, the id encoded. */
export function groupPath(groupId: string, tail: string): string {
  return `/v1/groups/${encodeURIComponent(groupId)}/${tail}`;
}

/** `/v1/groups/<g>/files/<name>/<tail>`, both encoded (names may hold spaces and more). */
export function filePath(groupId: string, name: string, tail: string): string {
  return groupPath(groupId, `files/${encodeURIComponent(name)}/${tail}`);
}

/** Largest tracker answer we read (a group's file list, a file's piece hashes). */
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface TrackerClientOptions {
  trackers: TrackerAddress[];
  /** Per-tracker timeout before moving on to the next one. */
  timeoutMs?: number;
}

/**
 * Talks to whichever tracker answers: tries them in order from the one that last
 * answered, moves on after a connection error or a timeout, and sticks to the one
 * that answers. Sessions are valid on every tracker, so a failover needs no login.
 */
export class TrackerClient {
  readonly trackers: TrackerAddress[];
  readonly #timeoutMs: number;
  #current = 0;
  token: string | undefined;

  constructor({ trackers, timeoutMs = TRACKER_TIMEOUT_MS }: TrackerClientOptions) {
    if (trackers.length === 0) throw new Error("no trackers");
    this.trackers = trackers;
    this.#timeoutMs = timeoutMs;
  }

  /** The tracker that answered last. */
  get current(): TrackerAddress {
    return this.trackers[this.#current]!;
  }

  async call<T>(method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<T> {
    const failures: string[] = [];
    for (let n = 0; n < this.trackers.length; n++) {
      const index = (this.#current + n) % this.trackers.length;
      const t = this.trackers[index]!;
      const where = formatHostPort(t.host, t.port);
      let res: Response;
      try {
        const headers: Record<string, string> = {};
        if (this.token) headers.authorization = `Bearer ${this.token}`;
        if (method === "POST") headers["content-type"] = "application/json";
        res = await fetch(`http://${where}${path}`, {
          method,
          headers,
          body: method === "POST" ? JSON.stringify(body ?? {}) : undefined,
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (err) {
        failures.push(`tracker ${t.no} at ${where}: ${describeFetchError(err)}`);
        continue;
      }
      let text: string;
      try {
        text = await readBounded(res);
      } catch (err) {
        if (err instanceof GsError) throw err;
        // died or went quiet (the timeout covers the body too) mid-answer: as good as no answer
        failures.push(`tracker ${t.no} at ${where}: ${describeFetchError(err)} in the middle of its answer`);
        continue;
      }
      this.#current = index;
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new GsError("INTERNAL", `tracker ${t.no} at ${where} answered with something that is not JSON`);
      }
      if (!res.ok) {
        const e = (json as { error?: { code?: unknown; message?: unknown } }).error;
        const code = isErrorCode(e?.code) ? e.code : "INTERNAL";
        throw new GsError(
          code,
          typeof e?.message === "string" ? e.message : `tracker answered ${res.status}`,
        );
      }
      return json as T;
    }
    throw new GsError("TRACKER_UNAVAILABLE", `no tracker answered (tried ${failures.join("; ")})`);
  }
}

async function readBounded(res: Response): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > MAX_RESPONSE_BYTES) {
    await res.body?.cancel();
    throw new GsError(
      "INTERNAL",
      `tracker answer of ${declared} bytes is over the ${MAX_RESPONSE_BYTES}-byte bound`,
    );
  }
  const chunks: Buffer[] = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      total += chunk.length;
      if (total > MAX_RESPONSE_BYTES) {
        await res.body.cancel().catch(() => {});
        throw new GsError("INTERNAL", `tracker answer is over the ${MAX_RESPONSE_BYTES}-byte bound`);
      }
      chunks.push(Buffer.from(chunk));
    }
  }
  return Buffer.concat(chunks).toString("utf8");
}

function describeFetchError(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string; message?: string }; message?: string };
  if (e.name === "TimeoutError" || e.name === "AbortError") return "timed out";
  const code = e.cause?.code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET") return "connection reset";
  return e.cause?.message ?? e.message ?? String(err);
}
