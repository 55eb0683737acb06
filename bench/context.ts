import { rm, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Cluster } from "../test/helpers/procs.js";
import { makeRandomFile } from "./files.js";
import { timed } from "./tools.js";
import { Swarm } from "./swarm.js";

export interface BenchFile {
  path: string;
  bytes: number;
  sha1: string;
  /** every piece's SHA1, concatenated, in a file (for the bare pipeline) */
  hashesPath: string;
}

export interface Options {
  /** small sizes and one run each: a check that every part works */
  quick: boolean;
  /** runs per timed case; the median is reported */
  runs: number;
  cpuProfDir: string | undefined;
  /** the swarm part's cases to run, by key (undefined: every case) */
  swarmCases?: string[] | undefined;
}

/** What the parts share: options, one Cluster and Swarm, random files made once. */
export class Context {
  #swarm: Promise<Swarm> | undefined;
  readonly #files = new Map<number, Promise<BenchFile>>();

  constructor(
    readonly opts: Options,
    readonly cluster: Cluster,
    /** seeders the swarm starts with (the largest count any part asks for) */
    readonly seeders: number,
  ) {}

  say(line: string): void {
    process.stderr.write(`bench: ${line}\n`);
  }

  /** Bounds for a phase that moves `bytes`: generous against a slow disk, finite against a hang. */
  boundMs(bytes: number, slowestBytesPerSec = 5e6): number {
    return 60_000 + Math.ceil((bytes / slowestBytesPerSec) * 1000);
  }

  /**
   * Before each timed run: the kernel writes back the dirty pages of what came
   * before (a file just made or downloaded), so no run pays for another's.
   */
  async settle(): Promise<void> {
    await timed("sync", [], 300_000);
  }

  swarm(): Promise<Swarm> {
    this.#swarm ??= (async () => {
      this.say(`starting a tracker and ${this.seeders} seeding clients`);
      return await Swarm.start(this.cluster, { seeders: this.seeders, cpuProfDir: this.opts.cpuProfDir });
    })();
    return this.#swarm;
  }

  /** A random file of `mibs` MiB, made once (streamed: never whole in memory). */
  file(mibs: number): Promise<BenchFile> {
    let f = this.#files.get(mibs);
    if (!f) {
      f = this.#make(mibs);
      this.#files.set(mibs, f);
    }
    return f;
  }

  async #make(mibs: number): Promise<BenchFile> {
    const bytes = mibs * 2 ** 20;
    const path = join(this.cluster.dir, `bench-${mibs}MiB.bin`);
    // the file, a downloaded copy, and room to spare
    const st = await statfs(this.cluster.dir);
    const free = st.bavail * st.bsize;
    if (free < 2 * bytes + 2 ** 30) {
      throw new Error(
        `${mibs} MiB needs ${mib(2 * bytes + 2 ** 30)} MiB free in ${this.cluster.dir}; ${mib(free)} MiB left`,
      );
    }
    this.say(`writing ${mibs} MiB of random data to ${path}`);
    const { sha1, pieces } = await makeRandomFile(path, bytes, { pieces: true });
    const hashesPath = `${path}.sha1s`;
    await writeFile(hashesPath, pieces!);
    return { path, bytes, sha1, hashesPath };
  }

  /** Deletes the file and every seeder's link of it: the disk space comes back. */
  async release(mibs: number): Promise<void> {
    const f = this.#files.get(mibs);
    if (!f) return;
    this.#files.delete(mibs);
    const file = await f;
    if (this.#swarm) await (await this.#swarm).forget(file.path);
    await rm(file.path, { force: true });
    await rm(file.hashesPath, { force: true });
  }

  async close(): Promise<void> {
    if (this.#swarm) await (await this.#swarm).stop().catch(() => {});
  }
}

const mib = (b: number) => (b / 2 ** 20).toFixed(0);
