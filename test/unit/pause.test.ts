import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, it } from "node:test";
import { pause } from "../../src/client/reach/pause.js";

describe("pause", () => {
  it("resolves after its time and takes its abort listener with it", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const stop = new AbortController();
    let done = false;
    const p = pause(250, stop.signal).then(() => {
      done = true;
    });
    assert.equal(getEventListeners(stop.signal, "abort").length, 1);
    t.mock.timers.tick(249);
    await Promise.resolve();
    assert.equal(done, false);
    t.mock.timers.tick(1);
    await p;
    assert.equal(done, true);
    assert.equal(getEventListeners(stop.signal, "abort").length, 0);
  });

  it("resolves at once on abort, before its time", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const stop = new AbortController();
    const p = pause(60_000, stop.signal);
    stop.abort();
    await p;
    assert.equal(getEventListeners(stop.signal, "abort").length, 0);
  });

  it("resolves at once when the signal has already aborted", async () => {
    await pause(60_000, AbortSignal.abort());
  });
});
