import { inFlight } from "../download/progress.js";
import type { DownloadView } from "../engine/types.js";

/** Human sizes: 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** A human size with the exact count where they differ: "1.00 MiB (1048576 bytes)", "512 B". */
export function formatBytesExact(n: number): string {
  return n < 1024 ? `${n} B` : `${formatBytes(n)} (${n} bytes)`;
}

/** Rates in MB/s (10^6), as network tools print them. */
export function formatRate(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
}

/** `14 s`, `3 min 20 s`, `2 h 5 min`; `?` while nothing arrives. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return "?";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** What the prompt's bar needs of a download. */
export type BarInput = Pick<DownloadView, "state" | "bytesDone" | "size" | "speedBps">;

/**
 * `[#####-----] 48% 92.1 MB/s 2 downloads` over the downloads in flight, weighted
 * by bytes (a 1 GiB download counts for more than a 1 MiB one), or "" when none is.
 */
export function downloadBar(list: readonly BarInput[]): string {
  const active = list.filter((d) => inFlight(d.state));
  if (active.length === 0) return "";
  const total = active.reduce((s, d) => s + d.size, 0);
  const done = active.reduce((s, d) => s + d.bytesDone, 0);
  const frac = total > 0 ? done / total : 0;
  const speed = active.reduce((s, d) => s + d.speedBps, 0);
  const bar = "#".repeat(Math.floor(frac * 10)).padEnd(10, "-");
  const n = active.length > 1 ? ` ${active.length} downloads` : "";
  return `[${bar}] ${Math.floor(frac * 100)}% ${formatRate(speed)}${n}`;
}
