/**
 * groupshare's flash crowd on the lab: one ./tracker, one seeding client (kept
 * for every run) and, per run, a fresh client on each of N downloader hosts that
 * all send download_file at once. With `traceDir`, every client runs with
 * swarmTrace.js preloaded and leaves a trace there.
 */
import { mkdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { type Proc, ROOT } from "../../test/helpers/procs.js";
import { type ClientOptions, startClient, startTracker } from "../../test/lab/groupshare.js";
import { sha1File } from "../files.js";
import { cpuSplit } from "../tools.js";
import type { Crowd } from "./swarmCrowd.js";

/** Every command of the setup answers within this bound. */
const COMMAND_MS = 30_000;
const GROUP = "crowd";

export interface CrowdRun {
  /** when the download commands went out (ms since the epoch) */
  t0: number;
  /** each downloader's completion, seconds after t0, in host order */
  seconds: number[];
  /** each downloader's CPU time (user + system) at its completion, seconds */
  cpuSeconds: number[];
  /** the seeder's CPU time during the run, seconds */
  seedCpuSeconds: number;
  /**
   * CPU spent from t0 by the seeder (to the last completion) and by each downloader
   * (to its completion), in user space and in the kernel, seconds: what the run
   * itself took of the box, without start-up and login
   */
  runCpu: CpuSplit;
  /** traces of this run: downloader i's file, and the seeder's (whose events before t0 are older runs') */
  traces?: { peers: string[]; seed: string };
}

export class GsCrowd {
  #runs = 0;
  readonly #fileName: string;

  private constructor(
    readonly crowd: Crowd,
    readonly dir: string,
    readonly infoPath: string,
    readonly seeder: Proc,
    readonly file: { path: string; sha1: string },
    readonly traceDir: string | undefined,
    readonly cpuProf: boolean,
  ) {
    this.#fileName = basename(file.path);
  }

  static async start(
    crowd: Crowd,
    dir: string,
    file: { path: string; sha1: string },
    traceDir?: string,
    cpuProf = false,
  ): Promise<GsCrowd> {
    await mkdir(dir, { recursive: true });
    const { infoPath } = await startTracker(crowd.tracker, dir);
    const opts = traced(traceDir, "seed", cpuProf);
    const seeder = startClient(crowd.seed, "gs-seeder", infoPath, dir, opts);
    await seeder.run("create_user owner pw", /^user owner created/, COMMAND_MS);
    await login(seeder, "owner");
    await seeder.run(`create_group ${GROUP}`, /^group \S+ created/, COMMAND_MS);
    await seeder.run(`upload_file ${file.path} ${GROUP}`, /^uploaded /, COMMAND_MS);
    // every downloader's user, made once: joined and accepted
    const setup = startClient(crowd.peers[0]!, "gs-setup", infoPath, dir);
    for (let i = 1; i <= crowd.peers.length; i++) {
      await setup.run(`create_user u${i} pw`, /^user \S+ created/, COMMAND_MS);
      await login(setup, `u${i}`);
      await setup.run(`join_group ${GROUP}`, /^asked to join/, COMMAND_MS);
      await setup.run("logout", /^logged out/, COMMAND_MS);
      await seeder.run(`accept_request ${GROUP} u${i}`, /is now a member/, COMMAND_MS);
    }
    setup.endInput();
    await setup.waitExit(COMMAND_MS);
    return new GsCrowd(crowd, dir, infoPath, seeder, file, traceDir, cpuProf);
  }

  /**
   * One flash crowd of the first `n` downloader hosts: each logs in with a fresh
   * client, then all get download_file at once; timed to each one's complete
   * line. With `depart`, each client leaves (logs out and exits) as soon as its
   * download completes. Checks every copy's SHA1 afterwards, untimed.
   */
  async run(n: number, depart: boolean, timeoutMs: number): Promise<CrowdRun> {
    const run = ++this.#runs;
    const procs: Proc[] = [];
    const outs: string[] = [];
    const traces: string[] = [];
    try {
      for (let i = 1; i <= n; i++) {
        const out = join(this.dir, `out-${run}-${i}`);
        await mkdir(out);
        outs.push(out);
        const trace = this.traceDir && join(this.traceDir, `run${run}-d${i}.jsonl`);
        if (trace) traces.push(trace);
        const p = startClient(
          this.crowd.peers[i - 1]!,
          `gs-d${i}`,
          this.infoPath,
          join(this.dir, `run${run}`),
          {
            ...(this.traceDir && traced(this.traceDir, `run${run}-d${i}`, this.cpuProf)),
          },
        );
        procs.push(p);
      }
      // one at a time, untimed: 16 scrypts at once on a busy box outlast the client's 3 s tracker timeout
      for (const [i, p] of procs.entries()) await login(p, `u${i + 1}`);
      const seedSplit0 = await splitOf(this.seeder.child.pid);
      const splits0 = await Promise.all(procs.map((p) => splitOf(p.child.pid)));
      const t0 = Date.now();
      for (const [i, p] of procs.entries()) p.send(`download_file ${GROUP} ${this.#fileName} ${outs[i]}`);
      const ends = await Promise.all(
        procs.map(async (p) => {
          const line = await p.expect(/^download (complete|failed)/, timeoutMs);
          const seconds = (Date.now() - t0) / 1000;
          if (!line.startsWith("download complete")) throw new Error(`${p.label}: ${line}\n${p.dump()}`);
          const split = await splitOf(p.child.pid);
          if (depart) p.endInput();
          return { seconds, split };
        }),
      );
      const seedSplit = await splitOf(this.seeder.child.pid);
      const runCpu = spentSince([seedSplit0, ...splits0], [seedSplit, ...ends.map((e) => e.split)]);
      for (const p of procs) p.endInput();
      await Promise.all(procs.map((p) => p.waitExit(COMMAND_MS)));
      for (const [i, out] of outs.entries()) {
        const got = await sha1File(join(out, this.#fileName));
        if (got !== this.file.sha1) throw new Error(`gs-d${i + 1}: the copy's SHA1 is ${got}`);
      }
      return {
        t0,
        seconds: ends.map((e) => e.seconds),
        cpuSeconds: ends.map((e) => total(e.split)),
        seedCpuSeconds: total(seedSplit) - total(seedSplit0),
        runCpu,
        ...(this.traceDir && { traces: { peers: traces, seed: join(this.traceDir, "seed.jsonl") } }),
      };
    } finally {
      await Promise.all(procs.map((p) => p.kill()));
      for (const out of outs) await rm(out, { recursive: true, force: true });
      await rm(join(this.dir, `run${run}`), { recursive: true, force: true });
    }
  }

  async stop(): Promise<void> {
    this.seeder.endInput();
    await this.seeder.waitExit(COMMAND_MS);
  }
}

/** Logs in, again after a tracker timeout (the box is shared; the setup is not what is measured). */
async function login(p: Proc, user: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const line = await p.run(`login ${user} pw`, /^(logged in as|error:)/, COMMAND_MS);
    if (line.startsWith("logged in as")) return;
    if (attempt === 3 || !line.includes("no tracker answered")) throw new Error(`${p.label}: ${line}`);
  }
}

function traced(traceDir: string | undefined, name: string, cpuProf: boolean): ClientOptions {
  if (!traceDir) return {};
  const preload = pathToFileURL(join(ROOT, "dist/bench/parts/swarmTrace.js")).href;
  // with cpuProf, a CPU profile beside the trace (node writes it at exit: DIR/<name>.cpuprofile)
  const prof = cpuProf
    ? ["--cpu-prof", "--cpu-prof-dir", traceDir, "--cpu-prof-name", `${name}.cpuprofile`]
    : [];
  return { nodeArgs: ["--import", preload, ...prof], env: { GS_TRACE: join(traceDir, `${name}.jsonl`) } };
}

export interface CpuSplit {
  user: number;
  system: number;
}

/** A process's CPU time so far, split; NaN once it has exited. */
export async function splitOf(pid: number | undefined): Promise<CpuSplit> {
  if (pid === undefined) return { user: Number.NaN, system: Number.NaN };
  return await cpuSplit(pid).catch(() => ({ user: Number.NaN, system: Number.NaN }));
}

/** What processes spent between two readings each (the same order), summed. */
export function spentSince(before: CpuSplit[], after: CpuSplit[]): CpuSplit {
  let user = 0;
  let system = 0;
  for (const [i, a] of after.entries()) {
    user += a.user - before[i]!.user;
    system += a.system - before[i]!.system;
  }
  return { user, system };
}

/** User + system. */
export const total = (s: CpuSplit): number => s.user + s.system;
