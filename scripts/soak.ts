/**
 * Soak test, run on demand: `npm run soak -- [--minutes N] [--seed S] [--keep]`.
 * Not part of `npm test`.
 *
 * Two trackers over one SQLite store and ten clients in one group. For N minutes
 * (default 3) the clients share and download random files while a seeded PRNG kills
 * clients (SIGKILL, then a restart with the same state directory and port, and a
 * login that re-shares and resumes; some are killed just after starting a download)
 * and trackers (SIGKILL, then a restart). Then
 * every process is brought back and the downloads are given a bounded time to end.
 *
 * Checks, written to <run dir>/soak-summary.json and printed:
 * - every file under a final download name is byte-identical to its original;
 * - no partial file sits under a final name (every non-.gspart file is a completed
 *   download), and every download ended complete;
 * - no process's memory grew without bound (RSS sampled every few seconds).
 * Exits 0 when every check holds, 1 otherwise. The run directory is removed on
 * success unless --keep.
 */
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { prng, sha1File, writeRandomFile } from "../test/helpers/files.js";
import { Cluster, type Proc } from "../test/helpers/procs.js";

const CLIENTS = 10;
const TRACKERS = 2;
/** At most this many clients are down at once (the rest keep sharing). */
const MAX_CLIENTS_DOWN = 3;
const MAX_FILE_BYTES = 6 * 1024 * 1024;
/** After the chaos: every download must end within this. */
const SETTLE_MS = 150_000;
/** RSS is sampled this often. */
const SAMPLE_MS = 3_000;
/**
 * A process "grew without bound" when the median RSS of the last third of its samples
 * is more than this above the first third's (a leak of the size of what it moved).
 */
const RSS_GROWTH_BOUND = 128 * 1024 * 1024;
/** And no process may ever exceed this. */
const RSS_CEILING = 512 * 1024 * 1024;
const COMMAND_MS = 30_000;

interface Options {
  minutes: number;
  seed: number;
  keep: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { minutes: 3, seed: 1, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--minutes") o.minutes = Number(argv[++i]);
    else if (a === "--seed") o.seed = Number(argv[++i]);
    else if (a === "--keep") o.keep = true;
    else {
      process.stderr.write(`usage: soak [--minutes N] [--seed S] [--keep]\n`);
      process.exit(2);
    }
  }
  if (!(o.minutes > 0 && o.minutes <= 30)) throw new Error("--minutes must be in (0, 30]");
  if (!Number.isInteger(o.seed)) throw new Error("--seed must be an integer");
  return o;
}

async function rssOf(pid: number | undefined): Promise<number | undefined> {
  if (!pid) return undefined;
  const text = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const m = /^VmRSS:\s+(\d+) kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

interface SharedFile {
  name: string;
  sha1: string;
  size: number;
  owner: number;
}

interface DownloadRecord {
  client: number;
  name: string;
  target: string;
}

/** One client slot: its current process (replaced on restart), state dir, port and history. */
interface Slot {
  no: number;
  user: string;
  proc: Proc & { port: number };
  /** every process this slot has had: their lines tell how downloads ended */
  past: Proc[];
  busy: Promise<unknown>;
  up: boolean;
  files: string;
  downloads: string;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const rand = prng(opts.seed);
  const pick = <T>(xs: T[]): T | undefined =>
    xs.length === 0 ? undefined : xs[Math.floor(rand() * xs.length)];
  const startedAt = Date.now();
  const log = (line: string) =>
    process.stdout.write(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);

  const c = await Cluster.create(TRACKERS);
  log(`soak: ${opts.minutes} min, seed ${opts.seed}, ${CLIENTS} clients, ${TRACKERS} trackers, in ${c.dir}`);
  const trackers: (Proc | undefined)[] = [];
  for (let t = 1; t <= TRACKERS; t++) trackers[t] = await c.tracker(t);

  const counts = { uploads: 0, downloadsStarted: 0, clientKills: 0, trackerKills: 0, commandErrors: 0 };
  const files: SharedFile[] = [];
  const downloads: DownloadRecord[] = [];
  const slots: Slot[] = [];
  /** RSS samples per process instance. */
  const samples = new Map<string, { label: string; rss: number[] }>();

  async function startClient(no: number, port?: number): Promise<Proc & { port: number }> {
    const user = `u${no}`;
    return c.client(user, { stateDir: join(c.dir, `state-${user}`), ...(port ? { port } : {}) });
  }

  /** Runs one command on a slot, after the slot's previous one (the output cursor is per process). */
  function on<T>(s: Slot, fn: (p: Proc) => Promise<T>): Promise<T | undefined> {
    const next = s.busy.then(async () => {
      if (!s.up) return undefined;
      try {
        return await fn(s.proc);
      } catch (err) {
        // a process killed under its command, or a command refused: counted, not fatal
        if (s.up) {
          counts.commandErrors++;
          log(`u${s.no}: ${(err as Error).message.split("\n")[0]}`);
        }
        return undefined;
      }
    });
    s.busy = next.catch(() => {});
    return next;
  }

  for (let no = 0; no < CLIENTS; no++) {
    const proc = await startClient(no);
    const s: Slot = {
      no,
      user: `u${no}`,
      proc,
      past: [proc],
      busy: Promise.resolve(),
      up: true,
      files: join(c.dir, `files-u${no}`),
      downloads: join(c.dir, `dl-u${no}`),
    };
    await mkdir(s.files);
    await mkdir(s.downloads);
    await proc.run(`create_user ${s.user} pw`, /^user .* created/, COMMAND_MS);
    await proc.run(`login ${s.user} pw`, /^logged in as/, COMMAND_MS);
    slots.push(s);
  }
  await slots[0]!.proc.run("create_group g", /^group g created/, COMMAND_MS);
  for (const s of slots.slice(1)) {
    await s.proc.run("join_group g", /^asked to join/, COMMAND_MS);
    await slots[0]!.proc.run(`accept_request g ${s.user}`, /is now a member/, COMMAND_MS);
  }
  log("setup done: ten members of g");

  const sampler = setInterval(() => {
    const procs: Proc[] = [...slots.map((s) => s.proc), ...trackers.filter((t): t is Proc => !!t)];
    for (const p of procs) {
      if (!p.alive) continue;
      const key = `${p.label}#${p.child.pid}`;
      void rssOf(p.child.pid).then((rss) => {
        if (rss === undefined) return;
        const e = samples.get(key) ?? { label: key, rss: [] };
        samples.set(key, e);
        e.rss.push(rss);
      });
    }
  }, SAMPLE_MS);

  let fileNo = 0;
  async function upload(s: Slot): Promise<void> {
    const no = fileNo++;
    const name = `f${no}.bin`;
    const size = Math.floor(rand() * MAX_FILE_BYTES) + (rand() < 0.1 ? 0 : 1);
    const path = join(s.files, name);
    const sha1 = await writeRandomFile(path, size, `soak ${opts.seed} ${no}`);
    const ok = await on(s, (p) => p.run(`upload_file ${path} g`, /^uploaded |^error:/, COMMAND_MS));
    if (ok?.startsWith("uploaded")) {
      files.push({ name, sha1, size, owner: s.no });
      counts.uploads++;
    }
  }

  async function download(s: Slot): Promise<void> {
    const f = pick(
      files.filter((x) => x.owner !== s.no && !downloads.some((d) => d.client === s.no && d.name === x.name)),
    );
    if (!f) return;
    const answer = await on(s, (p) =>
      p.run(`download_file g ${f.name} ${s.downloads}`, /^downloading |^error:/, COMMAND_MS),
    );
    if (answer?.startsWith("downloading")) {
      downloads.push({ client: s.no, name: f.name, target: join(s.downloads, f.name) });
      counts.downloadsStarted++;
    }
  }

  /** A download, and its downloader SIGKILLed a moment later: mid-download, to resume at login. */
  async function downloadThenKill(s: Slot): Promise<void> {
    await download(s);
    await delay(rand() * 150);
    await killClient(s);
  }

  async function killClient(s: Slot): Promise<void> {
    s.up = false;
    counts.clientKills++;
    log(`SIGKILL u${s.no}`);
    await s.proc.kill("SIGKILL");
    await delay(500 + rand() * 4_000);
    await restartClient(s);
  }

  async function restartClient(s: Slot): Promise<void> {
    s.proc = await startClient(s.no, s.proc.port);
    s.past.push(s.proc);
    s.busy = Promise.resolve();
    s.up = true;
    const line = await on(s, (p) => p.run(`login ${s.user} pw`, /^logged in as|^error:/, COMMAND_MS));
    log(`restarted u${s.no}: ${line ?? "no answer"}`);
  }

  async function killTracker(t: number): Promise<void> {
    const p = trackers[t];
    if (!p) return;
    trackers[t] = undefined;
    counts.trackerKills++;
    log(`SIGKILL tracker ${t}`);
    await p.kill("SIGKILL");
    await delay(1_000 + rand() * 5_000);
    trackers[t] = await c.tracker(t);
    log(`restarted tracker ${t}`);
  }

  // the chaos: one action per tick, none awaited by the loop (they overlap as in real use)
  const chaosEnd = Date.now() + opts.minutes * 60_000;
  const inFlight = new Set<Promise<void>>();
  const spawn = (p: Promise<void>) => {
    const q = p.catch((err) => {
      log(`action failed: ${(err as Error).message.split("\n")[0]}`);
    });
    inFlight.add(q);
    void q.finally(() => inFlight.delete(q));
  };
  while (Date.now() < chaosEnd) {
    const r = rand();
    const up = slots.filter((s) => s.up);
    if (r < 0.3) {
      const s = pick(up);
      if (s) spawn(upload(s));
    } else if (r < 0.8) {
      const s = pick(up);
      if (s) spawn(download(s));
    } else if (r < 0.86) {
      const s = pick(up);
      if (s && slots.length - up.length < MAX_CLIENTS_DOWN) spawn(killClient(s));
    } else if (r < 0.93) {
      const s = pick(up);
      if (s && slots.length - up.length < MAX_CLIENTS_DOWN) spawn(downloadThenKill(s));
    } else {
      const t = 1 + Math.floor(rand() * TRACKERS);
      if (trackers.every((x) => x)) spawn(killTracker(t));
    }
    await delay(300 + rand() * 900);
  }
  log(`chaos over: ${JSON.stringify(counts)}; waiting for restarts`);
  await Promise.all([...inFlight]);

  // every download ends (all sharers are back), within SETTLE_MS
  const settleEnd = Date.now() + SETTLE_MS;
  for (;;) {
    const active = slots.filter((s) => {
      const ended = endings(s);
      return downloads.some((d) => d.client === s.no && !ended.has(d.name));
    });
    if (active.length === 0) break;
    if (Date.now() > settleEnd) {
      log(`settle timed out: downloads still running on ${active.map((s) => s.user).join(", ")}`);
      break;
    }
    await delay(2_000);
  }
  clearInterval(sampler);

  /** How each download of a slot ended, from every process it has had: name -> "complete" | reason. */
  function endings(s: Slot): Map<string, string> {
    const m = new Map<string, string>();
    for (const p of s.past) {
      for (const l of p.lines) {
        const done = /^download complete: \[g\] (\S+) -> /.exec(l);
        if (done) m.set(done[1]!, "complete");
        const failed = /^download failed: \[g\] (\S+): (.*)$/.exec(l);
        if (failed) m.set(failed[1]!, failed[2]!);
      }
    }
    return m;
  }

  // checks
  const problems: string[] = [];
  let completed = 0;
  let identical = 0;
  const failures: string[] = [];
  for (const d of downloads) {
    const s = slots[d.client]!;
    const how = endings(s).get(d.name);
    if (how === undefined) problems.push(`u${d.client}: ${d.name} never ended`);
    else if (how !== "complete") failures.push(`u${d.client}: ${d.name}: ${how}`);
    else completed++;
  }
  if (failures.length > 0) problems.push(...failures.map((f) => `download failed: ${f}`));
  for (const s of slots) {
    for (const entry of await readdir(s.downloads)) {
      const path = join(s.downloads, entry);
      if (entry.endsWith(".gspart")) {
        const name = entry.slice(0, -".gspart".length);
        if (endings(s).get(name) === "complete")
          problems.push(`${path}: left behind by a completed download`);
        continue;
      }
      const f = files.find((x) => x.name === entry);
      if (!f) {
        problems.push(`${path}: not a file of the group`);
        continue;
      }
      if (endings(s).get(entry) !== "complete")
        problems.push(`${path}: under a final name but never completed`);
      if ((await sha1File(path)) === f.sha1) identical++;
      else problems.push(`${path}: differs from the original (a partial or corrupt file under a final name)`);
    }
  }
  const memory = [...samples.values()].map((e) => {
    const third = Math.max(1, Math.floor(e.rss.length / 3));
    const first = median(e.rss.slice(0, third));
    const last = median(e.rss.slice(-third));
    const peak = Math.max(...e.rss);
    return { process: e.label, samples: e.rss.length, first, last, peak, growth: last - first };
  });
  for (const m of memory) {
    if (m.peak > RSS_CEILING)
      problems.push(`${m.process}: RSS peaked at ${mib(m.peak)} (> ${mib(RSS_CEILING)})`);
    if (m.samples >= 9 && m.growth > RSS_GROWTH_BOUND) {
      problems.push(`${m.process}: RSS grew from ${mib(m.first)} to ${mib(m.last)}`);
    }
  }

  const summary = {
    ok: problems.length === 0,
    seed: opts.seed,
    minutes: opts.minutes,
    seconds: Math.round((Date.now() - startedAt) / 1000),
    ...counts,
    downloadsResumedAtLogin: slots
      .flatMap((s) => s.past)
      .reduce((n, p) => n + p.lines.filter((l) => l.startsWith("resuming download of ")).length, 0),
    downloadsCompleted: completed,
    filesByteIdentical: identical,
    downloadsFailed: failures.length,
    problems,
    memory: {
      processes: memory.length,
      maxPeak: mib(Math.max(0, ...memory.map((m) => m.peak))),
      maxGrowth: mib(Math.max(0, ...memory.map((m) => m.growth))),
      worst: memory
        .sort((a, b) => b.growth - a.growth)
        .slice(0, 5)
        .map(
          (m) =>
            `${m.process}: ${mib(m.first)} -> ${mib(m.last)} (peak ${mib(m.peak)}, ${m.samples} samples)`,
        ),
    },
  };
  const text = JSON.stringify(summary, null, 2);
  const summaryPath = join(c.dir, "soak-summary.json");
  await writeFile(summaryPath, `${text}\n`);
  process.stdout.write(`${text}\n`);
  const keep = opts.keep || !summary.ok;
  if (keep) {
    await Promise.all(c.procs.map((p) => p.kill()));
    log(`run directory kept: ${c.dir} (summary in ${summaryPath})`);
  } else {
    await c.close();
    await rm(c.dir, { recursive: true, force: true });
  }
  process.exit(summary.ok ? 0 : 1);
}

main().catch((err) => {
  process.stderr.write(`soak: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
