import { readFile, writeFile } from "node:fs/promises";

export const SECTION = "## Download (npm run bench)";
export const MEMORY_SUBSECTION = "### Peak memory (npm run bench -- --memory)";

export interface Row {
  label: string;
  bytes: number;
  /** seconds of each run */
  runs: number[];
  /** peak memory of each run, bytes (none for the bare pipeline's downloader) */
  peaks: number[];
  /** downloader CPU seconds of each run */
  cpu: number[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** 10^6 bytes per second. */
export function mbps(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

/** A Markdown table: one row per transfer, median time and speed, the largest peak of its runs. */
export function table(rows: Row[], reference?: Row): string {
  const ref = reference ? mbps(reference.bytes, median(reference.runs)) : undefined;
  const head = [
    "| transfer | size | runs (s) | median (s) | MB/s | of bare | downloader CPU (s) | downloader peak RSS |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  const body = rows.map((r) => {
    const t = median(r.runs);
    const speed = mbps(r.bytes, t);
    const share = ref ? `${((100 * speed) / ref).toFixed(0)}%` : "";
    const cpu = r.cpu.length > 0 ? median(r.cpu).toFixed(2) : "n/a";
    const peak = r.peaks.length > 0 ? `${mib(Math.max(...r.peaks))} MiB` : "n/a";
    return `| ${r.label} | ${mib(r.bytes)} MiB | ${r.runs.map((s) => s.toFixed(2)).join(", ")} | ${t.toFixed(2)} | ${speed.toFixed(0)} | ${share} | ${cpu} | ${peak} |`;
  });
  return [...head, ...body].join("\n");
}

/**
 * Replaces the SECTION of `path` (from its heading to the next `## ` heading) with
 * `body`, or appends it. When `body` has no memory subsection, the previous
 * section's one (with its own date) is carried over.
 */
export async function writeSection(path: string, body: string): Promise<void> {
  const old = await readFile(path, "utf8").catch(() => "# Benchmarks\n");
  const lines = old.split("\n");
  const start = lines.indexOf(SECTION);
  let end = lines.length;
  if (start >= 0) {
    for (let i = start + 1; i < lines.length; i++) {
      if (lines[i]!.startsWith("## ")) {
        end = i;
        break;
      }
    }
  }
  let text = body.trimEnd();
  if (start >= 0 && !text.includes(MEMORY_SUBSECTION)) {
    const previous = lines.slice(start, end);
    const m = previous.indexOf(MEMORY_SUBSECTION);
    if (m >= 0) text += `\n\n${previous.slice(m).join("\n").trimEnd()}`;
  }
  const section = `${text}\n`;
  const out =
    start >= 0
      ? [...lines.slice(0, start), ...section.split("\n"), ...lines.slice(end)].join("\n")
      : `${old.trimEnd()}\n\n${section}`;
  await writeFile(path, out.replace(/\n{3,}/g, "\n\n"));
}
