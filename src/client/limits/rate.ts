import { GsError } from "../../shared/errors.js";

/**
 * A speed limit in bytes per second: a number, 0 (paused: nothing moves), or
 * undefined (no limit).
 */
export type Rate = number | undefined;

/**
 * Units as their symbols say: k, M and G are powers of 1000 (SI, as network links and
 * most speed tests are sold), Ki, Mi and Gi powers of 1024 (IEC), and a bit is an eighth
 * of a byte. So 5MB/s is 5,000,000 bytes a second, 5MiB/s 5,242,880, and 40Mbit/s
 * 5,000,000. "KB" is read as kB: nobody means 1024 by it any more often than 1000, and
 * KiB is there for those who do.
 */
const UNITS: ReadonlyMap<string, number> = new Map([
  ["b", 1],
  ["kb", 1e3],
  ["mb", 1e6],
  ["gb", 1e9],
  ["kib", 1024],
  ["mib", 1024 ** 2],
  ["gib", 1024 ** 3],
  ["bit", 1 / 8],
  ["kbit", 1e3 / 8],
  ["mbit", 1e6 / 8],
  ["gbit", 1e9 / 8],
  ["bps", 1 / 8],
  ["kbps", 1e3 / 8],
  ["mbps", 1e6 / 8],
  ["gbps", 1e9 / 8],
]);

/** 100 Gbit/s: no link a client sits on is faster, and a typo (5GB for 5MB) is still taken. */
export const MAX_RATE = 12.5e9;

const SYNTAX = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)(\/s)?$/i;

/**
 * Reads a speed limit as a user writes it: `5MB/s`, `5MiB/s`, `40Mbit/s`, `40Mbps`,
 * `500kB/s` (the `/s` may be left out), `0` (paused) or `unlimited`. A number needs a
 * unit unless it is 0: a bare `5` is refused rather than read as 5 bytes a second.
 * Bytes and bits are told apart by spelling (`B`, `bit`, `bps`); a lone lowercase `b`
 * (`5Mb/s`) means bits in some tools and bytes in others, so it is refused.
 * Throws GsError BAD_REQUEST on anything else.
 */
export function parseRate(text: string): Rate {
  const s = text.trim();
  if (/^(unlimited|none)$/i.test(s)) return undefined;
  const m = SYNTAX.exec(s);
  if (!m) throw badRate(text, "expected a number and a unit, like 5MB/s or 40Mbit/s, or 0 or unlimited");
  const value = Number(m[1]);
  const unit = m[2] ?? "";
  if (unit === "") {
    if (value === 0 && m[3] === undefined) return 0;
    throw badRate(text, "add a unit: 5MB/s, 5MiB/s, 40Mbit/s");
  }
  if (/^[kmg]?b$/i.test(unit) && unit.endsWith("b")) throw badRate(text, "write B for bytes or bit for bits");
  const per = UNITS.get(unit.toLowerCase());
  if (per === undefined) throw badRate(text, "units are B, kB, MB, GB, KiB, MiB, GiB, bit, kbit, Mbit, Gbit");
  const rate = value * per;
  if (rate === 0) return 0;
  if (rate < 1) throw badRate(text, "the smallest limit is 1 B/s (use 0 to pause)");
  if (rate > MAX_RATE) throw badRate(text, "the largest limit is 100Gbit/s (use unlimited for none)");
  return Math.round(rate);
}

function badRate(text: string, why: string): GsError {
  return new GsError("BAD_REQUEST", `not a speed limit: '${text}': ${why}`);
}

/** A rate as a person reads it, in the units parseRate reads back: "5.00 MB/s", "paused", "unlimited". */
export function formatRate(rate: Rate): string {
  if (rate === undefined) return "unlimited";
  if (rate === 0) return "paused";
  if (rate >= 1e9) return `${(rate / 1e9).toFixed(2)} GB/s`;
  if (rate >= 1e6) return `${(rate / 1e6).toFixed(2)} MB/s`;
  if (rate >= 1e3) return `${(rate / 1e3).toFixed(1)} kB/s`;
  return `${rate} B/s`;
}
