import { rm } from "node:fs/promises";
import { join } from "node:path";
import { ROOT } from "../../test/helpers/procs.js";
import type { Context } from "../context.js";
import { sha1File } from "../files.js";
import { mbps, mdTable, median, type Part, secs, verdict } from "../report.js";
import { ensureTools, timed } from "../tools.js";

/** upload_file's hashing of 1 GiB against sha1sum and mktorrent. */
export async function hashPart(ctx: Context, mibs: number): Promise<Part> {
  await ensureTools(["sha1sum", "mktorrent"], (l) => ctx.say(l));
  const file = await ctx.file(mibs);
  // warm: every case reads the file from the page cache
  await sha1File(file.path);
  const torrent = join(ctx.cluster.dir, "hash.torrent");
  const cases = [
    {
      label: "groupshare upload_file hashing (pieces + whole file)",
      cmd: process.execPath,
      args: [join(ROOT, "dist/bench/hashOne.js"), file.path],
    },
    { label: "sha1sum (whole file only)", cmd: "sha1sum", args: [file.path] },
    {
      label: "mktorrent -l 19 (pieces only)",
      cmd: "mktorrent",
      args: ["-l", "19", "-a", "http://127.0.0.1:1/announce", "-o", torrent, file.path],
    },
  ];
  const runs = cases.map(() => ({ wall: [] as number[], cpu: [] as number[], own: [] as number[] }));
  for (let r = 1; r <= ctx.opts.runs; r++) {
    for (const [i, c] of cases.entries()) {
      await rm(torrent, { force: true });
      const t = await timed(c.cmd, c.args, ctx.boundMs(file.bytes));
      runs[i]!.wall.push(t.seconds);
      runs[i]!.cpu.push(t.cpuSeconds);
      const own = /^ms ([\d.]+) sha1 ([0-9a-f]+)/.exec(t.stdout);
      if (own) {
        if (own[2] !== file.sha1) throw new Error(`hashFile: SHA1 ${own[2]}, expected ${file.sha1}`);
        runs[i]!.own.push(Number(own[1]) / 1000);
      }
    }
    ctx.say(
      `hash run ${r}: ${cases.map((c, i) => `${c.label.split(" ")[0]} ${runs[i]!.wall.at(-1)!.toFixed(2)} s`).join(", ")}`,
    );
  }
  await rm(torrent, { force: true });
  const gs = runs[0]!;
  const gsSpeed = mbps(file.bytes, median(gs.own));
  const table = mdTable(
    ["hashing", "runs (s)", "median (s)>", "MB/s>", "CPU (s)>"],
    cases.map((c, i) => {
      const t = median(runs[i]!.wall);
      return [
        c.label,
        secs(runs[i]!.wall),
        t.toFixed(2),
        mbps(file.bytes, t).toFixed(0),
        median(runs[i]!.cpu).toFixed(2),
      ];
    }),
  );
  const line =
    `groupshare's hashing alone (inside the process, without Node's start-up): median ${median(gs.own).toFixed(2)} s, ` +
    `**${(gsSpeed / 1000).toFixed(2)} GB/s** (target ≥ 1.3 GB/s: ${verdict(gsSpeed >= 1300)}).`;
  ctx.say(line);
  return {
    key: "hash",
    text: [
      `### Hashing: ${mibs} MiB`,
      "",
      table,
      "",
      line,
      "",
      `Median of ${ctx.opts.runs}, the three alternating, the file in the page cache (read once before). Times are ` +
        "whole commands (process start to exit); CPU is user + system of the command and its children. groupshare " +
        "is `dist/bench/hashOne.js`: the client's `hashFile` (src/client/hashing/hasher.ts), which upload_file runs before " +
        "it registers the file, computing every 512 KiB piece's SHA1 and the whole file's SHA1. sha1sum computes " +
        "only the whole file's SHA1, mktorrent only the pieces'.",
    ].join("\n"),
  };
}
