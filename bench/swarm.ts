import { link, mkdir, readFile, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { type Cluster, freePort, Proc, ROOT } from "../test/helpers/procs.js";
import { sha1File } from "./files.js";
import { cpuTime } from "./tools.js";

/** Every command of the setup answers within this bound. */
const COMMAND_MS = 20_000;
/** Groups every seeder and the downloading user belong to. */
export const GROUPS = ["one", "all", "scale"] as const;
export type Group = (typeof GROUPS)[number];

export interface SwarmOptions {
  /** Seeder processes (seeder 1 owns every group). */
  seeders: number;
  /** If set, seeder 1 and every downloader run under `node --cpu-prof` and leave their profiles here. */
  cpuProfDir?: string;
}

export interface DownloadResult {
  seconds: number;
  /** The downloader's VmHWM when the complete line appeared, in bytes. */
  peakBytes: number;
  /** CPU time (user + system) the downloader had used by then, in seconds: less noisy than wall time on a busy box. */
  cpuSeconds: number;
  /** CPU time every seeder used from download_file to the complete line, summed, in seconds. */
  seedersCpuSeconds: number;
}

/**
 * One tracker, `seeders` seeding clients and one downloading user, all real
 * processes of one Cluster on 127.0.0.1, every one a member of every group of
 * GROUPS. Which seeders share a file in a group is up to `share`; each seeder
 * uploads its own hard link of the file (the same content by another member
 * adds a seeder).
 */
export class Swarm {
  readonly seeders: Proc[] = [];
  #runs = 0;
  /** "seeder group name" for every upload done, so a second share() skips it. */
  readonly #shared = new Set<string>();

  private constructor(
    readonly cluster: Cluster,
    readonly opts: SwarmOptions,
  ) {}

  static async start(cluster: Cluster, opts: SwarmOptions): Promise<Swarm> {
    const s = new Swarm(cluster, opts);
    await cluster.tracker(1);
    for (let i = 1; i <= opts.seeders; i++) {
      const p = await s.#client(`seeder${i}`, join(cluster.dir, `state-seeder${i}`), i === 1);
      s.seeders.push(p);
      await p.run(`create_user s${i} pw`, /^user s\d+ created/, COMMAND_MS);
      await p.run(`login s${i} pw`, /^logged in as/, COMMAND_MS);
    }
    const owner = s.seeders[0]!;
    for (const g of GROUPS) {
      await owner.run(`create_group ${g}`, /^group \S+ created/, COMMAND_MS);
      for (const [i, p] of s.seeders.entries()) {
        if (i === 0) continue;
        await p.run(`join_group ${g}`, /^asked to join/, COMMAND_MS);
        await owner.run(`accept_request ${g} s${i + 1}`, /is now a member/, COMMAND_MS);
      }
    }
    // the downloading user, set up once; each run logs it in from a fresh client
    const dl = await s.#client("dl-setup", join(cluster.dir, "state-dl-setup"), false);
    await dl.run("create_user dl pw", /^user dl created/, COMMAND_MS);
    await dl.run("login dl pw", /^logged in as/, COMMAND_MS);
    for (const g of GROUPS) {
      await dl.run(`join_group ${g}`, /^asked to join/, COMMAND_MS);
      await owner.run(`accept_request ${g} dl`, /is now a member/, COMMAND_MS);
    }
    dl.endInput();
    await dl.waitExit(COMMAND_MS);
    return s;
  }

  /**
   * Seeders `which` (1-based) share `file` in `group`, each its own hard link of it,
   * all at once (each hashes the file; the box has two cores). Returns the slowest
   * upload_file's seconds. A seeder that already shares the file there is skipped.
   */
  async share(file: string, group: Group, which: number[], timeoutMs: number): Promise<number> {
    const name = basename(file);
    const started = performance.now();
    await Promise.all(
      which.map(async (no) => {
        const key = `${no} ${group} ${name}`;
        if (this.#shared.has(key)) return;
        const p = this.seeders[no - 1];
        if (!p) throw new Error(`no seeder ${no}`);
        const own = await this.#link(file, no);
        await p.run(`upload_file ${own} ${group}`, /^uploaded /, timeoutMs);
        this.#shared.add(key);
      }),
    );
    return (performance.now() - started) / 1000;
  }

  /** Removes every seeder's hard link of `file` (frees the disk; the seeders stop serving it). */
  async forget(file: string): Promise<void> {
    const name = basename(file);
    for (let no = 1; no <= this.seeders.length; no++) {
      await rm(join(this.cluster.dir, `files-seeder${no}`, name), { force: true });
    }
    for (const key of [...this.#shared]) if (key.endsWith(` ${name}`)) this.#shared.delete(key);
  }

  async #link(file: string, no: number): Promise<string> {
    const dir = join(this.cluster.dir, `files-seeder${no}`);
    await mkdir(dir, { recursive: true });
    const own = join(dir, basename(file));
    await link(file, own).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    return own;
  }

  /**
   * Downloads `name` from `group` with a fresh client (fresh state dir and
   * destination), timed from sending download_file to its complete line; checks
   * the result's SHA1, then removes it and lets the client exit.
   */
  async download(group: string, name: string, sha1: string, timeoutMs: number): Promise<DownloadResult> {
    const run = ++this.#runs;
    const out = join(this.cluster.dir, `out-${run}`);
    await mkdir(out);
    const p = await this.#client(`downloader${run}`, join(this.cluster.dir, `state-dl-${run}`), true);
    try {
      await p.run("login dl pw", /^logged in as/, COMMAND_MS);
      const seedersCpu = () => Promise.all(this.seeders.map((s) => cpuTime(s.child.pid!)));
      const cpu0 = await seedersCpu();
      const started = performance.now();
      await p.run(`download_file ${group} ${name} ${out}`, /^downloading /, COMMAND_MS);
      const end = await p.expect(/^download (complete|failed)/, timeoutMs);
      const seconds = (performance.now() - started) / 1000;
      const seedersCpuSeconds = (await seedersCpu()).reduce((sum, t, i) => sum + t - cpu0[i]!, 0);
      const peakBytes = await peakMemory(p);
      const cpuSeconds = await cpuTime(p.child.pid!);
      if (!end.startsWith("download complete")) throw new Error(`${p.label}: ${end}`);
      p.endInput();
      const code = await p.waitExit(COMMAND_MS);
      if (code !== 0) throw new Error(`${p.label} exited with ${code}\n${p.dump()}`);
      const got = await sha1File(join(out, name));
      if (got !== sha1) throw new Error(`${p.label}: downloaded file has SHA1 ${got}, expected ${sha1}`);
      return { seconds, peakBytes, cpuSeconds, seedersCpuSeconds };
    } finally {
      await p.kill();
      await rm(out, { recursive: true, force: true });
    }
  }

  /** Ends every client's input so that each exits cleanly (and writes its profile, if any). */
  async stop(): Promise<void> {
    for (const p of this.seeders) p.endInput();
    await Promise.all(this.seeders.map((p) => p.waitExit(COMMAND_MS)));
  }

  async #client(label: string, stateDir: string, profiled: boolean): Promise<Proc> {
    const port = await freePort();
    const dir = this.opts.cpuProfDir;
    const args = [`127.0.0.1:${port}`, this.cluster.infoPath, "--state-dir", stateDir];
    // node refuses --cpu-prof in NODE_OPTIONS: run the client's entry point under node directly
    const p =
      dir && profiled
        ? new Proc(label, process.execPath, [
            "--cpu-prof",
            `--cpu-prof-dir=${dir}`,
            `--cpu-prof-name=${label}.cpuprofile`,
            join(ROOT, "dist/src/client/main.js"),
            ...args,
          ])
        : new Proc(label, join(ROOT, "client"), args);
    this.cluster.procs.push(p);
    return p;
  }
}

/** VmHWM (peak resident set) of a live process, in bytes. */
async function peakMemory(p: Proc): Promise<number> {
  const status = await readFile(`/proc/${p.child.pid}/status`, "utf8");
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  if (!kb) throw new Error(`no VmHWM in /proc/${p.child.pid}/status`);
  return Number(kb) * 1024;
}
