/**
 * A tracker holding 100,000 groups (written straight into its SQLite file, as one
 * account's flood would leave it): list_groups stays a short answer with the asker's
 * own groups first and a count, and a prefix finds any group.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { LIST_GROUPS_LIMIT } from "../../src/shared/constants.js";
import { Cluster, type Proc } from "../helpers/procs.js";
import { api } from "./tracker.helpers.js";

const FLOOD = 100_000;
const idOf = (n: number) => `g${String(n).padStart(6, "0")}`;

describe("list_groups with 100,000 groups on the tracker", () => {
  let c: Cluster;
  let alice: Proc;
  let port: number;

  before(async () => {
    c = await Cluster.create(1);
    port = c.ports[0]!;
    const dbFile = join(c.dir, "groupshare.db");
    await c.tracker(1, ["--db", dbFile]);
    alice = await c.client("alice");
    await alice.run("create_user alice pw", /^user alice created/);
    await alice.run("login alice pw", /^logged in as alice/);
    await alice.run("create_group zz-mine", /^group zz-mine created/);
    const db = new Database(dbFile, { fileMustExist: true });
    try {
      db.pragma("busy_timeout = 10000");
      db.prepare("INSERT INTO users (user_id, password_hash, created_at) VALUES ('flood', 'x', 0)").run();
      const group = db.prepare(
        "INSERT INTO user_groups (group_id, owner, created_at) VALUES (?, 'flood', 0)",
      );
      const member = db.prepare("INSERT INTO members (group_id, user_id, joined_at) VALUES (?, 'flood', 0)");
      db.transaction(() => {
        for (let n = 0; n < FLOOD; n++) {
          group.run(idOf(n));
          member.run(idOf(n));
        }
      })();
    } finally {
      db.close();
    }
  });
  after(() => c.close());

  /** Every line the client prints for `command`, up to the one matching `last`. */
  async function linesOf(command: string, last: RegExp): Promise<string[]> {
    const from = alice.lines.length;
    await alice.run(command, last);
    const to = alice.lines.findIndex((l, i) => i >= from && last.test(l));
    return alice.lines.slice(from, to + 1);
  }

  it("shows the asker's groups first, then at most the limit, and says how many there are", async () => {
    const lines = await linesOf("list_groups", /^\(\d+ of \d+ groups/);
    assert.equal(lines.length, LIST_GROUPS_LIMIT + 1, lines.slice(-3).join("\n"));
    assert.match(lines[0]!, /^zz-mine {2}owner=alice {2}members=1 {2}you=owner$/);
    assert.match(lines[1]!, /^g000000 {2}owner=flood {2}members=1$/);
    assert.match(lines[LIST_GROUPS_LIMIT - 1]!, new RegExp(`^${idOf(LIST_GROUPS_LIMIT - 2)} `));
    assert.equal(
      lines[LIST_GROUPS_LIMIT],
      `(${LIST_GROUPS_LIMIT} of ${FLOOD + 1} groups, yours first: list_groups <prefix> finds the rest)`,
    );
  });

  it("finds any group by a prefix of its id", async () => {
    assert.match(await alice.run("list_groups g073910", /^g07391/), /^g073910 {2}owner=flood {2}members=1$/);
    const ten = await linesOf("list_groups g05432", /^g054329 /);
    assert.deepEqual(
      ten.map((l) => l.split(" ")[0]),
      Array.from({ length: 10 }, (_, i) => idOf(54320 + i)),
    );
    await alice.run("list_groups q", /^\(no group id starts with 'q'\)$/);
  });

  it("keeps the raw answer small, and the tracker refuses a hostile prefix", async () => {
    const t = api(port);
    await t.register("bob");
    const token = await t.login("bob", "127.0.0.1:9");
    const all = await t.call("GET", "/v1/groups", undefined, token);
    assert.equal(all.status, 200);
    assert.equal(all.body.groups.length, LIST_GROUPS_LIMIT);
    assert.equal(all.body.total, FLOOD + 1);
    assert.ok(JSON.stringify(all.body).length < 16 * 1024, "about 10 KB, not megabytes");
    const bad = await t.call("GET", `/v1/groups?prefix=${encodeURIComponent("a'; --")}`, undefined, token);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, "BAD_REQUEST");
  });
});
