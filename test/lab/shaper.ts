/**
 * Rate caps: a token bucket filter (tbf) on a link end's egress. A host's upload
 * cap sits on its own end of its link, its download cap on the far end (the
 * switch's or its router's port), as an ISP's shaper would. This kernel has no
 * netem, so links add no latency of their own: the round trip is the queueing
 * delay at the caps (at most `queueMs` each way).
 */
import { sh } from "./sh.js";

export interface Caps {
  /** Upload cap in bits per second (undefined: uncapped). */
  up?: number;
  /** Download cap in bits per second (undefined: uncapped). */
  down?: number;
  /** A cap's queue holds this many milliseconds of its rate before it drops (default 50). */
  queueMs?: number;
}

/** Megabits per second in bits per second. */
export const mbit = (n: number): number => n * 1e6;

/** Two full Ethernet frames: a bucket smaller than a frame would never send one. */
const MIN_BURST = 2 * 1514;
/**
 * The bucket refills 4 ms worth of rate: a 80 Mbit/s cap lets 40 kB through at
 * once, a small part of any transfer worth timing.
 */
const BURST_MS = 4;
const DEFAULT_QUEUE_MS = 50;

/** tc arguments of a tbf capping at `bits` per second. */
export function tbfArgs(bits: number, queueMs = DEFAULT_QUEUE_MS): string[] {
  if (!Number.isFinite(bits) || bits < 8_000)
    throw new RangeError(`a cap of ${bits} bit/s is below 8 kbit/s`);
  const bytesPerMs = bits / 8 / 1000;
  const burst = Math.max(MIN_BURST, Math.ceil(bytesPerMs * BURST_MS));
  const limit = Math.max(2 * burst, Math.ceil(bytesPerMs * queueMs));
  return ["tbf", "rate", `${Math.round(bits)}bit`, "burst", String(burst), "limit", String(limit)];
}

/** Caps (or uncaps, with `bits` undefined) the egress of `dev` in namespace `ns`. */
export async function shape(
  ns: string,
  dev: string,
  bits: number | undefined,
  queueMs?: number,
): Promise<void> {
  if (bits === undefined) {
    await sh("tc", ["-n", ns, "qdisc", "del", "dev", dev, "root"]).catch(() => {});
    return;
  }
  await sh("tc", ["-n", ns, "qdisc", "replace", "dev", dev, "root", ...tbfArgs(bits, queueMs)]);
}
