import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Cluster, type Proc } from "../helpers/procs.js";

describe("smoke: one tracker, two clients", () => {
  let c: Cluster;
  let alice: Proc;
  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1);
    alice = await c.client("alice");
  });
  after(() => c.close());

  it("creates a user, logs in, creates and lists a group", async () => {
    await alice.run("create_user alice pw", /^user alice created/);
    await alice.run("login alice pw", /^logged in as alice/);
    await alice.run("create_group g1", /^group g1 created/);
    const line = await alice.run("list_groups", /^g1 /);
    assert.match(line, /owner=alice/);
  });
});
