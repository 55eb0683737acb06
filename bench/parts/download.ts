import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Proc, ROOT } from "../../test/helpers/procs.js";
import { BtSwarm } from "../aria2.js";
import type { BenchFile, Context } from "../context.js";
import { mbps, mdTable, median, mib, type Part, secs, verdict } from "../report.js";
import { ensureTools } from "../tools.js";

/** Aria2 seeders, as groupshare's many-seeder case. */
const BT_SEEDERS = 4;

interface Row {
  label: string;
  runs: number[];
  cpu: number[];
  /** the seeders' CPU, summed (groupshare only) */
  seedersCpu: number[];
  peaks: number[];
}

/** One bare pipeline transfer: `bare.js serve` and `bare.js fetch` as two processes. */
async function bareRun(
  ctx: Context,
  file: BenchFile,
  run: number,
): Promise<{ seconds: number; cpu: number }> {
  const bare = join(ROOT, "dist/bench/bare.js");
  const server = new Proc(`bare-serve-${run}`, process.execPath, [bare, "serve", file.path]);
  ctx.cluster.procs.push(server);
  try {
    const port = Number((await server.expect(/^port \d+/)).split(" ")[1]);
    const dest = join(ctx.cluster.dir, `bare-${run}.bin`);
    const args = [bare, "fetch", String(port), dest, file.hashesPath, String(file.bytes)];
    const fetch = new Proc(`bare-fetch-${run}`, process.execPath, args);
    ctx.cluster.procs.push(fetch);
    const line = await fetch.expect(/^ms /, ctx.boundMs(file.bytes));
    await fetch.waitExit();
    await rm(dest, { force: true });
    const [, ms, , cpu] = line.split(" ");
    return { seconds: Number(ms) / 1000, cpu: Number(cpu) };
  } finally {
    await server.kill();
  }
}

/**
 * A 1 GiB random file from 1 and from 4 seeders, end to end,
 * groupshare against the bare pipeline (the limit) and against aria2c.
 */
export async function downloadPart(ctx: Context, mibs: number): Promise<Part> {
  await ensureTools(["aria2c", "mktorrent", "opentracker"], (l) => ctx.say(l));
  const file = await ctx.file(mibs);
  const swarm = await ctx.swarm();
  const name = `bench-${mibs}MiB.bin`;
  await swarm.share(file.path, "one", [1], ctx.boundMs(file.bytes, 10e6));
  await swarm.share(file.path, "all", [1, 2, 3, 4], ctx.boundMs(file.bytes, 10e6));
  ctx.say(`starting opentracker and ${BT_SEEDERS} aria2c seeders`);
  const bt = await BtSwarm.start(join(ctx.cluster.dir, "bt"), file.path, BT_SEEDERS);
  const rows = {
    bare: { label: "bare Node pipeline (the limit)", runs: [], cpu: [], seedersCpu: [], peaks: [] } as Row,
    one: { label: "groupshare, 1 seeder", runs: [], cpu: [], seedersCpu: [], peaks: [] } as Row,
    all: { label: "groupshare, 4 seeders", runs: [], cpu: [], seedersCpu: [], peaks: [] } as Row,
    aria2: {
      label: `aria2c, ${BT_SEEDERS} aria2c seeders + opentracker`,
      runs: [],
      cpu: [],
      seedersCpu: [],
      peaks: [],
    } as Row,
  };
  const aria2Exit: number[] = [];
  try {
    // alternating the cases spreads the box's changing load over all of them
    for (let r = 1; r <= ctx.opts.runs; r++) {
      await ctx.settle();
      const b = await bareRun(ctx, file, r);
      rows.bare.runs.push(b.seconds);
      rows.bare.cpu.push(b.cpu);
      for (const g of ["one", "all"] as const) {
        await ctx.settle();
        const res = await swarm.download(g, name, file.sha1, ctx.boundMs(file.bytes));
        rows[g].runs.push(res.seconds);
        rows[g].cpu.push(res.cpuSeconds);
        rows[g].seedersCpu.push(res.seedersCpuSeconds);
        rows[g].peaks.push(res.peakBytes);
      }
      await ctx.settle();
      const a = await bt.download(file.sha1, ctx.boundMs(file.bytes, 1e6));
      rows.aria2.runs.push(a.seconds);
      rows.aria2.cpu.push(a.cpuSeconds);
      aria2Exit.push(a.exitSeconds);
      ctx.say(
        `download run ${r}: bare ${b.seconds.toFixed(2)} s, groupshare ${rows.one.runs.at(-1)!.toFixed(2)} s ` +
          `(1 seeder) ${rows.all.runs.at(-1)!.toFixed(2)} s (4), aria2c ${a.seconds.toFixed(2)} s`,
      );
    }
  } finally {
    await bt.stop();
  }
  const speed = (r: Row) => mbps(file.bytes, median(r.runs));
  const perGiB = (s: number) => ((s * 2 ** 30) / file.bytes).toFixed(2);
  const limit = speed(rows.bare);
  const table = mdTable(
    [
      "downloader",
      "runs (s)",
      "median (s)>",
      "MB/s>",
      "of the limit>",
      "CPU (s)>",
      "CPU s/GiB>",
      "seeders' CPU s/GiB>",
      "peak RSS>",
    ],
    Object.values(rows).map((r) => [
      r.label,
      secs(r.runs),
      median(r.runs).toFixed(2),
      speed(r).toFixed(0),
      `${((100 * speed(r)) / limit).toFixed(0)}%`,
      median(r.cpu).toFixed(2),
      perGiB(median(r.cpu)),
      r.seedersCpu.length > 0 ? perGiB(median(r.seedersCpu)) : "",
      r.peaks.length > 0 ? `${mib(Math.max(...r.peaks))} MiB` : "",
    ]),
  );
  const ofLimit = speed(rows.all) / limit;
  const vsAria = median(rows.aria2.runs) / median(rows.all.runs);
  const ratios =
    `groupshare (4 seeders) / limit = **${ofLimit.toFixed(2)}** (target ≥ 0.85: ${verdict(ofLimit >= 0.85)}); ` +
    `groupshare (1 seeder) / limit = ${(speed(rows.one) / limit).toFixed(2)}; ` +
    `aria2c time / groupshare (4 seeders) time = **${vsAria.toFixed(2)}** (target ≥ 3: ${verdict(vsAria >= 3)}). ` +
    `With every link encrypted: ≥ 0.70 of the limit (${verdict(ofLimit >= 0.7)}) and ≥ 2 × aria2c (${verdict(vsAria >= 2)}).`;
  ctx.say(ratios);
  return {
    key: "download",
    text: [
      `### Download: ${mibs} MiB, end to end`,
      "",
      table,
      "",
      ratios,
      "",
      `aria2c's own exit came later: ${secs(aria2Exit)} s (median ${median(aria2Exit).toFixed(2)} s), after its ` +
        '"stopped" announce. Much of aria2c\'s time is fixed, not bandwidth: its engine ticks once a second, and ' +
        "its log shows about 1 s to its first peer connection, 1 s more to the first piece, and 1 s after the last " +
        "piece to its completion notice, whatever the file's size (an 8 MiB file takes about 3 s).",
      "",
      `Each case timed from the command to a verified file, median of ${ctx.opts.runs} run${ctx.opts.runs === 1 ? "" : "s"}, ` +
        "the cases alternating run by run. groupshare: a fresh `./client` (state dir, destination) logs in, " +
        "timed from `download_file` to its `download complete` line (every piece's SHA1 and the whole file's SHA1 " +
        "checked); the bench checks the result's SHA1 again, untimed. The limit: `dist/bench/bare.js`, two plain " +
        "Node processes with no protocol, tracker or access control: 512 KiB pieces read and sent over TCP, each " +
        "piece's SHA1 checked on the receiver's main thread, written at its offset (at most 16 awaiting their " +
        "write, as the client), then fsync. aria2c 1.36: `mktorrent -l 19` (512 KiB pieces), opentracker with the " +
        `info hash whitelisted, ${BT_SEEDERS} seeders \`--seed-ratio=0.0 --bt-seed-unverified=true\`, the downloader ` +
        "`--seed-time=0 --file-allocation=none` (sparse, as groupshare's partial file), DHT, LPD and peer exchange " +
        "off; timed from starting aria2c to its `Download complete` line (every piece's SHA1 checked by then). CPU is the downloader's user + " +
        "system time; the seeders' CPU is every seeder's, summed, from `download_file` to the complete line. Peak RSS is the groupshare downloader's VmHWM.",
    ].join("\n"),
  };
}
