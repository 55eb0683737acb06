/**
 * npm run bench [-- --size-mib N] [--runs N] [--memory] [--no-record] [--cpu-prof DIR]
 *
 * Downloads a random file on 127.0.0.1 through real tracker and client processes,
 * from 1 seeder and from 4, and times each against a bare Node TCP pipeline
 * (file → socket → file). Prints a table and replaces the "## Download (npm run
 * bench)" section of BENCHMARKS.md. Every process and temp file is removed at the
 * end, whatever happens; a failure exits non-zero.
 */
import { mkdir, rm } from "node:fs/promises";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { Cluster, Proc, ROOT } from "../test/helpers/procs.js";
import { makeRandomFile, sha1File } from "./files.js";
import { describeMachine } from "./machine.js";
import { MEMORY_SUBSECTION, type Row, SECTION, table, writeSection } from "./report.js";
import { ALL, ONE, Swarm } from "./swarm.js";

const USAGE = `usage: npm run bench -- [--size-mib N] [--runs N] [--memory] [--no-record] [--cpu-prof DIR]
  --size-mib N    file size in MiB (default 256)
  --runs N        downloads per case; the median is reported (default 3)
  --memory        also measure the downloader's peak memory for 256 MiB and 1 GiB (1 seeder, one run each)
  --no-record     print the table only; leave BENCHMARKS.md alone
  --cpu-prof DIR  run seeder 1 and every downloader under node --cpu-prof, profiles in DIR`;

const SEEDERS = 4;
/** The whole run is cut off after this long, whatever it is doing. */
const WATCHDOG_MS = 20 * 60_000;

interface Args {
  sizeMiB: number;
  runs: number;
  memory: boolean;
  record: boolean;
  cpuProfDir: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { sizeMiB: 256, runs: 3, memory: false, record: true, cpuProfDir: undefined };
  const count = (flag: string, v: string | undefined, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new Error(`${flag} needs a whole number 1..${max}\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    if (f === "--size-mib") a.sizeMiB = count(f, argv[++i], 16_384);
    else if (f === "--runs") a.runs = count(f, argv[++i], 50);
    else if (f === "--memory") a.memory = true;
    else if (f === "--no-record") a.record = false;
    else if (f === "--cpu-prof") {
      a.cpuProfDir = argv[++i];
      if (!a.cpuProfDir) throw new Error(`--cpu-prof needs a directory\n${USAGE}`);
    } else if (f === "--help" || f === "-h") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option '${f}'\n${USAGE}`);
  }
  return a;
}

/** Bounds for a phase that moves `bytes`: generous against a slow disk, finite against a hang. */
function boundMs(bytes: number, slowestBytesPerSec: number): number {
  return 60_000 + Math.ceil((bytes / slowestBytesPerSec) * 1000);
}

function say(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

async function makeFile(
  dir: string,
  prefix: string,
  mibs: number,
): Promise<{ path: string; bytes: number; sha1: string }> {
  const path = join(dir, `${prefix}-${mibs}MiB.bin`);
  const bytes = mibs * 2 ** 20;
  say(`writing ${mibs} MiB of random data to ${path}`);
  const sha1 = await makeRandomFile(path, bytes);
  return { path, bytes, sha1 };
}

/** One bare pipeline transfer: `bare.js serve` and `bare.js fetch` as two processes. */
async function bareRun(
  cluster: Cluster,
  file: { path: string; bytes: number; sha1: string },
  run: number,
): Promise<number> {
  const bare = join(ROOT, "dist/bench/bare.js");
  const server = new Proc(`bare-serve-${run}`, process.execPath, [bare, "serve", file.path]);
  cluster.procs.push(server);
  try {
    const port = Number((await server.expect(/^port \d+/)).split(" ")[1]);
    const dest = join(cluster.dir, `bare-${run}.bin`);
    const fetch = new Proc(`bare-fetch-${run}`, process.execPath, [bare, "fetch", String(port), dest]);
    cluster.procs.push(fetch);
    const ms = Number((await fetch.expect(/^ms /, boundMs(file.bytes, 5e6))).split(" ")[1]);
    await fetch.waitExit();
    const got = await sha1File(dest);
    await rm(dest, { force: true });
    if (got !== file.sha1) throw new Error(`bare pipeline: SHA1 ${got}, expected ${file.sha1}`);
    return ms / 1000;
  } finally {
    await server.kill();
  }
}

async function bench(args: Args, cluster: Cluster): Promise<string> {
  const machine = describeMachine(cluster.dir);
  const loadBefore = loadavg()[0]!.toFixed(1);
  say(machine);
  if (args.cpuProfDir) await mkdir(args.cpuProfDir, { recursive: true });
  const file = await makeFile(cluster.dir, "bench", args.sizeMiB);
  const bareRow: Row = {
    label: "bare TCP pipeline (file → socket → file, fsync)",
    bytes: file.bytes,
    runs: [],
    peaks: [],
    cpu: [],
  };
  for (let r = 1; r <= args.runs; r++) {
    bareRow.runs.push(await bareRun(cluster, file, r));
    say(`bare pipeline run ${r}: ${bareRow.runs.at(-1)!.toFixed(2)} s`);
  }

  say(`starting a tracker and ${SEEDERS} seeders`);
  const swarm = await Swarm.start(cluster, { seeders: SEEDERS, cpuProfDir: args.cpuProfDir });
  await swarm.share(file.path, boundMs(file.bytes, 10e6));
  const rows: Row[] = [];
  for (const [group, label] of [
    [ONE, "download, 1 seeder"],
    [ALL, `download, ${SEEDERS} seeders`],
  ] as const) {
    const row: Row = { label, bytes: file.bytes, runs: [], peaks: [], cpu: [] };
    for (let r = 1; r <= args.runs; r++) {
      const res = await swarm.download(
        group,
        `bench-${args.sizeMiB}MiB.bin`,
        file.sha1,
        boundMs(file.bytes, 5e6),
      );
      row.runs.push(res.seconds);
      row.peaks.push(res.peakBytes);
      row.cpu.push(res.cpuSeconds);
      say(`${label} run ${r}: ${res.seconds.toFixed(2)} s, peak ${(res.peakBytes / 2 ** 20).toFixed(0)} MiB`);
    }
    rows.push(row);
  }
  await rm(file.path, { force: true });

  let memory: Row[] | undefined;
  if (args.memory) {
    memory = [];
    for (const mibs of [256, 1024]) {
      const f = await makeFile(cluster.dir, "memory", mibs);
      // a file of another name: seeder 1 shares it in ONE (the others too, in ALL)
      await swarm.share(f.path, boundMs(f.bytes, 10e6));
      const res = await swarm.download(ONE, basename(f.path), f.sha1, boundMs(f.bytes, 5e6));
      memory.push({
        label: "download, 1 seeder",
        bytes: f.bytes,
        runs: [res.seconds],
        peaks: [res.peakBytes],
        cpu: [res.cpuSeconds],
      });
      say(
        `memory: ${mibs} MiB in ${res.seconds.toFixed(2)} s, peak ${(res.peakBytes / 2 ** 20).toFixed(0)} MiB`,
      );
      await rm(f.path, { force: true });
    }
  }
  await swarm.stop();
  const load = `${loadBefore} at the start, ${loadavg()[0]!.toFixed(1)} at the end`;

  const date = new Date().toISOString().slice(0, 10);
  const cmd = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const parts = [
    SECTION,
    "",
    `Written by \`${cmd}\` on ${date}; each run replaces this section.`,
    "",
    `Machine: ${machine}. Load average (1 min): ${load}: this box is shared, so wall times vary by ` +
      "tens of percent between runs; the downloader's CPU time varies less.",
    "",
    `Setup: one tracker, ${SEEDERS} seeders and the downloader are real \`./tracker\` and \`./client\` processes ` +
      `on 127.0.0.1; the file is ${args.sizeMiB} MiB of random data (each seeder uploads its own hard link of it). ` +
      "A download is timed from sending `download_file` to the `download complete` line (the client has checked " +
      "every piece's SHA1 and the whole file's SHA1 by then; the bench checks the result's SHA1 again). " +
      `Median of ${args.runs} run${args.runs === 1 ? "" : "s"}, each with a fresh downloader (state dir, destination). ` +
      "MB/s is 10^6 bytes/s. Downloader CPU is its user + system time (/proc/<pid>/stat) at that line, median. Peak RSS is the downloader's VmHWM (/proc/<pid>/status) when the complete line " +
      "appears; the bare pipeline is two plain Node processes (`dist/bench/bare.js`): a file read stream piped " +
      "into a socket, the socket piped into a file write stream, then fsync.",
    "",
    table([bareRow, ...rows], bareRow),
  ];
  if (memory) {
    parts.push(
      "",
      MEMORY_SUBSECTION,
      "",
      `Measured on ${date}: one download from 1 seeder for each size (\`${cmd}\`).`,
      "",
      table(memory),
    );
  }
  return parts.join("\n");
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
  const cleanup = async () => {
    await cluster.close().catch(() => {});
  };
  const watchdog = setTimeout(() => {
    say(`cut off after ${WATCHDOG_MS / 60_000} minutes`);
    void cleanup().finally(() => process.exit(1));
  }, WATCHDOG_MS);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => void cleanup().finally(() => process.exit(130)));
  }
  try {
    const section = await bench(args, cluster);
    process.stdout.write(`\n${section}\n`);
    if (args.record) {
      await writeSection(join(ROOT, "BENCHMARKS.md"), section);
      say("BENCHMARKS.md updated");
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
