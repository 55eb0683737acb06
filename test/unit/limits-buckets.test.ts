import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  burstOf,
  type LimitNode,
  LimitTree,
  MAX_GRANT,
  MAX_WAITING,
} from "../../src/client/limits/buckets.js";
import { FakeClock, settle } from "../helpers/fakeClock.js";

interface Moved {
  at: number;
  bytes: number;
}

/** A link that asks for `size` bytes again as soon as each grant comes, as a busy socket does. */
function greedy(node: LimitNode, clock: FakeClock, size = MAX_GRANT) {
  const log: Moved[] = [];
  let closed = false;
  let waiting = node.wait(size, function granted(bytes, wasClosed) {
    if (wasClosed) {
      closed = true;
      return;
    }
    log.push({ at: clock.now(), bytes });
    waiting = node.wait(size, granted);
  });
  return {
    log,
    get closed() {
      return closed;
    },
    /** bytes granted in [from, to) */
    between(from: number, to: number): number {
      return log.filter((m) => m.at >= from && m.at < to).reduce((s, m) => s + m.bytes, 0);
    },
    total(): number {
      return log.reduce((s, m) => s + m.bytes, 0);
    },
    stop(): void {
      waiting.cancel();
    },
  };
}

/** The most bytes any window of `ms` (starting at a grant) held. */
function maxWindow(log: Moved[], ms: number): number {
  let best = 0;
  for (const m of log) {
    const sum = log.filter((o) => o.at >= m.at && o.at < m.at + ms).reduce((s, o) => s + o.bytes, 0);
    best = Math.max(best, sum);
  }
  return best;
}

describe("LimitTree: token buckets in a hierarchy, on a fake clock", () => {
  it("holds a link to its rate: every 10 s within 5%, no 1 s window over 1.25 times, at any rate", async () => {
    for (const rate of [10_000, 64_000, 300_000, 1_000_000, 5_000_000]) {
      const clock = new FakeClock();
      const tree = new LimitTree(clock);
      const link = tree.root.child(rate);
      const start = clock.now();
      const g = greedy(link, clock);
      await clock.advance(20_000);
      for (let s = 0; s + 10_000 <= 20_000; s += 1_000) {
        const inTen = g.between(start + s, start + s + 10_000);
        assert.ok(
          Math.abs(inTen - rate * 10) <= rate * 10 * 0.05,
          `${rate} B/s: ${inTen} in 10 s from ${s} ms`,
        );
      }
      const peak = maxWindow(g.log, 1_000);
      assert.ok(peak <= rate * 1.25, `${rate} B/s: ${peak} in one second`);
      g.stop();
    }
  });

  it("lets a fresh link send one burst at once, and idle time earns no more than a burst", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock);
    const rate = 1_000_000;
    const link = tree.root.child(rate);
    assert.equal(link.burst, burstOf(rate));
    assert.equal(link.burst, 50_000, "50 ms of 1 MB/s");
    let first = 0;
    for (let n = link.take(MAX_GRANT); n > 0; n = link.take(MAX_GRANT)) first += n;
    assert.ok(first <= link.burst && first > link.burst - MAX_GRANT, `took ${first} at once`);
    await clock.advance(60_000); // a minute idle
    let after = 0;
    for (let n = link.take(MAX_GRANT); n > 0; n = link.take(MAX_GRANT)) after += n;
    assert.ok(after <= link.burst, `after a minute idle: ${after}, not a minute's worth`);
    assert.equal(clock.pending, 0, "nothing waits, so no timer");
  });

  it("shares a capped download among its links in turns: none starves, not even one asking for more", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock);
    const download = tree.root.child(500_000);
    const links = [download.child(), download.child(), download.child()];
    const a = greedy(links[0] as LimitNode, clock, MAX_GRANT);
    const b = greedy(links[1] as LimitNode, clock, MAX_GRANT);
    const small = greedy(links[2] as LimitNode, clock, 1_000); // small asks would fit first every time
    await clock.advance(10_000);
    const total = a.total() + b.total() + small.total();
    assert.ok(Math.abs(total - 5_000_000) <= 250_000, `download moved ${total}`);
    assert.ok(
      Math.abs(a.total() - b.total()) <= MAX_GRANT,
      `equal asks, equal shares: ${a.total()} ${b.total()}`,
    );
    // turns alternate: the big asker waits for its 16 KiB while the small one waits its turn
    const bigTurns = a.log.length;
    assert.ok(Math.abs(bigTurns - small.log.length) <= 1, `turns: ${bigTurns} against ${small.log.length}`);
    for (const g of [a, b, small]) g.stop();
  });

  it("shares a client limit among downloads, not among links: one link gets what four get", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock, 1_000_000);
    const one = tree.root.child();
    const four = tree.root.child();
    const lone = greedy(one.child(), clock);
    const crowd = [0, 1, 2, 3].map(() => greedy(four.child(), clock));
    await clock.advance(10_000);
    const crowdTotal = crowd.reduce((s, g) => s + g.total(), 0);
    assert.ok(Math.abs(lone.total() - crowdTotal) <= 2 * MAX_GRANT, `${lone.total()} against ${crowdTotal}`);
    assert.ok(Math.abs(lone.total() + crowdTotal - 10_000_000) <= 500_000, "the client's rate is used whole");
    for (const g of crowd)
      assert.ok(g.total() >= crowdTotal / 4 - 2 * MAX_GRANT, "fair within the download too");
    lone.stop();
    for (const g of crowd) g.stop();
  });

  it("nests: a download capped below the client's rate leaves the rest to the others", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock, 1_000_000);
    const group = tree.root.child(); // a group without a limit of its own
    const slow = group.child(300_000);
    const free = group.child();
    const s = greedy(slow.child(), clock);
    const f = greedy(free.child(), clock);
    await clock.advance(10_000);
    assert.ok(Math.abs(s.total() - 3_000_000) <= 150_000, `capped download: ${s.total()}`);
    assert.ok(Math.abs(f.total() - 7_000_000) <= 350_000, `the other: ${f.total()}`);
    assert.equal(tree.root.bytes, s.total() + f.total(), "each byte is charged at every level");
    assert.equal(group.bytes, tree.root.bytes);
    s.stop();
    f.stop();
  });

  it("takes a rate changed at run time at once, both ways, and wakes waiters on the change", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock);
    const link = tree.root.child(1_000_000);
    const g = greedy(link, clock);
    const t0 = clock.now();
    await clock.advance(2_000);
    link.setRate(100_000);
    await clock.advance(3_000);
    const slow = g.between(t0 + 3_000, t0 + 5_000);
    assert.ok(Math.abs(slow - 200_000) <= 25_000, `2 s at 100 kB/s: ${slow}`);
    assert.ok(
      g.between(t0 + 2_000, t0 + 3_000) <= 100_000 * 1.25,
      "the first second after the change already holds",
    );
    link.setRate(0); // paused
    const paused = g.total();
    await clock.advance(5_000);
    assert.equal(g.total(), paused, "nothing moves while paused");
    assert.equal(clock.pending, 0, "a paused link sets no timer: nothing polls");
    link.setRate(undefined); // no limit: the waiting request goes now
    await settle();
    assert.ok(g.total() > paused, "lifting the limit granted at once, without time passing");
    g.stop();
  });

  it("a paused link waits without holding back its siblings, and closing it ends its wait", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock);
    const download = tree.root.child(200_000);
    const paused = download.child(0);
    const p = greedy(paused, clock);
    const other = greedy(download.child(), clock);
    await clock.advance(10_000);
    assert.equal(p.total(), 0);
    assert.equal(paused.take(MAX_GRANT), 0);
    assert.ok(
      Math.abs(other.total() - 2_000_000) <= 100_000,
      `the sibling had the whole rate: ${other.total()}`,
    );
    paused.close();
    await settle();
    assert.ok(p.closed, "the paused link's waiter was told its node closed");
    assert.equal(paused.waiting, 0);
    other.stop();
    assert.equal(download.waiting, 0);
  });

  it("closing a download cancels its links' waiters and frees its place for the others", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock, 100_000);
    const d1 = tree.root.child();
    const d2 = tree.root.child();
    const a = greedy(d1.child(), clock);
    const b = greedy(d1.child(), clock);
    const c = greedy(d2.child(), clock);
    await clock.advance(1_000);
    d1.close();
    await settle();
    assert.ok(a.closed && b.closed, "both links of the closed download were told");
    assert.ok(!c.closed);
    const before = c.total();
    await clock.advance(5_000);
    assert.ok(
      Math.abs(c.total() - before - 500_000) <= 25_000,
      `the other download now has it all: ${c.total() - before}`,
    );
    assert.throws(() => d1.child(), /closed/);
    c.stop();
    await clock.advance(1_000);
    assert.equal(clock.pending, 0, "nothing waits: no timer left");
  });

  it("moves a link under another node (its group known after the handshake): it waits there from then on", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock);
    const pending = tree.root.child(); // connections whose ticket is not read yet
    const group = tree.root.child(100_000);
    const link = pending.child();
    assert.equal(link.take(1_000_000), 1_000_000, "no limit where it was: the whole ask at once");
    const g = greedy(link, clock);
    link.moveTo(group);
    assert.equal(link.parent, group);
    assert.equal(link.depth, 2);
    await clock.advance(5_000);
    assert.ok(Math.abs(g.total() - 500_000) <= 25_000, `under the group's 100 kB/s: ${g.total()} in 5 s`);
    assert.equal(group.bytes, g.total(), "charged to the group from the move on");
    assert.equal(pending.bytes, 1_000_000, "and no more to where it was");
    assert.throws(() => link.moveTo(link), /under itself/);
    assert.throws(() => tree.root.moveTo(group), /root/);
    assert.throws(() => link.moveTo(new LimitTree(clock).root), /another tree/);
    group.close();
    await settle();
    assert.ok(g.closed, "closing the group closed the link moved under it");
    assert.throws(() => pending.child().moveTo(group), /closed/);
  });

  it("reads charged after the fact put the path in debt; wait(0) waits until it is paid", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock, 100_000);
    const link = tree.root.child();
    assert.ok(link.ready());
    link.debit(64 * 1024); // one socket read, larger than the bucket
    assert.ok(!link.ready(), "in debt");
    const burst = tree.root.burst;
    let grantedAt: number | undefined;
    const t0 = clock.now();
    link.wait(0, (bytes, closed) => {
      assert.equal(bytes, 0);
      assert.ok(!closed);
      grantedAt = clock.now();
    });
    await clock.advance(2_000);
    assert.ok(grantedAt !== undefined);
    const expected = ((64 * 1024 - burst) * 1000) / 100_000;
    assert.ok(
      grantedAt - t0 >= expected && grantedAt - t0 <= expected + 2,
      `out of debt after ${grantedAt - t0} ms`,
    );
    assert.equal(tree.root.bytes, 64 * 1024, "the wait itself charged nothing");
  });

  it("bounds what waits at one node, and grants never come before wait() returns", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock);
    const link = tree.root.child(1_000);
    let granted = 0;
    for (let i = 0; i < MAX_WAITING; i++) link.wait(100, (n) => (granted += n));
    assert.equal(granted, 0, "not within the call");
    assert.throws(() => link.wait(100, () => {}), /more than/);
    await settle();
    assert.ok(granted > 0);
    assert.throws(() => link.child(), /cannot have children/);
  });

  it("grants no more than the smallest burst on the way up, so a tiny limit still moves", async () => {
    const clock = new FakeClock();
    const tree = new LimitTree(clock, 1_000); // 250 bytes of burst
    const link = tree.root.child();
    const g = greedy(link, clock, 1_000_000);
    await clock.advance(10_000);
    assert.ok(g.log.every((m) => m.bytes <= tree.root.burst));
    assert.ok(Math.abs(g.total() - 10_000) <= 500, `${g.total()} at 1 kB/s`);
    g.stop();
  });
});
