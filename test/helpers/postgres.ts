import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

export const PG_BIN = "/usr/lib/postgresql/15/bin";
/** Bounds initdb, pg_ctl and every connection in this helper. */
const COMMAND_TIMEOUT_MS = 60_000;
const PG_CTL_WAIT_S = "30";
const CONNECT_TIMEOUT_MS = 5_000;
/** A free port can be taken by someone else before the server binds it. */
const START_ATTEMPTS = 3;

export interface TestPostgres {
  /** postgres://… of a database no other caller uses. */
  url: string;
  stop(): Promise<void>;
}

/**
 * A PostgreSQL database for one test file: a fresh database on the server of
 * GS_TEST_PG_URL (set by .ci/run, which starts one cluster for the whole run),
 * or else a throwaway cluster of its own on 127.0.0.1.
 */
export function startPostgres(): Promise<TestPostgres> {
  const shared = process.env["GS_TEST_PG_URL"];
  return shared ? freshDatabase(shared) : throwawayCluster();
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: COMMAND_TIMEOUT_MS,
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A new, empty database on the server at `serverUrl`, dropped by stop(). */
export async function freshDatabase(serverUrl: string): Promise<TestPostgres> {
  const name = `gs_test_${randomBytes(6).toString("hex")}`;
  await withClient(serverUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    stop: async () => {
      await withClient(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** Runs a PostgreSQL binary as OS user postgres: the server refuses to run as root. */
async function asPostgres(command: string, args: string[]): Promise<void> {
  const [file, argv] =
    process.getuid?.() === 0
      ? ["runuser", ["-u", "postgres", "--", join(PG_BIN, command), ...args]]
      : [join(PG_BIN, command), args];
  await run(file, argv, { timeout: COMMAND_TIMEOUT_MS });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function throwawayCluster(): Promise<TestPostgres> {
  try {
    await access(join(PG_BIN, "initdb"));
  } catch {
    throw new Error(`PostgreSQL 15 is not installed (no ${PG_BIN}/initdb): apt-get install -y postgresql`);
  }
  const dir = await mkdtemp(join(tmpdir(), "gs-pg-"));
  const data = join(dir, "data");
  const stop = async () => {
    await asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "-t", PG_CTL_WAIT_S, "stop"]).catch(
      () => {},
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    if (process.getuid?.() === 0) {
      const { stdout: uid } = await run("id", ["-u", "postgres"], { timeout: COMMAND_TIMEOUT_MS });
      const { stdout: gid } = await run("id", ["-g", "postgres"], { timeout: COMMAND_TIMEOUT_MS });
      await chown(dir, Number(uid), Number(gid));
    }
    await asPostgres("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        // -l: without a log file the server would hold our stdout pipe open
        await asPostgres("pg_ctl", [
          "-D",
          data,
          "-o",
          `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
          "-l",
          join(dir, "server.log"),
          "-w",
          "-t",
          PG_CTL_WAIT_S,
          "start",
        ]);
        return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop };
      } catch (err) {
        if (attempt >= START_ATTEMPTS) throw err;
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
