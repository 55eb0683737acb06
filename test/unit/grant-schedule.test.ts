import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Grant } from "../../src/client/download/fileTracker.js";
import { GrantSchedule, REFRESH_SCHEDULE_MS } from "../../src/client/download/grantSchedule.js";

const grant = (...addrs: string[]): Grant => ({
  ticket: "t",
  peers: addrs.map((addr, i) => ({ userId: `u${i}`, addr, key: `k${i}`, complete: false })),
});

describe("GrantSchedule: when the next peer list is due", () => {
  it("asks soon at first, then less often, and soon again after a list that names someone new", () => {
    const s = new GrantSchedule();
    assert.equal(new GrantSchedule().latest, undefined);
    let now = 1_000;
    const waits: number[] = [];
    const record = (g: Grant) => {
      s.record(g, now);
      waits.push(s.dueAt - now);
      now = s.dueAt;
    };
    record(grant("a:1"));
    for (let i = 0; i < 5; i++) record(grant("a:1"));
    record(grant("a:1", "b:1")); // b is new
    record(grant("b:1", "a:1"));
    assert.deepEqual(waits, [500, 1_000, 2_000, 4_000, 5_000, 5_000, 1_000, 2_000]);
    assert.equal(Math.max(...waits), REFRESH_SCHEDULE_MS.at(-1));
    assert.equal(s.at, now - 2_000, "when the latest came");
    assert.deepEqual(
      s.latest?.peers.map((p) => p.addr),
      ["b:1", "a:1"],
    );
  });

  it("counts a peer that left and came back as known", () => {
    const s = new GrantSchedule();
    s.record(grant("a:1", "b:1"), 0);
    s.record(grant("a:1"), 500);
    s.record(grant("a:1", "b:1"), 1_500);
    assert.equal(s.dueAt - 1_500, 2_000, "no news: the schedule went on (500, 1,000, 2,000)");
  });
});
