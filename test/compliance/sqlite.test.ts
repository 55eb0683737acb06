import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createInterface } from "node:readline";
import { openDb, openStore } from "../../src/tracker/store/index.js";
import { migrationRaceSuite, storeComplianceSuite } from "./store.suite.js";

let dir: string;
let file: string;

describe("SQLite store", () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gs-sqlite-"));
    // a subdirectory that does not exist yet: openStore creates it
    file = join(dir, "state", "tracker.db");
  });

  storeComplianceSuite(
    "SQLite",
    () => openStore(file),
    () => rm(dir, { recursive: true, force: true }),
  );
});

describe("SQLite migrations", () => {
  let migDir: string;
  before(async () => {
    migDir = await mkdtemp(join(tmpdir(), "gs-sqlite-mig-"));
  });
  migrationRaceSuite(
    "SQLite",
    () => openDb(join(migDir, "tracker.db")),
    () => rm(migDir, { recursive: true, force: true }),
  );
});

describe("SQLite store across processes", () => {
  let procDir: string;
  before(async () => {
    procDir = await mkdtemp(join(tmpdir(), "gs-sqlite-proc-"));
  });
  after(() => rm(procDir, { recursive: true, force: true }));

  it("trackers in several processes create each group exactly once", async () => {
    const db = join(procDir, "tracker.db");
    const processes = 4;
    const groups = 200;
    const setup = await openStore(db);
    for (let p = 0; p < processes; p++) await setup.createUser({ userId: `u${p}`, passwordHash: "h" }, 0);
    await setup.close();
    // Each child opens the store, says "ready" and starts on "go", so they all run
    // at once; each walks the same ids from a different start, so they collide.
    const child = `
      const { openStore } = await import(process.argv[1]);
      const [db, p, processes, groups] = [process.argv[2], ...process.argv.slice(3).map(Number)];
      const store = await openStore(db);
      console.log("ready");
      await new Promise((resolve) => process.stdin.once("data", resolve));
      const won = [];
      for (let k = 0; k < groups; k++) {
        const g = "g" + ((k + p * Math.floor(groups / processes)) % groups);
        try { await store.createGroup(g, "u" + p, Date.now()); won.push(g); }
        catch (err) { if (err.code !== "GROUP_EXISTS") throw err; }
      }
      await store.close();
      console.log(JSON.stringify(won));
      process.stdin.destroy();
    `;
    const index = new URL("../../src/tracker/store/index.js", import.meta.url).href;
    const children = Array.from({ length: processes }, (_, p) =>
      spawn(
        process.execPath,
        ["--input-type=module", "-e", child, index, db, ...[p, processes, groups].map(String)],
        {
          stdio: ["pipe", "pipe", "inherit"],
          timeout: 30_000,
        },
      ),
    );
    const lines = children.map((c) => createInterface({ input: c.stdout })[Symbol.asyncIterator]());
    const next = async (i: number) => {
      const line = await lines[i]!.next();
      assert.ok(!line.done, `child ${i} exited early`);
      return line.value;
    };
    for (let i = 0; i < processes; i++) assert.equal(await next(i), "ready");
    for (const c of children) c.stdin.write("go\n");
    const won = (await Promise.all(children.map((_, i) => next(i)))).flatMap(
      (l) => JSON.parse(l) as string[],
    );
    await Promise.all(children.map((c) => (c.exitCode === null ? once(c, "exit") : undefined)));
    assert.deepEqual(
      children.map((c) => c.exitCode),
      Array(processes).fill(0),
    );
    assert.deepEqual(won.sort(), Array.from({ length: groups }, (_, k) => `g${k}`).sort());
  });
});
