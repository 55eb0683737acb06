import type { Context } from "../context.js";
import { mbps, mdTable, mib, type Part, verdict } from "../report.js";

/** Peak memory target for the downloader, whatever the file's size. */
export const PEAK_TARGET = 150 * 1e6;

export interface MemoryRow {
  mibs: number;
  seconds: number;
  peakBytes: number;
  cpuSeconds: number;
}

/** One download from seeder 1 alone, of a file of `mibs` MiB; the file is deleted after unless `keep`. */
export async function measureMemory(ctx: Context, mibs: number, keep: boolean): Promise<MemoryRow> {
  const file = await ctx.file(mibs);
  const swarm = await ctx.swarm();
  await swarm.share(file.path, "one", [1], ctx.boundMs(file.bytes, 10e6));
  await ctx.settle();
  const res = await swarm.download("one", `bench-${mibs}MiB.bin`, file.sha1, ctx.boundMs(file.bytes));
  ctx.say(`memory: ${mibs} MiB in ${res.seconds.toFixed(2)} s, peak ${mib(res.peakBytes)} MiB`);
  if (!keep) await ctx.release(mibs);
  return { mibs, ...res };
}

export function memoryTable(rows: MemoryRow[]): string {
  return mdTable(
    ["file", "time (s)>", "MB/s>", "downloader CPU (s)>", "downloader peak RSS (VmHWM)>", "≤ 150 MB"],
    rows.map((r) => [
      `${r.mibs} MiB`,
      r.seconds.toFixed(2),
      mbps(r.mibs * 2 ** 20, r.seconds).toFixed(0),
      r.cpuSeconds.toFixed(2),
      `${mib(r.peakBytes)} MiB (${(r.peakBytes / 1e6).toFixed(0)} MB)`,
      verdict(r.peakBytes <= PEAK_TARGET),
    ]),
  );
}

/** The downloader's peak memory for 256 MiB, 1 GiB and 4 GiB files. */
export async function memoryPart(ctx: Context, sizes: number[], keep: Set<number>): Promise<Part> {
  const rows: MemoryRow[] = [];
  for (const mibs of sizes) rows.push(await measureMemory(ctx, mibs, keep.has(mibs)));
  return {
    key: "memory",
    text: [
      "### Downloader peak memory",
      "",
      memoryTable(rows),
      "",
      "One download from 1 seeder for each size, by a fresh `./client`; peak RSS is its VmHWM " +
        "(/proc/<pid>/status) when the `download complete` line appears. Target: ≤ 150 MB whatever the file size.",
    ].join("\n"),
  };
}
