/**
 * Attacks on a real tracker process (and two over one SQLite file), from many source
 * addresses of 127.0.0.0/8: password guessing, probing for users, locking a user out,
 * registration floods, and one account filling the store.
 */
import assert from "node:assert/strict";
import { scryptSync } from "node:crypto";
import { chmodSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { MAX_PIECES, PIECE_SIZE, SHA1_LENGTH, TRACKER_TIMEOUT_MS } from "../../src/shared/constants.js";
import { DEFAULT_QUOTAS } from "../../src/tracker/quotas.js";
import { GLOBAL } from "../../src/tracker/registrations.js";
import { openStore } from "../../src/tracker/store/index.js";
import { ADDRESS_FREE, USER_FREE, USER_MAX_BLOCK_MS } from "../../src/tracker/throttle.js";
import { Cluster, type Proc } from "../helpers/procs.js";
import { HttpFrom, pool, type RawAnswer, tally } from "../helpers/rawHttp.js";

/** Cluster.tracker passes our environment on: the store is the one we name. */
function dbArgs(c: Cluster): string[] {
  return ["--db", join(c.dir, "groupshare.db")];
}

function throttleRow(dbFile: string, key: string): { failures: number; blocked_until: number } | undefined {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    return db.prepare("SELECT failures, blocked_until FROM login_attempts WHERE throttle_key = ?").get(key) as
      | { failures: number; blocked_until: number }
      | undefined;
  } finally {
    db.close();
  }
}

/** Known/unknown pairs timed by the probing test. */
const TIMING_PAIRS = 9;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function codesOnly(answers: RawAnswer[], allowed: string[]): void {
  for (const a of answers) assert.ok(allowed.includes(a.code ?? ""), `unexpected ${JSON.stringify(a)}`);
}

describe("login guessing against two trackers over one SQLite file", () => {
  let c: Cluster;
  let dbFile: string;
  const clients: HttpFrom[] = [];
  /** A client from `addr` to tracker `no` (1 or 2). */
  const from = (addr: string, no = 1, sockets = 4) => {
    const h = new HttpFrom(addr, c.ports[no - 1]!, sockets);
    clients.push(h);
    return h;
  };

  before(async () => {
    c = await Cluster.create(2);
    dbFile = join(c.dir, "groupshare.db");
    await c.tracker(1, dbArgs(c));
    await c.tracker(2, dbArgs(c));
    const local = from("127.0.0.1");
    for (const u of ["bob", "carol", "erin", ...Array.from({ length: TIMING_PAIRS }, (_, i) => `k${i}`)]) {
      assert.equal((await local.call("POST", "/v1/users", { userId: u, password: `pw-${u}` })).status, 201);
    }
  });
  after(async () => {
    for (const h of clients) h.close();
    await c.close();
  });

  it("200 parallel wrong logins over both trackers: at most USER_FREE are hashed", async () => {
    const attackers = [from("127.0.1.1", 1, 50), from("127.0.1.2", 2, 50)];
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => attackers[i % 2]!.login("bob", `guess-${i}`)),
    );
    const t = tally(answers);
    codesOnly(answers, ["WRONG_PASSWORD", "TOO_MANY_ATTEMPTS", "BUSY"]);
    // WRONG_PASSWORD is only ever answered after the hash: these are the guesses evaluated.
    // After USER_FREE the blocks are 1 s, 2 s, 4 s...: a slow run may see one of them end.
    const seconds = (performance.now() - started) / 1000;
    const blocksEnded = Math.floor(Math.log2(seconds + 1));
    assert.ok((t.WRONG_PASSWORD ?? 0) <= USER_FREE + blocksEnded, `${JSON.stringify(t)} in ${seconds} s`);
    assert.ok((t.TOO_MANY_ATTEMPTS ?? 0) > 0, JSON.stringify(t));
    assert.equal(throttleRow(dbFile, "u:bob")?.failures, t.WRONG_PASSWORD, "each counted once, in the store");
  });

  it("an address blocked through one tracker is blocked on the other", async () => {
    const one = from("127.0.1.4", 1, 2);
    codesOnly(await pool(2, ADDRESS_FREE, (i) => one.login(`someone-${i}`, "x")), ["WRONG_PASSWORD"]);
    // the address's first block is a minute: far longer than these few requests
    assert.equal((await from("127.0.1.4", 2).login("carol", "pw-carol")).code, "TOO_MANY_ATTEMPTS");
    assert.equal((await from("127.0.1.5", 2).login("carol", "pw-carol")).status, 200);
  });

  it("10,000 failed logins for unknown names from 2,000 addresses do not free a blocked address", async () => {
    const blocked = from("127.0.2.1", 1, 2);
    const first = await pool(2, ADDRESS_FREE, (i) => blocked.login(`nobody-${i}`, "x"));
    codesOnly(first, ["WRONG_PASSWORD"]);
    assert.equal((await blocked.login("nobody-x", "x")).code, "TOO_MANY_ATTEMPTS");
    const before = throttleRow(dbFile, "a:127.0.2.1");
    assert.ok(before && before.blocked_until > Date.now(), JSON.stringify(before));

    // one tracker: a flood on both would take both cores from the tests running beside this one
    const addrs = Array.from({ length: 2_000 }, (_, i) => from(`127.1.${i >> 8}.${i & 255}`, 1, 1));
    const flood = await pool(100, 10_000, (i) => addrs[i % addrs.length]!.login(`ghost-${i}`, "x"));
    codesOnly(flood, ["WRONG_PASSWORD", "TOO_MANY_ATTEMPTS", "BUSY"]);

    assert.deepEqual(
      throttleRow(dbFile, "a:127.0.2.1"),
      before,
      `forgotten after ${JSON.stringify(tally(flood))}`,
    );
    if (Date.now() < before.blocked_until) {
      assert.equal((await blocked.login("nobody-y", "x")).code, "TOO_MANY_ATTEMPTS");
    }
  });

  it("an unknown user costs what a wrong password costs", async () => {
    // pairs measured back to back, in alternating order: the load of a shared box drifts
    // between pairs but hardly within one
    const ratios: number[] = [];
    const timed = async (userId: string, addr: string, no: number) => {
      const h = from(addr, no); // fresh addresses and users: no throttle in the way
      const t0 = performance.now();
      assert.equal((await h.login(userId, "wrong")).code, "WRONG_PASSWORD");
      return performance.now() - t0;
    };
    for (let i = 0; i < TIMING_PAIRS; i++) {
      const no = 1 + (i % 2);
      const known = () => timed(`k${i}`, `127.0.3.${i}`, no);
      const unknown = () => timed(`nosuch-${i}`, `127.0.3.${100 + i}`, no);
      let k: number;
      let u: number;
      if (i % 2) {
        k = await known();
        u = await unknown();
      } else {
        u = await unknown();
        k = await known();
      }
      ratios.push(u / k);
    }
    const r = median(ratios);
    assert.ok(r > 0.5 && r < 2, `unknown/known per pair: ${ratios.map((x) => x.toFixed(2)).join(" ")}`);
  });

  it("strangers guessing from other addresses do not lock the user out of an address she logged in from", async () => {
    const home = from("127.0.0.1");
    assert.equal((await home.login("erin", "pw-erin")).status, 200);
    let attacking = true;
    const strangers = Array.from({ length: 8 }, (_, i) => from(`127.0.4.${i + 1}`, 1 + (i % 2), 2));
    const attack = pool(8, 8, async (i) => {
      const answers: RawAnswer[] = [];
      while (attacking && answers.length < 500) answers.push(await strangers[i]!.login("erin", `guess-${i}`));
      return answers;
    });
    try {
      // wait until the strangers have her blocked for everyone else
      const elsewhere = from("127.0.4.100");
      for (let tries = 0; ; tries++) {
        assert.ok(tries < 100, "the strangers never got erin blocked");
        const r = await elsewhere.login("erin", "wrong");
        if (r.code === "TOO_MANY_ATTEMPTS") break;
      }
      // while the attack goes on, erin at home gets in
      assert.equal((await home.login("erin", "pw-erin")).status, 200);
      const row = throttleRow(dbFile, "u:erin")!;
      assert.ok(row.blocked_until - Date.now() <= USER_MAX_BLOCK_MS, JSON.stringify(row));
    } finally {
      attacking = false;
    }
    codesOnly((await attack).flat(), ["WRONG_PASSWORD", "TOO_MANY_ATTEMPTS", "BUSY"]);
  });
});

describe("an old password hash is upgraded at the next successful login", () => {
  let c: Cluster;
  let http: HttpFrom;
  const dbFile = () => join(c.dir, "groupshare.db");
  const hashOf = () => {
    const db = new Database(dbFile(), { readonly: true });
    try {
      return (
        db.prepare("SELECT password_hash FROM users WHERE user_id = 'old'").get() as { password_hash: string }
      ).password_hash;
    } finally {
      db.close();
    }
  };
  before(async () => {
    c = await Cluster.create(1);
    // a store seeded the way the tracker used to hash: N=2^14, r=8, p=1
    const store = await openStore(dbFile());
    const salt = Buffer.alloc(16, 7);
    const key = scryptSync("old-pw", salt, 32, { N: 16384, r: 8, p: 1 });
    await store.createUser(
      {
        userId: "old",
        passwordHash: `scrypt$16384$8$1$${salt.toString("base64")}$${key.toString("base64")}`,
      },
      Date.now(),
    );
    await store.close();
    await c.tracker(1, dbArgs(c));
    http = new HttpFrom("127.0.0.1", c.ports[0]!);
  });
  after(async () => {
    http.close();
    await c.close();
  });

  it("keeps the old hash after a wrong password, replaces it after the right one", async () => {
    const old = hashOf();
    assert.equal((await http.login("old", "nope")).code, "WRONG_PASSWORD");
    assert.equal(hashOf(), old);
    assert.equal((await http.login("old", "old-pw")).status, 200);
    assert.match(hashOf(), /^scrypt\$16384\$8\$5\$/);
    assert.equal((await http.login("old", "old-pw")).status, 200);
    assert.equal((await http.login("old", "nope")).code, "WRONG_PASSWORD");
  });
});

describe("registration flood", () => {
  let c: Cluster;
  let client: Proc;
  const flooders: HttpFrom[] = [];
  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1, dbArgs(c));
    client = await c.client("alice");
    await client.run("create_user alice pw-alice", /^user alice created/);
  });
  after(async () => {
    for (const h of flooders) h.close();
    await c.close();
  });

  it("a real login succeeds within the client's 3 s timeout while 8 addresses flood create_user", async () => {
    for (let i = 1; i <= 8; i++) flooders.push(new HttpFrom(`127.0.5.${i}`, c.ports[0]!, 40));
    let flooding = true;
    let n = 0;
    let answered = 0;
    let started!: () => void;
    const onAir = new Promise<void>((resolve) => {
      started = resolve;
    });
    const t0 = Date.now();
    const flood = pool(320, 320, async (i) => {
      const answers: RawAnswer[] = [];
      while (flooding) {
        answers.push(await flooders[i % 8]!.call("POST", "/v1/users", { userId: `f${n++}`, password: "pw" }));
        if (++answered === 500) started();
      }
      return answers;
    });
    try {
      await onAir;
      const asked = performance.now();
      await client.run("login alice pw-alice", /^(logged in as alice$|error:)/, 30_000);
      const took = performance.now() - asked;
      assert.equal(client.lines.at(-1), "logged in as alice", client.dump());
      // a real user's login is answered during the flood: within the 3 s that clients give other requests
      assert.ok(took < TRACKER_TIMEOUT_MS, `login took ${Math.round(took)} ms during the flood`);
    } finally {
      flooding = false;
    }
    const answers = (await flood).flat();
    const elapsed = Date.now() - t0;
    codesOnly(
      answers.filter((a) => a.status !== 201),
      ["RATE_LIMITED", "BUSY"],
    );
    const created = answers.filter((a) => a.status === 201).length;
    assert.ok(
      created <= GLOBAL.burst + Math.ceil(elapsed / GLOBAL.everyMs) + 1,
      `${created} users in ${elapsed} ms`,
    );
  });
});

describe("quotas: one account cannot fill the store", () => {
  let c: Cluster;
  let http: HttpFrom;
  let token: string;
  before(async () => {
    c = await Cluster.create(1);
    await c.tracker(1, dbArgs(c));
    http = new HttpFrom("127.0.0.1", c.ports[0]!, 8);
    assert.equal((await http.call("POST", "/v1/users", { userId: "hog", password: "pw" })).status, 201);
    token = ((await http.login("hog", "pw")).body as { token: string }).token;
  });
  after(async () => {
    http.close();
    await c.close();
  });

  it(`refuses group ${DEFAULT_QUOTAS.groups + 1} of one owner`, async () => {
    const answers = await pool(8, DEFAULT_QUOTAS.groups + 50, (i) =>
      http.call("POST", "/v1/groups", { groupId: `g${i}` }, token),
    );
    const t = tally(answers);
    assert.deepEqual(t, { 201: DEFAULT_QUOTAS.groups, QUOTA_EXCEEDED: 50 });
  });

  it("refuses made-up 64 GiB files past the piece-list quota, and still takes a known one again", async () => {
    const pieces = MAX_PIECES * SHA1_LENGTH;
    const fits = Math.floor(DEFAULT_QUOTAS.pieceBytes / pieces);
    const file = (i: number) => ({
      name: `big-${i}`,
      size: MAX_PIECES * PIECE_SIZE,
      sha1: i.toString(16).padStart(40, "0"),
      pieces: Buffer.alloc(pieces, i + 1).toString("base64"),
    });
    for (let i = 0; i < fits; i++) {
      assert.equal((await http.call("POST", "/v1/groups/g0/files", file(i), token)).status, 201);
    }
    assert.equal((await http.call("POST", "/v1/groups/g0/files", file(fits), token)).code, "QUOTA_EXCEEDED");
    assert.equal(
      (await http.call("POST", "/v1/groups/g1/files", file(fits + 1), token)).code,
      "QUOTA_EXCEEDED",
    );
    // the same content again is a new share, not a new registration
    assert.equal((await http.call("POST", "/v1/groups/g0/files", file(0), token)).status, 201);
  });
});

describe("the store file is owner-only", () => {
  /** Starts a tracker on the default groupshare.db beside tracker_info.txt. */
  async function withDefaultDb(
    fn: (c: Cluster, tracker: Proc, dbFile: string) => Promise<void>,
    prepare = (_: string) => {},
  ) {
    const c = await Cluster.create(1);
    const saved = process.env.GROUPSHARE_DB;
    delete process.env.GROUPSHARE_DB;
    try {
      const dbFile = join(c.dir, "groupshare.db");
      prepare(dbFile);
      const tracker = await c.tracker(1);
      await fn(c, tracker, dbFile);
    } finally {
      if (saved !== undefined) process.env.GROUPSHARE_DB = saved;
      await c.close();
    }
  }
  const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);

  it("creates groupshare.db, -wal and -shm 0600", async () => {
    await withDefaultDb(async (c, _tracker, dbFile) => {
      const http = new HttpFrom("127.0.0.1", c.ports[0]!);
      try {
        assert.equal((await http.call("POST", "/v1/users", { userId: "u", password: "pw" })).status, 201);
      } finally {
        http.close();
      }
      for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) assert.equal(mode(f), "600", f);
    });
  });

  it("tightens an existing 0644 groupshare.db at start, with a warning", async () => {
    await withDefaultDb(
      async (_c, tracker, dbFile) => {
        await tracker.expectErr(/warning: .*groupshare\.db was readable by others \(mode 0644\): now 0600/);
        for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) assert.equal(mode(f), "600", f);
      },
      (dbFile) => {
        writeFileSync(dbFile, "");
        chmodSync(dbFile, 0o644);
      },
    );
  });
});
