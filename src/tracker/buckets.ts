/** A token bucket: `burst` at once, then one every `everyMs`. */
export interface BucketRule {
  burst: number;
  everyMs: number;
}

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

/** One bucket, or one per key (an address, a user), in this tracker's memory. */
export class Buckets {
  readonly #one: Bucket;
  readonly #byKey = new Map<string, Bucket>();

  /** `maxKeys`: buckets kept at once; a full bucket carries no information and is dropped first. */
  constructor(
    readonly rule: BucketRule,
    now: number,
    readonly maxKeys = 0,
  ) {
    this.#one = new Bucket(rule, now);
  }

  /** ms until `key` (or, without one, the single bucket) has a token; 0 when it has one now. */
  wait(now: number, key?: string): number {
    if (key === undefined) return this.#one.wait(now);
    const b = this.#byKey.get(key);
    if (b) return b.wait(now);
    if (this.#byKey.size >= this.maxKeys) this.#sweep(now);
    // every kept bucket is in use: a new key waits until one may have filled up
    return this.#byKey.size >= this.maxKeys ? this.rule.everyMs : 0;
  }

  /** Takes a token; call after wait() said 0. */
  take(now: number, key?: string): void {
    if (key === undefined) {
      this.#one.take(now);
      return;
    }
    let b = this.#byKey.get(key);
    if (!b) {
      b = new Bucket(this.rule, now);
      this.#byKey.set(key, b);
    }
    b.take(now);
  }

  #sweep(now: number): void {
    for (const [key, b] of this.#byKey) if (b.tokens(now) >= b.rule.burst) this.#byKey.delete(key);
  }
}
