import assert from "node:assert/strict";
import { connect, createServer, type Server } from "node:net";
import { after, before, describe, it } from "node:test";
import { Cluster, freePort, type Proc } from "../helpers/procs.js";
import { fails, ok, say } from "../helpers/say.js";
import { trackerCall } from "../helpers/tls.js";

// Accounts and groups, end to end. Three real clients against one real
// tracker, driven through stdin (not a terminal) the way a script or a new user would.

const NOT_LOGGED_IN = /^error: not logged in.*log in/;

/** Every command that needs a login (with arguments of the right count). */
const NEEDS_LOGIN = [
  "create_group g0",
  "join_group g0",
  "leave_group g0",
  "list_requests g0",
  "requests list_requests g0",
  "accept_request g0 bob",
  "list_groups",
  "logout",
];

/** `list_groups` as a map from group id to its line. */
async function groups(p: Proc): Promise<Map<string, string>> {
  const out = await ok(p, "list_groups", /^\S/);
  if (out[0]!.startsWith("(no groups")) return new Map();
  return new Map(out.map((l) => [l.split(/\s+/)[0]!, l]));
}

function tcpConnects(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host: "127.0.0.1", port });
    s.setTimeout(5_000);
    s.once("connect", () => {
      s.destroy();
      res(true);
    });
    s.once("error", () => res(false));
    s.once("timeout", () => {
      s.destroy();
      res(false);
    });
  });
}

describe("accounts and groups: three clients, one tracker", () => {
  let c: Cluster;
  let tracker: Proc;
  let alice: Proc & { port: number };
  let bob: Proc & { port: number };
  let carol: Proc & { port: number };

  before(async () => {
    c = await Cluster.create(1);
    tracker = await c.tracker(1);
    [alice, bob, carol] = await Promise.all([c.client("alice"), c.client("bob"), c.client("carol")]);
  });
  after(() => c.close());

  it("prints no prompt or colour when stdin is not a terminal, and listens on IP:PORT from the start", async () => {
    const out = await say(alice, "help");
    for (const l of out) assert.doesNotMatch(l, /\x1b\[|> $/, `not plain: ${JSON.stringify(l)}`);
    assert.equal(await tcpConnects(alice.port), true, "the peer server listens before any login");
  });

  it("fails clearly before login for every command that needs one", async () => {
    for (const cmd of NEEDS_LOGIN) await fails(alice, cmd, NOT_LOGGED_IN);
  });

  it("creates users with unique ids and checks passwords", async () => {
    await ok(alice, "create_user alice pw-a", /^user alice created/);
    await ok(bob, "create_user bob pw-b", /^user bob created/);
    await ok(carol, "create_user carol pw-c", /^user carol created/);
    await fails(bob, "create_user alice other", /^error: .*alice.*already exists/);
    await fails(alice, "login alice wrong", /^error: .*wrong user id or password/);
    await fails(alice, "login nobody pw", /^error: .*wrong user id or password/);
    await ok(alice, "login alice pw-a", /^logged in as alice$/);
    await fails(alice, "login alice pw-a", /^error: already logged in as alice.*logout/);
    await fails(alice, "login bob pw-b", /^error: already logged in as alice/);
    await ok(bob, "login bob pw-b", /^logged in as bob$/);
    await ok(carol, "login carol pw-c", /^logged in as carol$/);
  });

  it("logs a user's mistake as info and a malformed request as a warning; the tracker keeps serving", async () => {
    // the wrong password above was refused: logged, not a crash, and not a warning
    await tracker.expectErr(/^info: .*401 WRONG_PASSWORD/);
    assert.ok(!tracker.errLines.some((l) => /^warning: .*WRONG_PASSWORD/.test(l)), tracker.dump());
    const res = await trackerCall(c.ports[0]!, {
      method: "POST",
      path: "/v1/users",
      rawBody: '{"userId": "mallory", ',
    });
    assert.equal(res.status, 400);
    assert.equal(res.code, "BAD_REQUEST");
    await tracker.expectErr(/^warning: .*400 BAD_REQUEST/);
    assert.ok(tracker.alive);
    await ok(alice, "list_groups", /^\(no groups yet/);
  });

  it("refuses unknown commands and wrong argument counts, and takes quoted arguments", async () => {
    await fails(alice, "frobnicate", /^error: unknown command 'frobnicate'.*help/);
    await fails(alice, "LIST_GROUPS", /^error: unknown command/);
    await fails(
      alice,
      "create_user dave",
      /^error: create_user takes 2 arguments, got 1.*<user_id> <passwd>/,
    );
    await fails(alice, "create_user a b c", /^error: create_user takes 2 arguments, got 3/);
    await fails(alice, "login", /^error: login takes 2 arguments, got 0/);
    await fails(alice, "create_group", /^error: create_group takes 1 argument, got 0/);
    await fails(alice, "join_group a b", /^error: join_group takes 1 argument, got 2/);
    await fails(alice, "leave_group", /^error: leave_group takes 1 argument/);
    await fails(alice, "list_requests", /^error: list_requests takes 1 argument, got 0/);
    await fails(alice, "requests list_requests", /^error: list_requests takes 1 argument, got 0/);
    await fails(alice, "requests g1", /^error: .*requests list_requests <group_id>/);
    await fails(alice, "accept_request g1", /^error: accept_request takes 2 arguments, got 1/);
    await fails(alice, "list_groups now later", /^error: list_groups takes 0 to 1 arguments, got 2/);
    await fails(alice, "logout now", /^error: logout takes 0 arguments, got 1/);
    await fails(alice, 'create_group "unterminated', /^error: unterminated double quote/);
    await fails(alice, "create_group 'unterminated", /^error: unterminated single quote/);
    // a password with spaces, quoted both ways
    await ok(carol, 'create_user dave "two words"', /^user dave created/);
    await fails(carol, "create_user dave2 two words", /^error: create_user takes 2 arguments, got 3/);
    await ok(carol, "logout", /^logged out carol/);
    await fails(carol, "login dave 'two'", /^error: .*wrong user id or password/);
    await ok(carol, "login dave 'two words'", /^logged in as dave$/);
    await ok(carol, "logout", /^logged out dave/);
    await ok(carol, 'login "carol" "pw-c"', /^logged in as carol$/);
    // blank lines and comments are no commands at all
    assert.deepEqual(await say(alice, ""), []);
    assert.deepEqual(await say(alice, "   "), []);
    assert.deepEqual(await say(alice, "# a comment"), []);
  });

  it("refuses ids that are empty, too long or outside the set, and help states the rule", async () => {
    const help = (await ok(alice, "help", /^commands:/)).join("\n");
    assert.match(help, /ids: 1-32 characters: letters, digits, '_', '-' or '\.'/);
    for (const name of ["create_user", "login", "create_group", "join_group", "leave_group"]) {
      assert.match(help, new RegExp(`^  ${name} `, "m"), `help lists ${name}`);
    }
    assert.match(help, /requests list_requests <group_id>/);
    assert.match(help, /quit \| exit/);
    const long = "x".repeat(33);
    for (const bad of ['""', long, "bad/id", "'with space'", "semi;colon", "ünï"]) {
      await fails(alice, `create_group ${bad}`, /^error: invalid group id .*1-32 characters/);
      await fails(alice, `join_group ${bad}`, /^error: invalid group id/);
      await fails(alice, `accept_request ok ${bad}`, /^error: invalid user id/);
      await fails(bob, `create_user ${bad} pw`, /^error: invalid user id .*1-32 characters/);
    }
    // 32 characters from the whole set is fine
    const longest = "A-z_0.9".padEnd(32, "q");
    await ok(alice, `create_group ${longest}`, new RegExp(`^group ${longest.replace(/\./g, "\\.")} created`));
    await ok(alice, `leave_group ${longest}`, /deleted/);
  });

  it("runs join requests: owner-only listing and accepting, joining and accepting twice refused", async () => {
    await ok(alice, "create_group team", /^group team created; you own it/);
    await fails(bob, "create_group team", /^error: group 'team' already exists/);
    await fails(bob, "join_group nosuch", /^error: .*nosuch/);
    await fails(alice, "join_group team", /^error: you are already a member of 'team'/);
    // bob asks first, carol second
    await ok(bob, "join_group team", /^asked to join team/);
    await fails(bob, "join_group team", /^error: .*request.*pending/);
    await ok(carol, "join_group team", /^asked to join team/);
    // leave_group withdraws a pending request; asking again is allowed
    await ok(carol, "leave_group team", /^withdrew your request to join team/);
    await ok(carol, "join_group team", /^asked to join team/);
    assert.match((await groups(bob)).get("team")!, /owner=alice\s+members=1\s+you=pending/);
    const requests = await ok(alice, "list_requests team", /^bob /);
    assert.equal(requests.length, 2);
    assert.match(requests[1]!, /^carol /);
    assert.deepEqual(
      (await ok(alice, "requests list_requests team", /^bob /)).map((l) => l.split(/\s+/)[0]),
      ["bob", "carol"],
    );
    // only the owner lists and accepts
    await fails(bob, "list_requests team", /^error: only the owner of 'team'/);
    await fails(bob, "requests list_requests team", /^error: only the owner of 'team'/);
    await fails(bob, "accept_request team carol", /^error: only the owner of 'team'/);
    await fails(alice, "list_requests nosuch", /^error: .*nosuch/);
    // accepted in the other order: carol joins before bob
    await ok(alice, "accept_request team carol", /^carol is now a member of team/);
    await fails(alice, "accept_request team carol", /^error: 'carol' is already a member of 'team'/);
    await ok(alice, "accept_request team bob", /^bob is now a member of team/);
    await fails(alice, "accept_request team bob", /^error: 'bob' is already a member/);
    await fails(alice, "accept_request team dave", /^error: 'dave' has not asked to join 'team'/);
    await fails(alice, "accept_request team ghost", /^error: 'ghost' has not asked to join 'team'/);
    await fails(bob, "join_group team", /^error: you are already a member of 'team'/);
    await ok(alice, "list_requests team", /^\(no pending requests for team\)/);
    // still a member after the join: no ownership for anyone but alice
    await fails(carol, "accept_request team bob", /^error: only the owner/);
    const g = await groups(carol);
    assert.match(g.get("team")!, /^team\s+owner=alice\s+members=3\s+you=member$/);
  });

  it("passes ownership to the earliest-joined member when the owner leaves, and deletes an empty group", async () => {
    // carol joined before bob (alphabetical and request order say bob)
    await ok(alice, "leave_group team", /^left group team; carol owns it now/);
    assert.match((await groups(bob)).get("team")!, /owner=carol\s+members=2\s+you=member/);
    assert.match((await groups(alice)).get("team")!, /owner=carol\s+members=2$/);
    await fails(alice, "list_requests team", /^error: only the owner/);
    await fails(alice, "leave_group team", /^error: you are not a member of 'team'/);
    // the new owner runs requests
    await ok(alice, "join_group team", /^asked to join team/);
    await ok(carol, "list_requests team", /^alice /);
    await ok(carol, "accept_request team alice", /^alice is now a member of team/);
    await ok(carol, "leave_group team", /^left group team; bob owns it now/);
    await ok(bob, "leave_group team", /^left group team; alice owns it now/);
    await ok(alice, "leave_group team", /^left group team; it had no other member and is deleted/);
    for (const p of [alice, bob, carol]) assert.equal((await groups(p)).has("team"), false);
    await fails(bob, "join_group team", /^error: .*team/);
    await ok(bob, "create_group team", /^group team created/); // the id is free again
  });

  it("lists one item per line, the id first", async () => {
    await ok(carol, "create_group c-group", /^group c-group created/);
    const out = await ok(alice, "list_groups", /^\S/);
    assert.deepEqual(
      out.map((l) => l.split(/\s+/)[0]),
      ["c-group", "team"],
    );
  });

  it("fails clearly after logout for every command that needs a login", async () => {
    await ok(bob, "logout", /^logged out bob/);
    for (const cmd of NEEDS_LOGIN) await fails(bob, cmd, NOT_LOGGED_IN);
    await ok(bob, "login bob pw-b", /^logged in as bob$/);
    assert.match((await groups(bob)).get("team")!, /owner=bob/);
  });

  it("quit and exit leave with code 0 and run nothing after them", async () => {
    for (const word of ["quit", "exit"]) {
      const p = await c.client(`leaver-${word}`);
      await ok(p, "help", /^commands:/);
      p.send(word);
      p.send("create_user should-not-exist pw");
      assert.equal(await p.waitExit(), 0, p.dump());
      assert.ok(!p.lines.some((l) => l.includes("should-not-exist")), p.dump());
    }
    // neither line after quit/exit ran: the user id is still free
    await ok(alice, "create_user should-not-exist pw", /^user should-not-exist created/);
  });

  it("runs a script in order and exits with code 0 at the end of input", async () => {
    const p = await c.client("script");
    for (const l of [
      "create_user erin pw-e",
      "login erin pw-e",
      "create_group erin-g",
      "list_groups",
      "logout",
    ]) {
      p.send(l);
    }
    p.endInput();
    assert.equal(await p.waitExit(), 0, p.dump());
    assert.deepEqual(
      p.lines.map((l) => l.split(/\s+/)[0]),
      // erin's own group first, then the others by id
      ["user", "logged", "group", "erin-g", "c-group", "team", "logged"],
      p.dump(),
    );
  });

  it("refuses to start on a port already in use, with a clear error", async () => {
    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((res) => holder.listen(port, "127.0.0.1", res));
    try {
      const p = await c.client("squatter", { port });
      const code = await p.waitExit();
      assert.notEqual(code, 0);
      const line = await p.expectErr(/^error: /);
      assert.match(line, new RegExp(`127\\.0\\.0\\.1:${port}.*already in use`));
    } finally {
      await new Promise((res) => holder.close(res));
    }
  });

  it("keeps every client and the tracker alive through all of the above", () => {
    for (const p of [tracker, alice, bob, carol]) assert.ok(p.alive, p.dump());
  });
});
