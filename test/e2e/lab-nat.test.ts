/**
 * Members behind home routers (masquerade, no unsolicited inbound) in the network
 * lab, with real ./tracker and ./client processes: every pair of places a sharer and
 * a downloader can be, each reached by the cheapest path that works (direct, the
 * sharer dialling back, the trackers' relay). Needs root.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sha1File, writeRandomFile } from "../helpers/files.js";
import { type Proc, ROOT } from "../helpers/procs.js";
import { startClient, startTracker } from "../lab/groupshare.js";
import { type Host, Lab, notRoot, type Router } from "../lab/lab.js";
import { DOWNLOAD_MS, ok } from "./sharing.helpers.js";

const skip = notRoot();
const SIZE = 3 * 2 ** 20;

describe("members behind home routers", { skip }, () => {
  let lab: Lab;
  let dir: string;
  let infoPath: string;
  let owner: Proc;
  let home: Router;
  let away: Router;
  let trackerHost: Host;
  let tapPath: string;
  let users = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-lab-nat-"));
    lab = await Lab.create();
    trackerHost = await lab.host("tracker");
    tapPath = join(dir, "relay-tap.bin");
    ({ infoPath } = await startTracker(trackerHost, dir, {
      nodeArgs: ["--import", join(ROOT, "dist/test/lab/relayTap.js")],
      env: { ...process.env, RELAY_TAP: tapPath },
    }));
    home = await lab.router("home");
    away = await lab.router("away");
    owner = startClient(await lab.host("owner"), "owner", infoPath, dir);
    await ok(owner, "create_user owner pw", /^user owner created/);
    await ok(owner, "login owner pw", /^logged in as owner/);
    await ok(owner, "create_group g", /^group g created/);
  });
  after(async () => {
    await lab?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A logged-in member of g on `host`. */
  async function member(host: Host): Promise<Proc> {
    const name = `u${++users}`;
    const p = startClient(host, name, infoPath, dir);
    await ok(p, `create_user ${name} pw`, /created/);
    await ok(p, `login ${name} pw`, /^logged in as/);
    await ok(p, "join_group g", /^asked to join/);
    await ok(owner, `accept_request g ${name}`, /is now a member/);
    return p;
  }

  /**
   * `sharer` uploads a fresh file; `downloader` fetches it; the bytes must match.
   * Returns the completion line and what the tracker's host sent meanwhile.
   */
  async function share(
    sharer: Proc,
    downloader: Proc,
  ): Promise<{ end: string; trackerSent: number; bytes: Buffer; name: string }> {
    const name = `f${users}.bin`;
    const file = join(dir, name);
    const sha1 = await writeRandomFile(file, SIZE);
    await ok(sharer, `upload_file ${file} g`, /^uploaded /);
    const out = join(dir, `out-${downloader.label}-${name}`);
    await mkdir(out);
    const before = (await trackerHost.counters()).up;
    await ok(downloader, `download_file g ${name} ${out}`, /^downloading /);
    const end = await downloader.expect(/^download (complete|failed)/, DOWNLOAD_MS);
    assert.match(end, /^download complete/, `${end}\n${downloader.dump()}\n${sharer.dump()}`);
    assert.equal(await sha1File(join(out, name)), sha1);
    return {
      end,
      trackerSent: (await trackerHost.counters()).up - before,
      bytes: await readFile(file),
      name,
    };
  }

  it("a public sharer serves a downloader behind a router", async () => {
    const sharer = await member(await lab.host("pub1"));
    const inside = await member(await lab.host("in1", { behind: home }));
    const { end, trackerSent } = await share(sharer, inside);
    assert.doesNotMatch(end, /reversed|relayed/); // direct: the completion line names no other path
    assert.ok(trackerSent < SIZE / 4, `the tracker's host sent ${trackerSent} bytes`);
  });

  it("a sharer behind a router serves a public downloader by dialling it back", async () => {
    const inside = await member(await lab.host("in4", { behind: home }));
    const outside = await member(await lab.host("pub2"));
    const { end, trackerSent } = await share(inside, outside);
    assert.match(end, /: 3\.00 MiB reversed\)$/);
    // the file did not pass through the tracker's host
    assert.ok(trackerSent < SIZE / 4, `the tracker's host sent ${trackerSent} bytes`);
  });

  it("a sharer behind one router serves a downloader behind another through a punched hole", async () => {
    const inside = await member(await lab.host("in5", { behind: home }));
    const far = await member(await lab.host("far1", { behind: away }));
    const { end, trackerSent } = await share(inside, far);
    assert.match(end, /: 3\.00 MiB punched\)$/);
    assert.ok(trackerSent < SIZE / 4, `the tracker's host sent ${trackerSent} bytes`);
  });

  it("routers that pick a random port for every connection defeat the punch: the relay serves", async () => {
    const a = await member(
      await lab.host("rnd1", { behind: await lab.router("rnda", { randomFully: true }) }),
    );
    const b = await member(
      await lab.host("rnd2", { behind: await lab.router("rndb", { randomFully: true }) }),
    );
    const { end, trackerSent, bytes, name } = await share(a, b);
    assert.match(end, /: 3\.00 MiB relayed\)$/);
    assert.ok(trackerSent >= SIZE, `the tracker's host sent only ${trackerSent} bytes`);
    // what the relay itself received from the members' legs: their TLS, and nothing readable
    const carried = await readFile(tapPath);
    assert.ok(carried.length >= SIZE, `the relay received ${carried.length} bytes`);
    for (const secret of [name, "eyJ1Ijoi" /* a ticket: base64url of {"u":" */]) {
      assert.equal(carried.indexOf(secret), -1, `the relay received '${secret}'`);
    }
    let found = 0;
    for (let i = 0; i < 400; i++) {
      const at = Math.floor((i / 400) * (bytes.length - 64));
      if (carried.indexOf(bytes.subarray(at, at + 64)) >= 0) found++;
    }
    assert.equal(found, 0, `${found} of 400 64-byte samples of the file reached the relay in clear`);
  });

  it("two members behind one router share over their LAN (the router does not hairpin)", async () => {
    const a = await member(await lab.host("in2", { behind: home }));
    const b = await member(await lab.host("in3", { behind: home }));
    await share(a, b);
  });
});
