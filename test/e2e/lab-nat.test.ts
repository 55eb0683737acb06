/**
 * Members behind home routers (masquerade, no unsolicited inbound) in the network
 * lab, with real ./tracker and ./client processes: the paths that need no help
 * from the tracker. Needs root.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sha1File, writeRandomFile } from "../helpers/files.js";
import type { Proc } from "../helpers/procs.js";
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
  let users = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-lab-nat-"));
    lab = await Lab.create();
    ({ infoPath } = await startTracker(await lab.host("tracker"), dir));
    home = await lab.router("home");
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

  /** `sharer` uploads a fresh file; `downloader` fetches it; the bytes must match. */
  async function share(sharer: Proc, downloader: Proc): Promise<void> {
    const name = `f${users}.bin`;
    const file = join(dir, name);
    const sha1 = await writeRandomFile(file, SIZE);
    await ok(sharer, `upload_file ${file} g`, /^uploaded /);
    const out = join(dir, `out-${downloader.label}-${name}`);
    await mkdir(out);
    await ok(downloader, `download_file g ${name} ${out}`, /^downloading /);
    const end = await downloader.expect(/^download (complete|failed)/, DOWNLOAD_MS);
    assert.match(end, /^download complete/, `${end}\n${downloader.dump()}`);
    assert.equal(await sha1File(join(out, name)), sha1);
  }

  it("a public sharer serves a downloader behind a router", async () => {
    const sharer = await member(await lab.host("pub1"));
    const inside = await member(await lab.host("in1", { behind: home }));
    await share(sharer, inside);
  });

  it("two members behind one router share over their LAN (the router does not hairpin)", async () => {
    const a = await member(await lab.host("in2", { behind: home }));
    const b = await member(await lab.host("in3", { behind: home }));
    await share(a, b);
  });
});
