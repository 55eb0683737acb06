/**
 * Two trackers on PostgreSQL: started from different folders, each with
 * its own copy of tracker_info.txt (as if on different hosts: no SQLite file to
 * share), one store chosen by --db, the other by GROUPSHARE_DB.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import pg from "pg";
import { startPostgres, type TestPostgres } from "../helpers/postgres.js";
import { Cluster, Proc, ROOT } from "../helpers/procs.js";
import { type FailoverRig, failoverScenario } from "./failover.scenario.js";

describe("two trackers on PostgreSQL from different folders: failover without a new login", () => {
  let pgdb: TestPostgres | undefined;
  let folders: string[] = [];

  async function pgRig(): Promise<FailoverRig> {
    pgdb = await startPostgres();
    const url = pgdb.url;
    const c = await Cluster.create(2);
    folders = [join(c.dir, "host1"), join(c.dir, "host2")];
    for (const f of folders) {
      await mkdir(f);
      await copyFile(c.infoPath, join(f, "tracker_info.txt"));
    }
    const reader = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    await reader.connect();
    return {
      dir: c.dir,
      ports: [c.ports[0]!, c.ports[1]!],
      async startTracker(no) {
        const folder = folders[no - 1]!;
        // tracker 1 is told by --db, tracker 2 by the environment variable
        const p =
          no === 1
            ? new Proc("tracker1", join(ROOT, "tracker"), ["tracker_info.txt", "1", "--db", url], {
                cwd: folder,
                env: { GROUPSHARE_DB: undefined },
              })
            : new Proc("tracker2", join(ROOT, "tracker"), ["tracker_info.txt", "2"], {
                cwd: folder,
                env: { GROUPSHARE_DB: url },
              });
        c.procs.push(p);
        const line = await p.expect(/listening on/);
        assert.match(line, /\(store: postgres:\/\//);
        return p;
      },
      startClient: (name) => c.client(name),
      async lastSeen() {
        const { rows } = await reader.query<{ user_id: string; last_seen: string | number }>(
          "SELECT user_id, last_seen FROM sessions",
        );
        return new Map(rows.map((r) => [r.user_id, Number(r.last_seen)]));
      },
      async close() {
        await reader.end().catch(() => {});
        await c.close();
      },
    };
  }

  failoverScenario(pgRig);

  it("wrote no SQLite file in either tracker's folder", async () => {
    for (const f of folders) {
      const names = await readdir(f);
      assert.deepEqual(names, ["tracker_info.txt"], `${f} holds ${names.join(", ")}`);
    }
  });

  after(async () => {
    await pgdb?.stop();
  });
});
