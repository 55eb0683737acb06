/**
 * The client's state on disk: its folder is its owner's only (created 0700 with every
 * file in it 0600, and an older folder left world-readable tightened when the client
 * starts), and a state file from before file ids still shares again.
 */
import assert from "node:assert/strict";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Cluster } from "../helpers/procs.js";
import { fileIdOf } from "../../src/shared/fileId.js";
import { ok, randomFile } from "./sharing.helpers.js";

async function mode(path: string): Promise<string> {
  return ((await stat(path)).mode & 0o777).toString(8);
}

describe("client state on disk", () => {
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
    await writeFile(join(stateDir, "notes.txt"), "mine", { mode: 0o644 });
    await chmod(join(stateDir, "notes.txt"), 0o644);
    const p = await c.client("old", { stateDir });
    // the client answers commands once it has started: by then the folder is tightened
    await ok(p, "help", /create_user/);
    assert.equal(await mode(stateDir), "700");
    assert.equal(await mode(join(stateDir, "users")), "700");
    for (const f of files) assert.equal(await mode(f), "600", f);
    // a file the client did not write is not its to change
    assert.equal(await mode(join(stateDir, "notes.txt")), "644");
  });

  it("shares again from a state file saved before file ids, and records the id", async () => {
    const stateDir = join(c.dir, "legacy");
    const first = await c.client("legacy", { stateDir });
    await ok(first, "create_user legacy pw", /^user .* created/);
    await ok(first, "login legacy pw", /^logged in as legacy/);
    await ok(first, "create_group gl", /^group gl created/);
    const f = await randomFile(join(c.dir, "legacy.bin"), 700_000);
    await ok(first, `upload_file ${f.path} gl`, /^uploaded legacy\.bin/);
    first.send("quit");
    await first.waitExit();
    const path = join(stateDir, "users", "legacy.json");
    const state = JSON.parse(await readFile(path, "utf8")) as { shares: { fileId?: string }[] };
    const id = fileIdOf(f.size, f.pieces);
    assert.equal(state.shares[0]!.fileId, id);
    for (const s of state.shares) delete s.fileId;
    await writeFile(path, JSON.stringify(state));
    const again = await c.client("legacy2", { stateDir });
    await ok(again, "login legacy pw", /^sharing again: 1 file/);
    await ok(again, "show_shares", /^\[gl\] legacy\.bin {2}2\/2 pieces/);
    await ok(again, "logout", /^logged out legacy/);
    const saved = JSON.parse(await readFile(path, "utf8")) as { shares: { fileId?: string }[] };
    assert.equal(saved.shares[0]!.fileId, id);
  });
});
