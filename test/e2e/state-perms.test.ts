/**
 * The client's state folder is its owner's only: created 0700 with every file in it
 * 0600, and an older folder left world-readable is tightened when the client starts.
 */
import assert from "node:assert/strict";
import { chmod, mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cluster } from "../helpers/procs.js";
import { ok, randomFile } from "./sharing.helpers.js";

async function mode(path: string): Promise<string> {
  return ((await stat(path)).mode & 0o777).toString(8);
}

describe("state folder permissions", () => {
  let c: Cluster;
  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
  });
  after(() => c.close());

  it("creates the state folder 0700 and its files 0600", async () => {
    const stateDir = join(c.dir, "fresh", "state");
    const p = await c.client("fresh", { stateDir });
    await ok(p, "create_user fresh pw", /^user .* created/);
    await ok(p, "login fresh pw", /^logged in as fresh/);
    await ok(p, "create_group gf", /^group gf created/);
    const f = await randomFile(join(c.dir, "fresh.bin"), 1_000);
    await ok(p, `upload_file ${f.path} gf`, /^uploaded fresh\.bin/);
    assert.equal(await mode(stateDir), "700");
    assert.equal(await mode(join(stateDir, "users")), "700");
    assert.equal(await mode(join(stateDir, "users", "fresh.json")), "600");
  });

  it("tightens a world-readable state folder, its state files and its history at start", async () => {
    const stateDir = join(c.dir, "old");
    await mkdir(join(stateDir, "users"), { recursive: true });
    const files = [join(stateDir, "history"), join(stateDir, "users", "old.json")];
    for (const f of files) await writeFile(f, f.endsWith(".json") ? "{}" : "login old pw\n");
    await chmod(stateDir, 0o755);
    await chmod(join(stateDir, "users"), 0o755);
    for (const f of files) await chmod(f, 0o644);
    const p = await c.client("old", { stateDir });
    // the client answers commands once it has started: by then the folder is tightened
    await ok(p, "help", /create_user/);
    assert.equal(await mode(stateDir), "700");
    assert.equal(await mode(join(stateDir, "users")), "700");
    for (const f of files) assert.equal(await mode(f), "600", f);
  });
});
