/**
 * Two trackers on SQLite: started from one tracker_info.txt, they share the
 * groupshare.db beside it with no configuration; clients fail over between them.
 */
import assert from "node:assert/strict";
import { access } from "node:fs/promises";
import { join } from "node:path";
import type { Server, Socket } from "node:net";
import { createServer } from "node:tls";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { Cluster } from "../helpers/procs.js";
import { type FailoverRig, failoverScenario } from "./failover.scenario.js";
import { TLS_VERSION } from "../../src/shared/tlsPolicy.js";

async function sqliteRig(): Promise<FailoverRig> {
  const c = await Cluster.create(2);
  const dbFile = join(c.dir, "groupshare.db");
  let reader: Database.Database | undefined;
  return {
    dir: c.dir,
    ports: [c.ports[0]!, c.ports[1]!],
    // no --db and no GROUPSHARE_DB: the default file beside tracker_info.txt
    startTracker: (no) => withoutDbEnv(() => c.tracker(no)),
    startClient: (name) => c.client(name),
    async lastSeen() {
      reader ??= new Database(dbFile, { readonly: true, fileMustExist: true });
      const rows = reader.prepare("SELECT user_id, last_seen FROM sessions").all() as {
        user_id: string;
        last_seen: number;
      }[];
      return new Map(rows.map((r) => [r.user_id, r.last_seen]));
    },
    async close() {
      reader?.close();
      await c.close();
    },
  };
}

/** Cluster.tracker passes our environment on: make sure it names no other store. */
async function withoutDbEnv<T>(fn: () => Promise<T>): Promise<T> {
  const saved = process.env.GROUPSHARE_DB;
  delete process.env.GROUPSHARE_DB;
  try {
    return await fn();
  } finally {
    if (saved !== undefined) process.env.GROUPSHARE_DB = saved;
  }
}

describe("two trackers over one SQLite file: failover without a new login", () => {
  let dir = "";
  failoverScenario(async () => {
    const rig = await sqliteRig();
    dir = rig.dir;
    return rig;
  });

  it("kept the shared state in groupshare.db beside tracker_info.txt", async () => {
    await access(join(dir, "groupshare.db"));
  });
});

describe("a tracker that dies or stalls in the middle of its answer: the client moves on", () => {
  let c: Cluster;
  let fake: Server;
  let mode: "truncate" | "stall" = "truncate";
  const stalled: Socket[] = [];
  before(async () => {
    c = await Cluster.create(2);
    await withoutDbEnv(() => c.tracker(2));
    // tracker 1's port: a tracker of the store (its key: clients require one key of every
    // tracker of tracker_info.txt) that sends the headers of an answer, then cuts it short or goes quiet
    const db = new Database(join(c.dir, "groupshare.db"), { readonly: true, fileMustExist: true });
    const id = db.prepare("SELECT certificate, private_key FROM tls_identity").get() as {
      certificate: string;
      private_key: string;
    };
    db.close();
    fake = createServer({ cert: id.certificate, key: id.private_key, ...TLS_VERSION }, (socket) => {
      let head = "";
      socket.on("data", (d) => {
        head += d.toString("latin1");
        if (!head.includes("\r\n\r\n")) return;
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"tok');
        if (mode === "truncate") socket.destroy();
        else stalled.push(socket);
      });
      socket.on("error", () => {});
    });
    await new Promise<void>((res) => fake.listen(c.ports[0], "127.0.0.1", () => res()));
  });
  after(async () => {
    await c.close();
    for (const s of stalled) s.destroy();
    await new Promise((res) => fake.close(res));
  });

  it("an answer cut short is a failed tracker, not a failed command", async () => {
    const carol = await c.client("carol");
    assert.match(await carol.run("create_user carol pw", /^(user carol|error:)/), /^user carol created/);
    assert.match(await carol.run("login carol pw", /^(logged in|error:)/), /^logged in as carol/);
  });

  it("an answer that stops half-way is timed out, and the next tracker answers", async () => {
    mode = "stall";
    // a new client starts with the first tracker of the list: the stalling one
    const dave = await c.client("dave");
    assert.match(await dave.run("create_user dave pw", /^(user dave|error:)/), /^user dave created/);
    assert.equal(stalled.length, 1, "the request did not reach the stalling tracker");
    assert.match(await dave.run("login dave pw", /^(logged in|error:)/), /^logged in as dave/);
  });
});
