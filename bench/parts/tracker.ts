import { writeFile } from "node:fs/promises";
import type { Agent } from "node:http";
import { join } from "node:path";
import { PG_BIN, startPostgres, type TestPostgres } from "../../test/helpers/postgres.js";
import { Cluster } from "../../test/helpers/procs.js";
import { TEST_PEER, trackerAgent, trackerCall } from "../../test/helpers/tls.js";
import type { Context } from "../context.js";
import { mdTable, median, type Part, verdict } from "../report.js";
import { cpuTime, ensurePackage, ensureTools, timed } from "../tools.js";

/** Concurrent connections of the load. */
const CONNECTIONS = 50;
/** Pieces of the file whose download is started under load: a 256 MiB file. */
const PIECES = 512;
const LIST_FILES_TARGET = 10_000;

/** A tracker process of its own (own directory and store) and its URL. */
interface Tracker {
  cluster: Cluster;
  port: number;
  base: string;
  /** keep-alive connections, the tracker's key pinned */
  agent: Agent;
  /** the tracker process (./tracker execs node: the same pid) */
  pid: number;
}

async function startTracker(db: string | undefined): Promise<Tracker> {
  const cluster = await Cluster.create(1);
  const p = await cluster.tracker(1, db ? ["--db", db] : []);
  const port = cluster.ports[0]!;
  return {
    cluster,
    port,
    base: `https://127.0.0.1:${port}`,
    agent: trackerAgent(port, { maxSockets: 16 }),
    pid: p.child.pid!,
  };
}

async function api<T>(t: Tracker, method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const res = await trackerCall(t.port, { method, path, body, token, agent: t.agent });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
  return res.body as T;
}

async function login(t: Tracker, userId: string, port: number): Promise<string> {
  const r = await api<{ token: string }>(t, "POST", "/v1/sessions", {
    userId,
    password: "pw",
    peerAddr: `127.0.0.1:${port}`,
  });
  return r.token;
}

/** A file record with made-up hashes (the tracker never sees file bytes). */
function fakeFile(name: string, pieces: number, seed: number) {
  const sha1 = seed.toString(16).padStart(40, "0");
  return {
    name,
    size: pieces * 512 * 1024,
    sha1,
    pieces: Buffer.alloc(pieces * 20, seed % 251).toString("base64"),
  };
}

/**
 * Group `g` owned by `owner`, members m1..m3 that share file `f` (512 pieces)
 * with the owner, and user `lb` for the login load. Returns the owner's token.
 */
async function setup(t: Tracker): Promise<string> {
  for (const u of ["owner", "m1", "m2", "m3", "lb"])
    await api(t, "POST", "/v1/users", { userId: u, password: "pw" });
  const owner = await login(t, "owner", 20_000);
  await api(t, "POST", "/v1/groups", { groupId: "g" }, owner);
  await api(t, "POST", "/v1/groups/g/files", fakeFile("f", PIECES, 1), owner);
  for (const [i, m] of ["m1", "m2", "m3"].entries()) {
    const tok = await login(t, m, 20_001 + i);
    await api(t, "POST", "/v1/groups/g/requests", {}, tok);
    await api(t, "POST", `/v1/groups/g/requests/${m}/accept`, {}, owner);
    await api(t, "POST", "/v1/groups/g/files/f/shares", { complete: true }, tok);
  }
  return owner;
}

interface Load {
  rps: number;
  p50ms: number;
  p99ms: number;
  requests: number;
  errors: number;
  /** the tracker process's CPU time per request, µs: steadier than req/s on a shared box */
  cpuUs: number;
}

/** wrk's duration like 1.23ms, 456.00us, 1.20s → ms */
function wrkMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v);
  if (!m) return Number.NaN;
  const x = Number(m[1]);
  return m[2] === "us" ? x / 1000 : m[2] === "ms" ? x : m[2] === "s" ? x * 1000 : x * 60_000;
}

/** wrk with one thread (the tracker has the other core), CONNECTIONS connections, for `seconds`. */
async function wrk(
  ctx: Context,
  t: Tracker,
  name: string,
  req: { method: string; path: string; body?: unknown; token?: string },
  seconds: number,
): Promise<Load> {
  const script = join(t.cluster.dir, `${name}.lua`);
  const lines = [`wrk.method = "${req.method}"`];
  if (req.body !== undefined) {
    lines.push(
      `wrk.body = '${JSON.stringify(req.body)}'`,
      `wrk.headers["Content-Type"] = "application/json"`,
    );
  }
  if (req.token) lines.push(`wrk.headers["Authorization"] = "Bearer ${req.token}"`);
  await writeFile(script, `${lines.join("\n")}\n`);
  const args = ["-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency", "--timeout", "10s", "-s", script];
  const cpu0 = await cpuTime(t.pid);
  const r = await timed("wrk", [...args, `${t.base}${req.path}`], (seconds + 30) * 1000);
  const cpu = (await cpuTime(t.pid)) - cpu0;
  const out = r.stdout;
  const pct = (p: string) => wrkMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m").exec(out)?.[1] ?? "");
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sock ? sock.slice(1).reduce((s, x) => s + Number(x), 0) : 0);
  const load = {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50ms: pct("50"),
    p99ms: pct("99"),
    requests,
    errors,
    cpuUs: requests > 0 ? (cpu * 1e6) / requests : 0,
  };
  ctx.say(
    `tracker ${name}: ${load.rps.toFixed(0)} req/s, p99 ${load.p99ms.toFixed(1)} ms, ${errors} errors, tracker CPU ${load.cpuUs.toFixed(0)} µs/request`,
  );
  return load;
}

async function loadOne(ctx: Context, t: Tracker, seconds: number): Promise<[string, Load][]> {
  const owner = await setup(t);
  const list = { method: "GET", path: "/v1/groups/g/files", token: owner };
  // warm-up: JIT, SQLite's page cache, connection setup
  await wrk(ctx, t, "warm-up", list, 1);
  return [
    [
      "login (POST /v1/sessions)",
      await wrk(
        ctx,
        t,
        "login",
        {
          method: "POST",
          path: "/v1/sessions",
          body: { userId: "lb", password: "pw", peerAddr: "127.0.0.1:9", peerKey: TEST_PEER.publicKey },
        },
        seconds,
      ),
    ],
    ["list_files (GET /v1/groups/g/files)", await wrk(ctx, t, "list_files", list, seconds)],
    [
      `download start (POST …/files/f/download: ${PIECES} piece hashes, ticket, 3 peers)`,
      await wrk(
        ctx,
        t,
        "download",
        { method: "POST", path: "/v1/groups/g/files/f/download", body: {}, token: owner },
        seconds,
      ),
    ],
  ];
}

/** Requests per second and p99 latency under 50 connections, SQLite and PostgreSQL. */
export async function trackerPart(ctx: Context): Promise<Part> {
  await ensureTools(["wrk"], (l) => ctx.say(l));
  const seconds = ctx.opts.quick ? 2 : 5;
  const rows: (string | number)[][] = [];
  let listRps = Number.POSITIVE_INFINITY;
  for (const store of ["SQLite", "PostgreSQL"] as const) {
    let pg: TestPostgres | undefined;
    let t: Tracker | undefined;
    try {
      if (store === "PostgreSQL") {
        await ensurePackage(join(PG_BIN, "initdb"), "postgresql", (l) => ctx.say(l));
        pg = await startPostgres();
      }
      t = await startTracker(pg?.url);
      for (const [label, l] of await loadOne(ctx, t, seconds)) {
        if (label.startsWith("list_files")) listRps = Math.min(listRps, l.rps);
        rows.push([
          store,
          label,
          l.rps.toFixed(0),
          l.p50ms.toFixed(1),
          l.p99ms.toFixed(1),
          l.cpuUs.toFixed(0),
          `${l.requests} / ${l.errors}`,
        ]);
      }
    } finally {
      t?.agent.destroy();
      await t?.cluster.close();
      await pg?.stop().catch(() => {});
    }
  }
  const line = `list_files: **${listRps.toFixed(0)} requests/s** at the slower store (target ≥ ${LIST_FILES_TARGET}: ${verdict(listRps >= LIST_FILES_TARGET)}).`;
  return {
    key: "tracker",
    text: [
      "### Tracker load",
      "",
      mdTable(
        [
          "store",
          "request",
          "requests/s>",
          "p50 (ms)>",
          "p99 (ms)>",
          "tracker CPU per request (µs)>",
          "requests / errors>",
        ],
        rows,
      ),
      "",
      line,
      "",
      `wrk 4 (one thread, ${CONNECTIONS} connections, ${seconds} s each, after a 1 s warm-up) against one \`./tracker\` ` +
        "process on 127.0.0.1, on a fresh SQLite file and on a throwaway PostgreSQL 15 cluster " +
        "(test/helpers/postgres.ts). The group has 1 file shared by 4 online members. Login is the same user " +
        "again and again with the right password: each is one scrypt (N=16384, r=8: about 25 ms of CPU here, see the CPU " +
        "column, on libuv's thread pool) and a transaction that moves the session; so it is bound by scrypt on 2 cores, " +
        "by design (DESIGN.md: scrypt, per-user salt), and its p99 is the queue behind 50 connections. The " +
        "throttle only counts failed logins, so none is throttled here. Tracker CPU per request is the tracker " +
        "process's user + system time (/proc/<pid>/stat, 10 ms ticks) over the run divided by its requests " +
        "(for login it includes scrypt on the thread pool; PostgreSQL's own processes are not counted).",
    ].join("\n"),
  };
}

/** list_files with `n` files in one group: one request's time. */
export async function listFilesScaling(
  ctx: Context,
  n: number,
): Promise<{ rows: (string | number)[][]; note: string }> {
  const t = await startTracker(undefined);
  try {
    const owner = await setup(t);
    await api(t, "POST", "/v1/groups", { groupId: "big" }, owner);
    const started = performance.now();
    const queue = Array.from({ length: n }, (_, i) => i);
    // a few uploads in flight at once: the setup, not the figure
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
          await api(
            t,
            "POST",
            "/v1/groups/big/files",
            fakeFile(`file-${String(i).padStart(6, "0")}`, 1, i + 2),
            owner,
          );
        }
      }),
    );
    ctx.say(`list_files: ${n} files registered in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 21; i++) {
      const t0 = performance.now();
      const res = await trackerCall(t.port, {
        method: "GET",
        path: "/v1/groups/big/files",
        token: owner,
        agent: t.agent,
      });
      const body = res.text;
      times.push(performance.now() - t0);
      bytes = body.length;
      const count = (JSON.parse(body) as { files: unknown[] }).files.length;
      if (count !== n) throw new Error(`list_files returned ${count} files, expected ${n}`);
    }
    const ms = median(times.slice(1));
    ctx.say(`list_files with ${n} files: ${ms.toFixed(1)} ms`);
    return {
      rows: [
        [
          `list_files, ${n} files in the group (SQLite)`,
          `${ms.toFixed(1)} ms`,
          `${(bytes / 1e6).toFixed(2)} MB of JSON`,
        ],
      ],
      note: "list_files: median of 20 sequential requests after one warm-up, one connection at a time.",
    };
  } finally {
    t.agent.destroy();
    await t.cluster.close();
  }
}
