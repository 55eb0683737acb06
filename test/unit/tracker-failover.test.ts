/**
 * The client's failover between trackers when calls overlap: each call tries every
 * tracker once, in order from the one that answered last when the call began.
 */
import assert from "node:assert/strict";
import type { Server } from "node:http";
import { createServer } from "node:https";
import { getEventListeners } from "node:events";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { TrackerClient } from "../../src/client/tracker/trackerClient.js";
import { tlsIdentity } from "../helpers/tls.js";

const TIMEOUT_MS = 300;

function listen(server: Server): Promise<number> {
  return new Promise((res) =>
    server.listen(0, "127.0.0.1", () => res((server.address() as AddressInfo).port)),
  );
}

describe("tracker failover with overlapping calls", () => {
  // tracker 1 takes requests and never answers; tracker 2 answers
  const arrived: (() => void)[] = [];
  const id = tlsIdentity();
  const hung = createServer(id.server, () => arrived.shift()?.());
  const alive = createServer(id.server, (_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end('{"ok":true}');
  });
  let client: TrackerClient;

  before(async () => {
    const [p1, p2] = [await listen(hung), await listen(alive)];
    client = new TrackerClient({
      trackers: [
        { no: 1, host: "127.0.0.1", port: p1, fingerprint: id.fingerprint },
        { no: 2, host: "127.0.0.1", port: p2, fingerprint: id.fingerprint },
      ],
      timeoutMs: TIMEOUT_MS,
    });
  });
  after(() => {
    client.close();
    hung.closeAllConnections();
    alive.closeAllConnections();
    hung.close();
    alive.close();
  });

  it("a call still reaches tracker 2 when another call failed over to it while this one waited on tracker 1", async () => {
    const reached = () => new Promise<void>((res) => arrived.push(res));
    const firstAtTracker1 = reached();
    const early = client.call("health");
    await firstAtTracker1;
    // late starts half a timeout after early, so that early has failed over before late's
    // wait at tracker 1 ends (the overlap is the scenario, not a synchronisation)
    await delay(TIMEOUT_MS / 2);
    const secondAtTracker1 = reached();
    const late = client.call("health");
    await secondAtTracker1;
    // early fails over first and makes tracker 2 current; late must still try tracker 2, not 1 again
    assert.deepEqual(await early, { ok: true });
    assert.deepEqual(await late, { ok: true });
    assert.equal(client.current.no, 2);
  });

  it("calls that share one signal leave no listener on it", async () => {
    const stop = new AbortController();
    for (let i = 0; i < 12; i++) await client.call("health", { signal: stop.signal });
    assert.equal(getEventListeners(stop.signal, "abort").length, 0);
  });
});
