/**
 * groupshare across the network lab: a real ./tracker and real ./client
 * processes, each in a host of its own (the seeder's upload capped), two public
 * downloaders and one behind a home router, all downloading at once. Needs root.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sha1File, writeRandomFile } from "../helpers/files.js";
import type { Proc } from "../helpers/procs.js";
import { startClient, startTracker } from "../lab/groupshare.js";
import { type Host, Lab, mbit, notRoot } from "../lab/lab.js";
import { DOWNLOAD_MS, ok } from "./sharing.helpers.js";

const skip = notRoot();
const SIZE = 8 * 2 ** 20;

describe("groupshare in the network lab", { skip }, () => {
  let lab: Lab;
  let dir: string;
  let seeder: Proc;
  const downloaders: { host: Host; proc: Proc; out: string }[] = [];
  let sha1 = "";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-lab-"));
    lab = await Lab.create();
    const t = await lab.host("tracker");
    const s = await lab.host("seed", { up: mbit(80) });
    const home = await lab.router("home", { up: mbit(40), randomFully: true });
    const hosts = [
      await lab.host("d1", { up: mbit(40) }),
      await lab.host("d2", { up: mbit(40) }),
      await lab.host("d3", { behind: home }),
    ];
    const { infoPath } = await startTracker(t, dir);
    const file = join(dir, "movie.bin");
    sha1 = await writeRandomFile(file, SIZE);
    seeder = startClient(s, "seeder", infoPath, dir);
    await ok(seeder, "create_user owner pw", /^user owner created/);
    await ok(seeder, "login owner pw", /^logged in as owner/);
    await ok(seeder, "create_group g", /^group g created/);
    await ok(seeder, `upload_file ${file} g`, /^uploaded /);
    for (const [i, host] of hosts.entries()) {
      const proc = startClient(host, `d${i + 1}`, infoPath, dir);
      const out = join(dir, `out-${i + 1}`);
      await mkdir(out);
      await ok(proc, `create_user u${i + 1} pw`, /^user u\d created/);
      await ok(proc, `login u${i + 1} pw`, /^logged in as/);
      await ok(proc, "join_group g", /^asked to join/);
      await ok(seeder, `accept_request g u${i + 1}`, /is now a member/);
      downloaders.push({ host, proc, out });
    }
  });
  after(async () => {
    await lab?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("every downloader, public or behind a router, gets the file from the capped seeder and each other", async () => {
    const started = performance.now();
    await Promise.all(
      downloaders.map(async (d) => {
        await ok(d.proc, `download_file g movie.bin ${d.out}`, /^downloading /);
        const end = await d.proc.expect(/^download (complete|failed)/, DOWNLOAD_MS);
        assert.match(end, /^download complete/, `${d.proc.label}: ${end}\n${d.proc.dump()}`);
      }),
    );
    const secs = (performance.now() - started) / 1000;
    for (const d of downloaders) assert.equal(await sha1File(join(d.out, "movie.bin")), sha1, d.proc.label);
    // three copies of 8 MiB cannot all have come out of an 80 Mbit/s upload in less than this:
    // the seeder's cap holds, whoever else served
    assert.ok(secs >= (SIZE * 8) / mbit(80), `took ${secs} s`);
    const served = (await Promise.all(downloaders.map((d) => d.host.counters()))).reduce(
      (n, c) => n + c.down,
      0,
    );
    assert.ok(served >= 3 * SIZE, `the downloaders' links carried ${served} bytes in`);
  });
});
