import { fileIdOf } from "../../shared/fileId.js";
import type { Dialect, SqlDb } from "./sql.js";

/** Column types that differ between the dialects; everything else is shared SQL. */
export interface Types {
  dialect: Dialect;
  /** ms timestamps, sizes */
  int: string;
  blob: string;
  /** An ever-increasing key: the order rows were inserted in, even within one millisecond. */
  serial: string;
}

const TYPES: Record<Dialect, Types> = {
  sqlite: { dialect: "sqlite", int: "INTEGER", blob: "BLOB", serial: "INTEGER PRIMARY KEY AUTOINCREMENT" },
  postgres: {
    dialect: "postgres",
    int: "BIGINT",
    blob: "BYTEA",
    serial: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
  },
};

export interface Migration {
  version: number;
  /** The DDL for one dialect, run in order in the migration's transaction. */
  ddl(t: Types): string[];
  /** Fills new columns from old data, after the DDL, in the same transaction. */
  data?(tx: SqlDb): Promise<void>;
}

/** Append only: a released migration never changes; a new version fixes it. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    ddl: (t) => [
      `CREATE TABLE users (
        user_id TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at ${t.int} NOT NULL
      )`,
      // UNIQUE user_id: one client at a time per user
      `CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL UNIQUE REFERENCES users (user_id) ON DELETE CASCADE,
        peer_addr TEXT NOT NULL,
        created_at ${t.int} NOT NULL,
        last_seen ${t.int} NOT NULL
      )`,
      // not "groups": a keyword (window frames) in both dialects
      `CREATE TABLE user_groups (
        group_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL REFERENCES users (user_id),
        created_at ${t.int} NOT NULL
      )`,
      // seq orders members by joining, which decides the next owner
      `CREATE TABLE members (
        seq ${t.serial},
        group_id TEXT NOT NULL REFERENCES user_groups (group_id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        joined_at ${t.int} NOT NULL,
        UNIQUE (group_id, user_id)
      )`,
      `CREATE TABLE join_requests (
        seq ${t.serial},
        group_id TEXT NOT NULL REFERENCES user_groups (group_id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        requested_at ${t.int} NOT NULL,
        UNIQUE (group_id, user_id)
      )`,
      `CREATE TABLE files (
        group_id TEXT NOT NULL REFERENCES user_groups (group_id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        size ${t.int} NOT NULL,
        sha1 TEXT NOT NULL,
        pieces ${t.blob} NOT NULL,
        added_by TEXT NOT NULL,
        added_at ${t.int} NOT NULL,
        PRIMARY KEY (group_id, name)
      )`,
      // complete: 0 or 1 in both dialects (SQLite has no BOOLEAN)
      `CREATE TABLE shares (
        group_id TEXT NOT NULL,
        name TEXT NOT NULL,
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        complete INTEGER NOT NULL,
        since ${t.int} NOT NULL,
        PRIMARY KEY (group_id, name, user_id),
        FOREIGN KEY (group_id, name) REFERENCES files (group_id, name) ON DELETE CASCADE
      )`,
      "CREATE INDEX shares_by_user ON shares (user_id)",
      // one row: every tracker signs tickets with the same key
      `CREATE TABLE signing_keys (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        public_key TEXT NOT NULL,
        private_key TEXT NOT NULL
      )`,
    ],
  },
  {
    version: 2,
    ddl: () => [
      // fileIdOf(size, pieces), kept beside the pieces: list_files must not read 2.6 MB a file
      "ALTER TABLE files ADD COLUMN file_id TEXT",
      // what the client said its peer server is; peer_addr is its port at the connection's source IP
      "ALTER TABLE sessions ADD COLUMN claimed_addr TEXT",
      // idle sessions are found and deleted by last_seen
      "CREATE INDEX sessions_by_last_seen ON sessions (last_seen)",
    ],
    async data(tx) {
      const rows = await tx.all<{ group_id: string; name: string; size: number; pieces: Buffer }>(
        "SELECT group_id, name, size, pieces FROM files WHERE file_id IS NULL",
      );
      for (const r of rows) {
        await tx.run("UPDATE files SET file_id = ? WHERE group_id = ? AND name = ?", [
          fileIdOf(Number(r.size), Buffer.from(r.pieces)),
          r.group_id,
          r.name,
        ]);
      }
      await tx.run("UPDATE sessions SET claimed_addr = peer_addr WHERE claimed_addr IS NULL");
    },
  },
  {
    version: 3,
    ddl: (t) => [
      // the login throttle, shared by every tracker: see tracker/throttle.ts
      `CREATE TABLE login_attempts (
        throttle_key TEXT PRIMARY KEY,
        failures ${t.int} NOT NULL,
        blocked_until ${t.int} NOT NULL,
        forget_at ${t.int} NOT NULL
      )`,
      "CREATE INDEX login_attempts_by_forget_at ON login_attempts (forget_at)",
      `CREATE TABLE trusted_addresses (
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        addr TEXT NOT NULL,
        last_success ${t.int} NOT NULL,
        PRIMARY KEY (user_id, addr)
      )`,
      // quotas count what a user owns and registered
      "CREATE INDEX user_groups_by_owner ON user_groups (owner)",
      "CREATE INDEX files_by_adder ON files (added_by)",
    ],
  },
  {
    version: 4,
    ddl: () => [
      // one row: every tracker presents the same TLS key and certificate
      `CREATE TABLE tls_identity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        certificate TEXT NOT NULL,
        private_key TEXT NOT NULL
      )`,
      // the key the client's peer server proves (SPKI, base64): handed out with its address, named in tickets
      "ALTER TABLE sessions ADD COLUMN peer_key TEXT",
    ],
  },
  {
    version: 5,
    ddl: (t) => [
      // what one tracker asks of a client logged in at another (dial a downloader, meet it
      // at a relay): the client's long poll reads its own, oldest first, and they expire
      `CREATE TABLE signals (
        seq ${t.serial},
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        payload TEXT NOT NULL,
        expires_at ${t.int} NOT NULL
      )`,
      "CREATE INDEX signals_by_user ON signals (user_id, seq)",
      "CREATE INDEX signals_by_expiry ON signals (expires_at)",
    ],
  },
  {
    version: 6,
    ddl: (t) => [
      // remembered logins: a device logs its user in with a secret of which only the SHA-256 is kept
      `CREATE TABLE devices (
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at ${t.int} NOT NULL,
        last_used_at ${t.int} NOT NULL,
        PRIMARY KEY (user_id, device_id)
      )`,
    ],
  },
];

/** Any constant: the key every tracker takes before migrating a PostgreSQL database. */
const PG_MIGRATION_LOCK = 0x67736d67; // "gsmg"

/**
 * Brings the schema up to date in one transaction, safe when several trackers
 * start at once: SQLite's BEGIN IMMEDIATE or PostgreSQL's advisory lock lets one
 * migrate while the others wait, then find nothing left to do. Returns the
 * versions applied.
 */
export async function migrate(db: SqlDb, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  return db.transaction(async (tx) => {
    if (tx.dialect === "postgres") {
      // A SERIALIZABLE snapshot would be taken before the lock wait and miss the
      // winner's tables; READ COMMITTED reads afresh once the lock is ours.
      await tx.run("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
      await tx.run(`SELECT pg_advisory_xact_lock(${PG_MIGRATION_LOCK})`);
    }
    await tx.run(
      `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at ${TYPES[tx.dialect].int} NOT NULL)`,
    );
    const rows = await tx.all<{ version: number }>("SELECT version FROM schema_migrations");
    const done = new Set(rows.map((r) => r.version));
    const known = Math.max(0, ...migrations.map((m) => m.version));
    const newest = Math.max(0, ...done);
    if (newest > known) {
      throw new Error(
        `the database's schema (version ${newest}) is newer than this tracker's (${known}): upgrade it`,
      );
    }
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      for (const ddl of m.ddl(TYPES[tx.dialect])) await tx.run(ddl);
      await m.data?.(tx);
      await tx.run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", [
        m.version,
        Date.now(),
      ]);
      applied.push(m.version);
    }
    return applied;
  });
}
