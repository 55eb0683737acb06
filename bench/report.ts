import { readFile, writeFile } from "node:fs/promises";

/** The generated part of BENCHMARKS.md: from this heading to the next `## ` heading. */
export const SECTION = "## Figures (npm run bench)";

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** 10^6 bytes per second. */
export function mbps(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

export const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
export const secs = (xs: number[]) => xs.map((s) => s.toFixed(2)).join(", ");

/** A Markdown table; columns whose header ends with `>` are right-aligned (the `>` is dropped). */
export function mdTable(head: string[], rows: (string | number)[][]): string {
  const names = head.map((h) => h.replace(/>$/, ""));
  const align = head.map((h) => (h.endsWith(">") ? "---:" : "---"));
  return [
    `| ${names.join(" | ")} |`,
    `| ${align.join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** `met` / `MISSED` against a target. */
export function verdict(ok: boolean): string {
  return ok ? "met" : "**missed**";
}

export interface Part {
  /** download, hash, memory, tracker, scaling */
  key: string;
  /** Markdown: a `### ` heading and its text */
  text: string;
}

const begin = (key: string) => `<!-- bench:${key} -->`;
const end = (key: string) => `<!-- /bench:${key} -->`;

/**
 * Rewrites SECTION of `path`: its preamble (`head`) and the subsection of each
 * part in `parts`; subsections of parts not run this time stay as they were
 * (each says when and how it was measured). The rest of the file is left alone.
 */
export async function writeParts(path: string, head: string, parts: Part[], order: string[]): Promise<void> {
  const old = await readFile(path, "utf8").catch(() => "# Benchmarks\n");
  const lines = old.split("\n");
  const start = lines.indexOf(SECTION);
  let stop = lines.length;
  if (start >= 0) {
    stop = lines.findIndex((l, i) => i > start && l.startsWith("## "));
    if (stop < 0) stop = lines.length;
  }
  const previous = start >= 0 ? lines.slice(start, stop).join("\n") : "";
  const blocks = new Map<string, string>();
  for (const key of order) {
    const i = previous.indexOf(begin(key));
    const j = previous.indexOf(end(key));
    if (i >= 0 && j > i) blocks.set(key, previous.slice(i, j + end(key).length));
  }
  for (const p of parts) blocks.set(p.key, `${begin(p.key)}\n${p.text.trim()}\n${end(p.key)}`);
  const section = [
    SECTION,
    "",
    head.trim(),
    ...order.flatMap((k) => (blocks.has(k) ? ["", blocks.get(k)!] : [])),
  ]
    .join("\n")
    .trimEnd();
  const out =
    start >= 0
      ? [...lines.slice(0, start), ...section.split("\n"), "", ...lines.slice(stop)].join("\n")
      : `${old.trimEnd()}\n\n${section}\n`;
  await writeFile(path, `${out.replace(/\n{3,}/g, "\n\n").trimEnd()}\n`);
}
