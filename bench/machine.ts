import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { resolve } from "node:path";

/** A one-paragraph description of this machine, for BENCHMARKS.md. */
export function describeMachine(tempDir: string): string {
  const cpuinfo = readText("/proc/cpuinfo");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown CPU";
  const cores = cpus().length;
  const ram = (totalmem() / 2 ** 30).toFixed(1);
  return `${model}, ${cores} core${cores === 1 ? "" : "s"}, ${ram} GiB RAM, Node ${process.version}; temp dir ${tempDir} on ${describeMount(tempDir)}`;
}

/** The filesystem holding `path`: the longest mount point in /proc/mounts that contains it. */
function describeMount(path: string): string {
  const abs = resolve(path);
  let best: { dir: string; dev: string; type: string } | undefined;
  for (const line of readText("/proc/mounts").split("\n")) {
    const [dev, dir, type] = line.split(" ");
    if (!dev || !dir || !type) continue;
    const inside = dir === "/" || abs === dir || abs.startsWith(`${dir}/`);
    if (inside && (!best || dir.length > best.dir.length)) best = { dir, dev, type };
  }
  if (!best) return "an unknown filesystem";
  let rotational = "";
  const m = /^\/dev\/([a-z]+)/.exec(best.dev);
  if (m) {
    const r = readText(`/sys/block/${m[1]}/queue/rotational`).trim();
    if (r === "0") rotational = ", non-rotational";
    else if (r === "1") rotational = ", rotational";
  }
  const size = dfSize(best.dir);
  return `${best.type} (${best.dev}${rotational}${size ? `, ${size}` : ""}, mounted on ${best.dir})`;
}

function dfSize(dir: string): string {
  try {
    const out = execFileSync("df", ["-h", "--output=size", dir], { encoding: "utf8", timeout: 5_000 });
    return out.trim().split("\n")[1]?.trim() ?? "";
  } catch {
    return "";
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
