import type { Context } from "../context.js";
import { mbps, mdTable, median, mib, type Part, secs } from "../report.js";
import { measureMemory, memoryTable } from "./memory.js";
import { listFilesScaling } from "./tracker.js";

export const SCALE_SEEDERS = [1, 2, 4, 8];

/**
 * One download's time with 1, 2, 4 and 8 seeders; list_files
 * with 10,000 files in a group; a 10 GiB file (20,480 pieces) downloads with the
 * memory of a small one.
 */
export async function scalingPart(
  ctx: Context,
  sizes: { fileMiB: number; listFiles: number; bigMiB: number },
): Promise<Part> {
  const file = await ctx.file(sizes.fileMiB);
  const swarm = await ctx.swarm();
  const name = `bench-${sizes.fileMiB}MiB.bin`;
  const rows: (string | number)[][] = [];
  for (const n of SCALE_SEEDERS) {
    // the group "scale" grows to exactly n sharers (those before keep sharing)
    await swarm.share(
      file.path,
      "scale",
      Array.from({ length: n }, (_, i) => i + 1),
      ctx.boundMs(file.bytes, 10e6),
    );
    const runs: number[] = [];
    const cpu: number[] = [];
    let peak = 0;
    for (let r = 0; r < ctx.opts.runs; r++) {
      await ctx.settle();
      const res = await swarm.download("scale", name, file.sha1, ctx.boundMs(file.bytes));
      runs.push(res.seconds);
      cpu.push(res.cpuSeconds);
      peak = Math.max(peak, res.peakBytes);
    }
    ctx.say(`scaling: ${n} seeder(s): ${secs(runs)} s`);
    const t = median(runs);
    rows.push([
      `${n}`,
      secs(runs),
      t.toFixed(2),
      mbps(file.bytes, t).toFixed(0),
      median(cpu).toFixed(2),
      `${mib(peak)} MiB`,
    ]);
  }
  const list = await listFilesScaling(ctx, sizes.listFiles);
  const big = await measureMemory(ctx, sizes.bigMiB, false);
  const small = await measureMemory(ctx, ctx.opts.quick ? 64 : 256, true);
  const pieces = (sizes.bigMiB * 2 ** 20) / (512 * 1024);
  return {
    key: "scaling",
    text: [
      "### Scaling",
      "",
      `One download of ${sizes.fileMiB} MiB by a fresh client from n seeders (group \`scale\`, grown to n sharers before each step; median of ${ctx.opts.runs}):`,
      "",
      mdTable(["seeders", "runs (s)", "median (s)>", "MB/s>", "downloader CPU (s)>", "peak RSS>"], rows),
      "",
      mdTable(["tracker", "time>", "response"], list.rows),
      "",
      list.note,
      "",
      `A ${sizes.bigMiB} MiB file (${pieces} pieces) against a small one, one download each from 1 seeder:`,
      "",
      memoryTable([small, big]),
    ].join("\n"),
  };
}
