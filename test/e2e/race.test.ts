/**
 * Two trackers racing on the same action give one success and one
 * clear error, on both stores. Clients whose tracker_info.txt lists tracker 1
 * first and clients that list tracker 2 first send the same commands at once;
 * then the same request is sent to both trackers at once over HTTP, with one
 * session (a user is logged in from one client at a time, so a client process
 * cannot race itself). Afterwards both trackers show the same, consistent store.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { Cluster, freePort, Proc, ROOT } from "../helpers/procs.js";
import { trackerCall } from "../helpers/tls.js";

/** Clients racing on the command line. */
const CLIENTS = 6;
/** Groups they race to create. */
const GROUPS = 8;
/** Copies of one request sent at once, alternating between the trackers. */
const COPIES = 4;

interface Answer {
  status: number;
  code?: string;
  body: Record<string, unknown>;
}

/** One HTTP call to one tracker: no failover here, the race needs both trackers at once. */
async function api(
  port: number,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<Answer> {
  const res = await trackerCall(port, {
    method,
    path,
    token,
    ...(method === "POST" && { body: body ?? {} }),
    timeoutMs: 20_000,
  });
  return { status: res.status, code: res.code, body: res.body as Record<string, unknown> };
}

/** Sends `cmd` then a sentinel, and returns every line `cmd` printed. No download runs, so nothing interleaves. */
async function collect(p: Proc, cmd: string): Promise<string[]> {
  const from = p.lines.length;
  p.send(cmd);
  p.send("show_downloads");
  await p.expect(/^\(no downloads\)$/);
  return p.lines.slice(from, p.lines.lastIndexOf("(no downloads)"));
}

function raceSuite(
  storeName: string,
  store: (dir: string) => Promise<{ args: string[]; stop(): Promise<void> }>,
): void {
  describe(`racing on two trackers (${storeName})`, () => {
    let c: Cluster;
    let stop: () => Promise<void> = async () => {};
    let trackers: Proc[] = [];
    const clients: Proc[] = [];
    const users = Array.from({ length: CLIENTS }, (_, i) => `u${i}`);
    const groups = Array.from({ length: GROUPS }, (_, i) => `r${i}`);
    const owners = new Map<string, string>();

    before(async () => {
      c = await Cluster.create(2);
      const s = await store(c.dir);
      stop = s.stop;
      trackers = await Promise.all([c.tracker(1, s.args), c.tracker(2, s.args)]);
      // the same two trackers, tracker 2 first: half the clients start there
      const reversed = join(c.dir, "tracker_info_2_first.txt");
      await writeFile(reversed, `127.0.0.1 ${c.ports[1]}\n127.0.0.1 ${c.ports[0]}\n`);
      for (const [i, user] of users.entries()) {
        const info = i % 2 === 0 ? c.infoPath : reversed;
        const port = await freePort();
        const p = new Proc(
          user,
          join(ROOT, "client"),
          [`127.0.0.1:${port}`, info, "--state-dir", join(c.dir, `state-${user}`)],
          { mergeStderr: true },
        );
        c.procs.push(p);
        clients.push(p);
      }
      // one after another: the race is in the tests below, and each account costs a
      // 160 ms scrypt that eight clients at once would queue past the client's timeout
      for (const [i, p] of clients.entries()) {
        await p.run(`create_user ${users[i]} pw`, /^user \S+ created/);
        await p.run(`login ${users[i]} pw`, /^logged in as/);
      }
    });

    after(async () => {
      await c?.close();
      await stop();
    });

    it("create_group: clients on both trackers race for the same groups; exactly one creates each", async () => {
      // round by round, so that in each round every client sends the same command at the same moment
      const answers: string[][] = clients.map(() => []);
      for (const g of groups) {
        for (const p of clients) p.send(`create_group ${g}`);
        await Promise.all(
          clients.map(async (p, i) => answers[i]!.push(await p.expect(/^(group \S+ created|error:)/))),
        );
      }
      for (const [k, g] of groups.entries()) {
        const winners = users.filter((_, i) => answers[i]![k] === `group ${g} created; you own it`);
        assert.equal(winners.length, 1, `${g}: ${answers.map((a) => a[k]).join(" | ")}`);
        owners.set(g, winners[0]!);
        for (const [i, a] of answers.entries()) {
          if (users[i] !== winners[0]) assert.match(a[k]!, new RegExp(`^error: group '${g}' already exists`));
        }
      }
      // both trackers (clients 0 and 1 start on different ones) tell the same story
      // (each lists its own groups first)
      for (const [i, p] of clients.slice(0, 2).entries()) {
        const sorted = [...groups].sort();
        const own = (g: string) => owners.get(g) === users[i];
        const expected = [...sorted.filter(own), ...sorted.filter((g) => !own(g))].map(
          (g) => `${g}  owner=${owners.get(g)}  members=1`,
        );
        const listed = (await collect(p, "list_groups")).map((l) => l.replace(/ {2}you=\w+$/, ""));
        assert.deepEqual(listed, expected);
      }
    });

    it("join_group: every client asks to join every group it does not own, all at once; each is recorded once", async () => {
      const asked = users.map((u) => groups.filter((g) => owners.get(g) !== u));
      for (const [i, p] of clients.entries()) for (const g of asked[i]!) p.send(`join_group ${g}`);
      await Promise.all(
        clients.map(async (p, i) => {
          for (const g of asked[i]!) {
            assert.equal(
              await p.expect(/^(asked to join|error:)/),
              `asked to join ${g}; the owner must accept the request`,
            );
          }
        }),
      );
      for (const g of groups) {
        const owner = owners.get(g)!;
        const lines = await collect(clients[users.indexOf(owner)]!, `list_requests ${g}`);
        const requesters = lines.map((l) => l.split(/\s+/)[0]).sort();
        assert.deepEqual(requesters, users.filter((u) => u !== owner).sort(), `${g}: ${lines.join(" | ")}`);
      }
    });

    it("the same create_group, join_group and accept_request sent to both trackers at once: one success each", async () => {
      const ports = c.ports;
      const portFor = (copy: number) => ports[copy % 2]!;
      const owner = "h_owner";
      const joiners = ["h_j0", "h_j1", "h_j2", "h_j3"];
      const tokens = new Map<string, string>();
      for (const [i, u] of [owner, ...joiners].entries()) {
        assert.equal(
          (await api(portFor(i), "POST", "/v1/users", undefined, { userId: u, password: "pw" })).status,
          201,
        );
        const login = await api(portFor(i + 1), "POST", "/v1/sessions", undefined, {
          userId: u,
          password: "pw",
          peerAddr: "127.0.0.1:9",
        });
        tokens.set(u, login.body.token as string);
      }
      /** `COPIES` copies of one call at once, half to each tracker; returns the answers. */
      const race = (method: string, path: string, user: string) =>
        Promise.all(
          Array.from({ length: COPIES }, (_, n) => api(portFor(n), method, path, tokens.get(user))),
        );
      const oneSuccess = (what: string, answers: Answer[], ok: number, losers: string[]) => {
        const wins = answers.filter((a) => a.status === ok);
        assert.equal(wins.length, 1, `${what}: ${JSON.stringify(answers.map((a) => [a.status, a.code]))}`);
        for (const a of answers)
          if (a.status !== ok) assert.ok(losers.includes(a.code ?? ""), `${what}: ${a.code}`);
      };

      const hgroups = ["h_g0", "h_g1", "h_g2"];
      // every user races for every group: one creates it, the others hear GROUP_EXISTS
      const creations = await Promise.all(
        hgroups.map((g) =>
          Promise.all(
            [owner, ...joiners].map((u, i) =>
              api(portFor(i), "POST", "/v1/groups", tokens.get(u), { groupId: g }),
            ),
          ),
        ),
      );
      const hOwners = new Map<string, string>();
      for (const [k, g] of hgroups.entries()) {
        oneSuccess(`create_group ${g}`, creations[k]!, 201, ["GROUP_EXISTS"]);
        hOwners.set(g, [owner, ...joiners][creations[k]!.findIndex((a) => a.status === 201)]!);
      }
      const everyone = [owner, ...joiners];
      const pairs = hgroups.flatMap((g) =>
        everyone.filter((u) => u !== hOwners.get(g)).map((u) => [g, u] as const),
      );

      // all pairs at once, each pair's request in COPIES copies on both trackers
      const joins = await Promise.all(pairs.map(([g, u]) => race("POST", `/v1/groups/${g}/requests`, u)));
      for (const [k, [g, u]] of pairs.entries())
        oneSuccess(`join_group ${g} by ${u}`, joins[k]!, 201, ["REQUEST_EXISTS"]);

      const accepts = await Promise.all(
        pairs.map(([g, u]) => race("POST", `/v1/groups/${g}/requests/${u}/accept`, hOwners.get(g)!)),
      );
      for (const [k, [g, u]] of pairs.entries()) {
        oneSuccess(`accept_request ${g} ${u}`, accepts[k]!, 200, ["ALREADY_MEMBER", "REQUEST_NOT_FOUND"]);
      }

      // consistent afterwards, and the same on both trackers: everyone a member once, no request left
      for (const port of ports) {
        const { body } = await api(port, "GET", "/v1/groups", tokens.get(owner));
        const listed = (body.groups as { groupId: string; owner: string; members: number }[]).filter((x) =>
          x.groupId.startsWith("h_"),
        );
        assert.deepEqual(
          listed.map((x) => [x.groupId, x.owner, x.members]),
          hgroups.map((g) => [g, hOwners.get(g), everyone.length]),
        );
        for (const g of hgroups) {
          const r = await api(port, "GET", `/v1/groups/${g}/requests`, tokens.get(hOwners.get(g)!));
          assert.deepEqual(r.body.requests, [], `${g} on port ${port}`);
        }
      }
      // and the command line agrees
      const lines = await collect(clients[0]!, "list_groups");
      for (const g of hgroups)
        assert.ok(lines.includes(`${g}  owner=${hOwners.get(g)}  members=${everyone.length}`));
    });

    it("no tracker failed under the concurrent writers", () => {
      for (const t of trackers) {
        assert.ok(t.alive, `${t.label} exited\n${t.dump()}`);
        assert.deepEqual(
          t.errLines.filter((l) => l.startsWith("error:")),
          [],
          t.dump(),
        );
      }
    });
  });
}

// named explicitly, so that a GROUPSHARE_DB in the environment cannot send it elsewhere
raceSuite("SQLite", async (dir) => ({ args: ["--db", join(dir, "groupshare.db")], stop: async () => {} }));

raceSuite("PostgreSQL", async () => {
  const db: TestPostgres = await startPostgres();
  return { args: ["--db", db.url], stop: () => db.stop() };
});
