/**
 * Which key each tracker of one tracker_info.txt may present (TrackerTrust), with real
 * TLS servers: pins on other lines bind an unpinned line, lines may pin different keys,
 * and a key recorded for one tracker binds the file's others. The end-to-end attacks
 * (failover to an impostor, a CA-issued impostor) are in test/e2e/tracker-tls.test.ts.
 */
import assert from "node:assert/strict";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { KnownTrackers } from "../../src/client/tracker/knownTrackers.js";
import { TrackerClient } from "../../src/client/tracker/trackerClient.js";
import { GsError } from "../../src/shared/errors.js";
import type { TrackerAddress } from "../../src/shared/trackerInfo.js";
import { freePort } from "../helpers/procs.js";
import { tlsIdentity } from "../helpers/tls.js";

type Identity = ReturnType<typeof tlsIdentity>;

const K1 = tlsIdentity("k1");
const K2 = tlsIdentity("k2");
const K3 = tlsIdentity("k3");

/** A tracker presenting `presents` on 127.0.0.1, answering every request; counts them. */
async function fakeTracker(presents: Identity) {
  const server = createServer(presents.server, (_req, res) => {
    got.requests++;
    res.setHeader("content-type", "application/json");
    res.end('{"ok":true}');
  });
  const got = { requests: 0, port: 0 };
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  got.port = (server.address() as AddressInfo).port;
  const close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return Object.assign(got, { close });
}

/** Calls the first tracker of `trackers` that listens: "ok", or the refusal's message. */
async function outcome(trackers: TrackerAddress[], known: KnownTrackers): Promise<string> {
  const client = new TrackerClient({ trackers, known });
  try {
    await client.call("health");
    return "ok";
  } catch (err) {
    if (!(err instanceof GsError) || err.code !== "TRACKER_KEY_MISMATCH") throw err;
    return err.message;
  } finally {
    client.close();
  }
}

/**
 * Lists `lines` (a pin or none each) as one tracker_info.txt, runs a tracker presenting
 * `presents` at line `at` (the others are down, so a call reaches it), and calls it.
 */
async function verdict(
  lines: (Identity | undefined)[],
  at: number,
  presents: Identity,
): Promise<{ outcome: string; requests: number }> {
  const tracker = await fakeTracker(presents);
  try {
    const trackers: TrackerAddress[] = [];
    for (const [i, pin] of lines.entries()) {
      const port = i === at ? tracker.port : await freePort();
      trackers.push({ no: i + 1, host: "127.0.0.1", port, ...(pin && { fingerprint: pin.fingerprint }) });
    }
    return { outcome: await outcome(trackers, new KnownTrackers()), requests: tracker.requests };
  } finally {
    await tracker.close();
  }
}

describe("the trackers of one tracker_info.txt trust one key", () => {
  it("an unpinned line must present a key another line pins; nothing reaches one that does not", async () => {
    const refused = await verdict([K1, undefined], 1, K2);
    assert.match(
      refused.outcome,
      new RegExp(
        `presented key ${K2.fingerprint}, but tracker_info.txt pins ${K1.fingerprint} for tracker 1`,
      ),
    );
    assert.equal(refused.requests, 0);
    assert.deepEqual(await verdict([K1, undefined], 1, K1), { outcome: "ok", requests: 1 });
  });

  it("lines may pin different keys: each line its own, an unpinned line any of them", async () => {
    assert.equal((await verdict([K1, K2, undefined], 1, K2)).outcome, "ok");
    assert.match((await verdict([K1, K2, undefined], 1, K1)).outcome, new RegExp(`pins ${K2.fingerprint}:`));
    assert.equal((await verdict([K1, K2, undefined], 2, K2)).outcome, "ok");
    assert.match((await verdict([K1, K2, undefined], 2, K3)).outcome, /tracker_info\.txt pins/);
  });

  it("a key recorded for one tracker binds the file's others, each recorded once it presents it", async () => {
    const known = new KnownTrackers();
    const down = await freePort(); // tracker 1, met before it went down
    known.record(`127.0.0.1:${down}`, K1.fingerprint);
    const impostor = await fakeTracker(K2);
    const real = await fakeTracker(K1);
    try {
      const file = (t2: number): TrackerAddress[] => [
        { no: 1, host: "127.0.0.1", port: down },
        { no: 2, host: "127.0.0.1", port: t2 },
      ];
      assert.match(
        await outcome(file(impostor.port), known),
        new RegExp(`records ${K1.fingerprint} for tracker 1 at 127\\.0\\.0\\.1:${down} `),
      );
      assert.equal(impostor.requests, 0);
      assert.equal(known.all().get(`127.0.0.1:${impostor.port}`), undefined);
      assert.equal(await outcome(file(real.port), known), "ok");
      assert.equal(real.requests, 1);
      assert.equal(known.all().get(`127.0.0.1:${real.port}`), K1.fingerprint);
    } finally {
      await impostor.close();
      await real.close();
    }
  });
});
