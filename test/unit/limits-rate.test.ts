import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatRate, MAX_RATE, parseRate } from "../../src/client/limits/rate.js";
import { GsError } from "../../src/shared/errors.js";

describe("parseRate: speed limits as users write them", () => {
  it("reads k, M, G as powers of 1000, Ki, Mi, Gi as powers of 1024, and bits as eighths", () => {
    const cases: [string, number][] = [
      ["5MB/s", 5_000_000],
      ["5MiB/s", 5 * 1024 * 1024],
      ["40Mbit/s", 5_000_000],
      ["40Mbps", 5_000_000],
      ["500kB/s", 500_000],
      ["500KB/s", 500_000],
      ["500KiB/s", 512_000],
      ["1.5GB/s", 1_500_000_000],
      ["1GiB", 1024 ** 3],
      ["100B/s", 100],
      ["64kbit/s", 8_000],
      [" 2 MB/s ", 2_000_000],
      ["0.5MB/s", 500_000],
      [".5MB/s", 500_000],
      ["1Gbit/s", 125_000_000],
    ];
    for (const [text, bytes] of cases) assert.equal(parseRate(text), bytes, text);
  });

  it("reads 0 as paused and 'unlimited' as no limit", () => {
    assert.equal(parseRate("0"), 0);
    assert.equal(parseRate("0MB/s"), 0);
    assert.equal(parseRate("unlimited"), undefined);
    assert.equal(parseRate("Unlimited"), undefined);
    assert.equal(parseRate("none"), undefined);
  });

  it("refuses a bare number, an unknown or ambiguous unit, and rates out of range, as BAD_REQUEST", () => {
    for (const text of [
      "5", // bytes? a typo? a unit is required
      "5Mb/s", // bits in some tools, bytes in others
      "5mb",
      "5 furlongs/s",
      "-5MB/s",
      "5MB/s/s",
      "",
      "MB/s",
      "1e6B/s",
      "0.5B/s", // under 1 B/s
      "200Gbit/s", // over MAX_RATE
      "Infinity",
      "NaN",
      "0/s",
    ]) {
      assert.throws(
        () => parseRate(text),
        (e: unknown) => e instanceof GsError && e.code === "BAD_REQUEST",
        `'${text}' should be refused`,
      );
    }
    assert.equal(parseRate("100Gbit/s"), MAX_RATE, "the largest is taken");
  });

  it("formats rates in units it reads back", () => {
    for (const rate of [5_000_000, 1_500_000_000, 500_000, 100]) {
      const text = formatRate(rate);
      assert.equal(parseRate(text.replace(" ", "")), rate, text);
    }
    assert.equal(formatRate(undefined), "unlimited");
    assert.equal(formatRate(0), "paused");
  });
});
