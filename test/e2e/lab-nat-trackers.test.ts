/**
 * Members behind routers whose clients talk to different trackers of one store: the
 * downloader asks tracker 1, the sharer's client polls tracker 2 (its tracker_info.txt
 * lists tracker 2 first). A dial-back and a relay circuit asked at tracker 1 reach the
 * sharer through the store. Real ./tracker and ./client processes in the network
 * lab; needs root.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sha1File, writeRandomFile } from "../helpers/files.js";
import { type Proc, ROOT } from "../helpers/procs.js";
import { startClient, TRACKER_PORT } from "../lab/groupshare.js";
import { type Host, Lab, notRoot } from "../lab/lab.js";
import { DOWNLOAD_MS, ok } from "./sharing.helpers.js";

const skip = notRoot();
const SIZE = 2 * 2 ** 20;

describe("members behind routers, on two trackers of one store", { skip }, () => {
  let lab: Lab;
  let dir: string;
  /** tracker 1 first: the owner's and the downloaders' */
  let firstInfo: string;
  /** the same two trackers, tracker 2 first: the sharers' */
  let secondInfo: string;
  let owner: Proc;
  let trackers: Proc[];
  let users = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-lab-nat2-"));
    lab = await Lab.create();
    const host = await lab.host("tracker");
    const lines = [`${host.addr} ${TRACKER_PORT}`, `${host.addr} ${TRACKER_PORT + 1}`];
    // both trackers read the same tracker_info.txt, so they open the same store beside it
    const info = join(dir, "tracker_info.txt");
    await writeFile(info, `${lines.join("\n")}\n`);
    trackers = [1, 2].map((no) => host.spawn(`tracker${no}`, join(ROOT, "tracker"), [info, String(no)]));
    for (const t of trackers) await t.expect(/listening on/);
    firstInfo = info;
    await mkdir(join(dir, "second"));
    secondInfo = join(dir, "second", "tracker_info.txt");
    await writeFile(secondInfo, `${[...lines].reverse().join("\n")}\n`);
    owner = startClient(await lab.host("owner"), "owner", firstInfo, dir);
    await ok(owner, "create_user owner pw", /^user owner created/);
    await ok(owner, "login owner pw", /^logged in as owner/);
    await ok(owner, "create_group g", /^group g created/);
  });
  after(async () => {
    await lab?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function member(host: Host, info: string): Promise<Proc> {
    const name = `u${++users}`;
    const p = startClient(host, name, info, dir);
    await ok(p, `create_user ${name} pw`, /created/);
    await ok(p, `login ${name} pw`, /^logged in as/);
    await ok(p, "join_group g", /^asked to join/);
    await ok(owner, `accept_request g ${name}`, /is now a member/);
    return p;
  }

  async function share(sharer: Proc, downloader: Proc): Promise<string> {
    const name = `f${users}.bin`;
    const file = join(dir, name);
    const sha1 = await writeRandomFile(file, SIZE);
    await ok(sharer, `upload_file ${file} g`, /^uploaded /);
    const out = join(dir, `out-${name}`);
    await mkdir(out);
    await ok(downloader, `download_file g ${name} ${out}`, /^downloading /);
    const end = await downloader.expect(/^download (complete|failed)/, DOWNLOAD_MS);
    assert.match(end, /^download complete/, `${end}\n${downloader.dump()}\n${sharer.dump()}`);
    assert.equal(await sha1File(join(out, name)), sha1);
    return end;
  }

  it("a sharer polling tracker 2 dials back a downloader that asked tracker 1", async () => {
    const sharer = await member(await lab.host("in1", { behind: await lab.router("home") }), secondInfo);
    const downloader = await member(await lab.host("pub1"), firstInfo);
    assert.match(await share(sharer, downloader), /: 2\.00 MiB reversed\)$/);
  });

  it("a sharer polling tracker 2 joins the relay circuit that tracker 1 opened", async () => {
    const sharer = await member(
      await lab.host("rnd1", { behind: await lab.router("rnda", { randomFully: true }) }),
      secondInfo,
    );
    const downloader = await member(
      await lab.host("rnd2", { behind: await lab.router("rndb", { randomFully: true }) }),
      firstInfo,
    );
    assert.match(await share(sharer, downloader), /: 2\.00 MiB relayed\)$/);
  });
});
