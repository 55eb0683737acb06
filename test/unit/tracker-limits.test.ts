import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GsError } from "../../src/shared/errors.js";
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
