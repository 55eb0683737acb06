/**
 * npm run bench [-- --only download,hash,memory,tracker,scaling,swarm,crypto,nat,limits] [--quick] [--runs N]
 *                  [--size-mib N] [--no-record] [--cpu-prof DIR]
 *
 * The benchmarks on 127.0.0.1, real tracker and client processes throughout:
 *   download  a 1 GiB file from 1 and 4 seeders against the bare Node pipeline (the limit) and aria2c
 *   hash      upload_file's hashing of 1 GiB against sha1sum and mktorrent
 *   memory    the downloader's peak memory for 256 MiB, 1 GiB and 4 GiB files
 *   tracker   requests/s and p99 of login, list_files and a download's start, 50 connections, SQLite and PostgreSQL
 *   scaling   1, 2, 4, 8 seeders; list_files with 10,000 files; a 10 GiB file's memory
 *   swarm     a flash crowd on capped links in the network lab (root), beside aria2c and the fluid bound
 *   crypto    plain TCP, TLS 1.3 (AES-128-GCM, ChaCha20-Poly1305) and Noise XX moving bytes over loopback
 *   nat       one download per path (direct, reversed, punched, relayed) behind lab routers (root)
 *   limits    --max-down, --max-up and set_limit held on real traffic in the lab and on loopback (root)
 * Prints each part and rewrites its subsection of BENCHMARKS.md's "## Figures"
 * section (others stay). Missing tools (aria2, mktorrent, opentracker, wrk,
 * postgresql) are installed with apt-get. Every process and temp file is removed
 * at the end, whatever happens; the whole run is cut off after WATCHDOG_MS; a
 * failure exits non-zero.
 */
import { mkdir } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { Cluster, ROOT } from "../test/helpers/procs.js";
import { Context } from "./context.js";
import { describeMachine } from "./machine.js";
import { cryptoPart } from "./parts/crypto.js";
import { downloadPart } from "./parts/download.js";
import { hashPart } from "./parts/hash.js";
import { limitsPart } from "./parts/limits.js";
import { memoryPart } from "./parts/memory.js";
import { natPart } from "./parts/nat.js";
import { SCALE_SEEDERS, scalingPart } from "./parts/scaling.js";
import { SWARM_CASE_KEYS, swarmPart } from "./parts/swarm.js";
import { trackerPart } from "./parts/tracker.js";
import { type Part, writeParts } from "./report.js";

const PARTS = [
  "download",
  "hash",
  "memory",
  "tracker",
  "scaling",
  "swarm",
  "crypto",
  "nat",
  "limits",
] as const;
type PartName = (typeof PARTS)[number];

const USAGE = `usage: npm run bench -- [--only PARTS] [--quick] [--runs N] [--size-mib N] [--no-record] [--cpu-prof DIR]
                        [--swarm-cases KEYS]
  --only PARTS    comma-separated, of: ${PARTS.join(", ")} (default: all)
  --quick         small files (64 MiB, 1,000 listed files, 512 MiB for the large file; the swarm: 16 MiB,
                  N = 4 and 6; limits: 96 MiB, 12 s spans) and 1 run: checks the bench
  --runs N        runs per timed case; the median is reported (default 3; --quick: 1)
  --size-mib N    the download and hash parts' file size (default 1024)
  --swarm-cases KEYS  the swarm part's cases, comma-separated, of: small, large, asymmetric, departure
                  (default: all; fewer implies --no-record: the table would lose rows)
  --no-record     print the figures only; leave BENCHMARKS.md alone
  --cpu-prof DIR  run seeder 1 and every downloader under node --cpu-prof, profiles in DIR
                  (the swarm part: each client's trace, bench/parts/swarmTrace.ts, in DIR/swarm)
                  (summarise one with: node dist/bench/profile.js DIR/downloader1.cpuprofile)`;

/** The whole run is cut off after this long, whatever it is doing (a full run takes 20-30 minutes here). */
const WATCHDOG_MS = 60 * 60_000;

interface Args {
  parts: PartName[];
  quick: boolean;
  runs: number | undefined;
  sizeMiB: number | undefined;
  record: boolean;
  cpuProfDir: string | undefined;
  swarmCases: string[] | undefined;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    parts: [...PARTS],
    quick: false,
    runs: undefined,
    sizeMiB: undefined,
    record: true,
    cpuProfDir: undefined,
    swarmCases: undefined,
  };
  const count = (flag: string, v: string | undefined, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new Error(`${flag} needs a whole number 1..${max}\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === "--only") {
      const names = (argv[++i] ?? "").split(",").filter(Boolean);
      const bad = names.find((n) => !(PARTS as readonly string[]).includes(n));
      if (names.length === 0 || bad) throw new Error(`--only takes parts of: ${PARTS.join(", ")}\n${USAGE}`);
      a.parts = PARTS.filter((p) => names.includes(p));
    } else if (f === "--quick") a.quick = true;
    else if (f === "--runs") a.runs = count(f, argv[++i], 50);
    else if (f === "--size-mib") a.sizeMiB = count(f, argv[++i], 16_384);
    else if (f === "--no-record") a.record = false;
    else if (f === "--cpu-prof") {
      a.cpuProfDir = argv[++i];
      if (!a.cpuProfDir) throw new Error(`--cpu-prof needs a directory\n${USAGE}`);
    } else if (f === "--swarm-cases") {
      a.swarmCases = (argv[++i] ?? "").split(",").filter(Boolean);
      const bad = a.swarmCases.find((k) => !(SWARM_CASE_KEYS as readonly string[]).includes(k));
      if (a.swarmCases.length === 0 || bad) {
        throw new Error(`--swarm-cases takes keys of: ${SWARM_CASE_KEYS.join(", ")}\n${USAGE}`);
      }
      if (a.swarmCases.length < SWARM_CASE_KEYS.length) a.record = false;
    } else if (f === "--help" || f === "-h") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option '${f}'\n${USAGE}`);
  }
  return a;
}

async function runParts(args: Args, ctx: Context): Promise<Part[]> {
  const q = args.quick;
  const size = args.sizeMiB ?? (q ? 64 : 1024);
  const scaleFile = q ? 64 : 1024;
  const memorySizes = q ? [64, 256] : [256, 1024, 4096];
  const has = (p: PartName) => args.parts.includes(p);
  const out: Part[] = [];
  for (const p of args.parts) {
    const started = performance.now();
    ctx.say(`--- ${p}`);
    if (p === "download") out.push(await downloadPart(ctx, size));
    else if (p === "hash") out.push(await hashPart(ctx, size));
    else if (p === "memory") {
      // files the scaling part uses again stay
      const keep = new Set(has("scaling") ? [scaleFile, q ? 64 : 256] : []);
      out.push(await memoryPart(ctx, memorySizes, keep));
    } else if (p === "tracker") out.push(await trackerPart(ctx));
    else if (p === "swarm") out.push(await swarmPart(ctx, q ? 16 : 64));
    else if (p === "crypto") out.push(await cryptoPart(ctx, q ? 64 : 1024));
    else if (p === "nat") out.push(await natPart(ctx, q ? 8 : 32));
    // 30 s at 4 MB/s, then 15 s at 2 MB/s: 150 MB of the file
    else if (p === "limits") out.push(await limitsPart(ctx, q ? 96 : 192, q ? 12 : 30));
    else {
      out.push(
        await scalingPart(ctx, {
          fileMiB: scaleFile,
          listFiles: q ? 1_000 : 10_000,
          bigMiB: q ? 512 : 10_240,
        }),
      );
    }
    ctx.say(`--- ${p} took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  return out;
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const cluster = await Cluster.create(1);
  const seeders = args.parts.includes("scaling") ? Math.max(...SCALE_SEEDERS) : 4;
  const ctx = new Context(
    {
      quick: args.quick,
      runs: args.runs ?? (args.quick ? 1 : 3),
      cpuProfDir: args.cpuProfDir,
      swarmCases: args.swarmCases,
    },
    cluster,
    seeders,
  );
  const cleanup = async () => {
    await ctx.close().catch(() => {});
    await cluster.close().catch(() => {});
  };
  const watchdog = setTimeout(() => {
    ctx.say(`cut off after ${WATCHDOG_MS / 60_000} minutes`);
    void cleanup().finally(() => process.exit(1));
  }, WATCHDOG_MS);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => void cleanup().finally(() => process.exit(130)));
  }
  try {
    if (args.cpuProfDir) await mkdir(args.cpuProfDir, { recursive: true });
    const machine = describeMachine(cluster.dir);
    const load0 = loadavg()[0]!.toFixed(1);
    const started = performance.now();
    ctx.say(machine);
    const parts = await runParts(args, ctx);
    const minutes = ((performance.now() - started) / 60_000).toFixed(1);
    const cmd = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
    const date = new Date().toISOString().slice(0, 10);
    const head =
      `Each subsection is rewritten by the run that measured it; the last one: \`${cmd}\` on ${date} ` +
      `(${args.parts.join(", ")}; ${minutes} min). Machine: ${machine}. Load average (1 min) ${load0} at its start, ` +
      `${loadavg()[0]!.toFixed(1)} at its end: the box is shared with other sessions' tests, so wall times vary by ` +
      "tens of percent between runs; CPU times vary less. MB/s is 10^6 bytes/s; MiB is 2^20 bytes.";
    for (const p of parts) process.stdout.write(`\n${p.text}\n`);
    if (args.record) {
      await writeParts(join(ROOT, "BENCHMARKS.md"), head, parts, [...PARTS]);
      ctx.say("BENCHMARKS.md updated");
    }
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }
}

await main();
