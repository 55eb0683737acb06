import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Sample, settleSeconds, windowRates } from "../../bench/parts/limits.js";

/** Samples every 100 ms for `seconds`, at `rate(t)` bytes/s (t in s). */
function samples(seconds: number, rate: (t: number) => number): Sample[] {
  const out: Sample[] = [{ t: 0, bytes: 0 }];
  for (let k = 1; k <= seconds * 10; k++) {
    const prev = out.at(-1)!;
    out.push({ t: k * 100, bytes: prev.bytes + rate((k - 1) / 10) / 10 });
  }
  return out;
}

describe("the limits bench's windows", () => {
  it("takes every 1 s and 10 s window of a steady rate at that rate", () => {
    const s = samples(30, () => 4e6);
    const one = windowRates(s, 1);
    const ten = windowRates(s, 10);
    assert.equal(one.length, 291);
    assert.equal(ten.length, 201);
    for (const w of [...one, ...ten]) assert.ok(Math.abs(w.rate - 4e6) < 1);
  });

  it("sees a burst in the 1 s windows that the 10 s mean hides", () => {
    const s = samples(20, (t) => (t >= 5 && t < 5.5 ? 8e6 : 4e6));
    assert.ok(Math.abs(Math.max(...windowRates(s, 1).map((w) => w.rate)) - 6e6) < 1);
    assert.ok(Math.max(...windowRates(s, 10).map((w) => w.rate)) <= 4.2e6 + 1);
  });

  it("times a change: the first 1 s window within 5% of the new rate, and the one after which all are", () => {
    // 2 MB/s from t = 10 s, a second at 5 MB/s after the change first
    const late = samples(25, (t) => (t < 10 ? 4e6 : t < 11 ? 5e6 : 2e6));
    assert.deepEqual(settleSeconds(late, 10_000, 2e6), { first: 1, held: 1 });
    // at once
    const now = samples(25, (t) => (t < 10 ? 4e6 : 2e6));
    assert.deepEqual(settleSeconds(now, 10_000, 2e6), { first: 0, held: 0 });
    // in effect at once, then a burst from 15 s to 15.5 s: held only from the window after it
    const burst = samples(25, (t) => (t < 10 ? 4e6 : t >= 15 && t < 15.5 ? 4e6 : 2e6));
    const b = settleSeconds(burst, 10_000, 2e6);
    assert.equal(b.first, 0);
    assert.ok(Math.abs(b.held - 5.5) < 1e-9, `held ${b.held}`);
    // never: the rate is not the one asked for
    const never = settleSeconds(late, 10_000, 1e6);
    assert.ok(Number.isNaN(never.first) && Number.isNaN(never.held));
  });
});
