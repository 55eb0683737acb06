import { GsError } from "../shared/errors.js";
import { type BucketRule, Buckets } from "./buckets.js";

export type { BucketRule };

/**
 * create_user per source address and per tracker. A registration costs a hash (141 ms of
 * CPU) and a row forever; these bound both before any hash. 20 at once and then one
 * every 3 s covers a host starting many local clients (tests start up to 10); the
 * global 4/s keeps registrations under 0.6 of a core on this 2-core box.
 */
export const PER_ADDRESS: BucketRule = { burst: 20, everyMs: 3_000 };
export const GLOBAL: BucketRule = { burst: 40, everyMs: 250 };
/** Addresses tracked at once; a full bucket carries no information and is dropped first. */
const MAX_ADDRESSES = 10_000;

/** Kept per tracker process: with N trackers, N times the rate (each spends its own CPU). */
export class RegistrationLimiter {
  readonly #global: Buckets;
  readonly #byAddress: Buckets;

  constructor(
    readonly perAddress: BucketRule = PER_ADDRESS,
    readonly global: BucketRule = GLOBAL,
    now = Date.now(),
  ) {
    this.#global = new Buckets(global, now);
    this.#byAddress = new Buckets(perAddress, now, MAX_ADDRESSES);
  }

  /** Takes a registration for `addr`, or throws RATE_LIMITED (nothing taken). */
  admit(addr: string, now: number): void {
    const wait = Math.max(this.#byAddress.wait(now, addr), this.#global.wait(now));
    if (wait > 0) refuse(wait);
    this.#byAddress.take(now, addr);
    this.#global.take(now);
  }
}

function refuse(waitMs: number): never {
  throw new GsError(
    "RATE_LIMITED",
    `too many new users at once: try again in ${Math.max(1, Math.ceil(waitMs / 1000))} s`,
  );
}
