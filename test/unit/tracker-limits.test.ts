import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GsError } from "../../src/shared/errors.js";
import { addressKey } from "../../src/tracker/connections.js";
import { HashGate } from "../../src/tracker/hashGate.js";
import { RegistrationLimiter } from "../../src/tracker/registrations.js";

const refusedWith = (code: string) => (err: unknown) => err instanceof GsError && err.code === code;

describe("hash gate", () => {
  it("runs `slots` at once, queues a bounded number per kind, refuses the rest at once", async () => {
    const gate = new HashGate({ slots: 1, queue: { login: 1, register: 1 } });
    const running = gate.enter("login");
    await running.ready;
    const order: string[] = [];
    const reg = gate.enter("register");
    const login = gate.enter("login");
    void reg.ready.then(() => order.push("register"));
    void login.ready.then(() => order.push("login"));
    assert.throws(() => gate.enter("login"), refusedWith("BUSY"));
    assert.throws(() => gate.enter("register"), refusedWith("BUSY"));
    running.release();
    await login.ready;
    assert.deepEqual(order, ["login"], "a login goes before a registration that queued first");
    login.release();
    await reg.ready;
    reg.release();
    reg.release(); // twice is harmless
    const again = gate.enter("register");
    await again.ready;
    again.release();
  });

  it("frees the queue place of a pass released before its turn", async () => {
    const gate = new HashGate({ slots: 1, queue: { login: 1, register: 0 } });
    const running = gate.enter("login");
    gate.enter("login").release();
    const next = gate.enter("login");
    running.release();
    await next.ready;
    next.release();
  });
});

describe("registration limits", () => {
  it("takes a burst per address, then one per interval; the global bucket bounds every address", () => {
    const t0 = 1_000_000;
    const r = new RegistrationLimiter({ burst: 2, everyMs: 1_000 }, { burst: 3, everyMs: 500 }, t0);
    r.admit("a", t0);
    r.admit("a", t0);
    assert.throws(() => r.admit("a", t0), refusedWith("RATE_LIMITED"));
    r.admit("b", t0);
    assert.throws(() => r.admit("c", t0), refusedWith("RATE_LIMITED"), "global burst spent");
    r.admit("c", t0 + 500);
    assert.throws(() => r.admit("a", t0 + 500), refusedWith("RATE_LIMITED"));
    r.admit("a", t0 + 1_000);
  });
});

describe("connections per address", () => {
  it("counts an IPv4 address (mapped or not) as itself, and an IPv6 address by its /64", () => {
    assert.equal(addressKey("203.0.113.7"), "203.0.113.7");
    assert.equal(addressKey("::ffff:203.0.113.7"), "203.0.113.7");
    // one subscriber's prefix, however its hosts spell their addresses
    const key = addressKey("2001:db8:1:2::1");
    assert.equal(key, "2001:db8:1:2::/64");
    for (const a of [
      "2001:db8:1:2:ffff:ffff:ffff:ffff",
      "2001:0db8:0001:0002:0:0:0:9",
      "2001:DB8:1:2::abcd",
    ]) {
      assert.equal(addressKey(a), key, a);
    }
    assert.notEqual(addressKey("2001:db8:1:3::1"), key);
    assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
  });
});
