import { GsError } from "../shared/errors.js";

/** A token bucket: `burst` at once, then one every `everyMs`. */
export interface BucketRule {
  burst: number;
  everyMs: number;
}

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

class Bucket {
  #tokens: number;
  #at: number;

  constructor(
    readonly rule: BucketRule,
    now: number,
  ) {
    this.#tokens = rule.burst;
    this.#at = now;
  }

  tokens(now: number): number {
    return Math.min(this.rule.burst, this.#tokens + (now - this.#at) / this.rule.everyMs);
  }

  /** ms until a token is there; 0 when there is one now. */
  wait(now: number): number {
    const t = this.tokens(now);
    return t >= 1 ? 0 : Math.ceil((1 - t) * this.rule.everyMs);
  }

  take(now: number): void {
    this.#tokens = this.tokens(now) - 1;
    this.#at = now;
  }
}

/** Kept per tracker process: with N trackers, N times the rate (each spends its own CPU). */
export class RegistrationLimiter {
  readonly #global: Bucket;
  readonly #byAddress = new Map<string, Bucket>();

  constructor(
    readonly perAddress: BucketRule = PER_ADDRESS,
    readonly global: BucketRule = GLOBAL,
    now = Date.now(),
  ) {
    this.#global = new Bucket(global, now);
  }

  /** Takes a registration for `addr`, or throws RATE_LIMITED (nothing taken). */
  admit(addr: string, now: number): void {
    let bucket = this.#byAddress.get(addr);
    if (!bucket) {
      if (this.#byAddress.size >= MAX_ADDRESSES) this.#sweep(now);
      if (this.#byAddress.size >= MAX_ADDRESSES) refuse(this.#global.rule.everyMs);
      bucket = new Bucket(this.perAddress, now);
      this.#byAddress.set(addr, bucket);
    }
    const wait = Math.max(bucket.wait(now), this.#global.wait(now));
    if (wait > 0) refuse(wait);
    bucket.take(now);
    this.#global.take(now);
  }

  #sweep(now: number): void {
    for (const [addr, b] of this.#byAddress) if (b.tokens(now) >= b.rule.burst) this.#byAddress.delete(addr);
  }
}

function refuse(waitMs: number): never {
  throw new GsError(
    "RATE_LIMITED",
    `too many new users at once: try again in ${Math.max(1, Math.ceil(waitMs / 1000))} s`,
  );
}
