import { resolve } from "node:path";
import Database from "better-sqlite3";
import { backoff, Mutex, type SqlDb, type SqlParam } from "./sql.js";

/** How long a statement waits for another process's lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000;
/** Attempts at a transaction that keeps meeting SQLITE_BUSY (each after a full busy wait). */
const MAX_BUSY_ATTEMPTS = 4;

/**
 * One mutex per database file, shared by every connection of this process:
 * better-sqlite3 waits out busy_timeout synchronously, so a second connection of
 * the same process waiting for the lock would block the event loop that the
 * holder needs to finish its transaction. Other processes just wait.
 */
const fileMutexes = new Map<string, Mutex>();

function mutexFor(file: string): Mutex {
  const key = file === ":memory:" ? `:memory:${fileMutexes.size}` : resolve(file);
  let mutex = fileMutexes.get(key);
  if (!mutex) {
    mutex = new Mutex();
    fileMutexes.set(key, mutex);
  }
  return mutex;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"));
}

/** Statements run at once on the connection: the view a transaction's `fn` gets. */
class SqliteConn implements SqlDb {
  readonly dialect = "sqlite";
  readonly #statements = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {}

  #prepare(sql: string): Database.Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  async all<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return this.#prepare(sql).all(...params) as T[];
  }

  async get<T>(sql: string, params: readonly SqlParam[] = []): Promise<T | undefined> {
    return this.#prepare(sql).get(...params) as T | undefined;
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<{ changes: number }> {
    return { changes: this.#prepare(sql).run(...params).changes };
  }

  transaction<T>(fn: (tx: SqlDb) => Promise<T>): Promise<T> {
    return fn(this);
  }

  async close(): Promise<void> {
    throw new Error("close() inside a transaction");
  }
}

/** Opening attempts while another process holds the lock that switching to WAL needs. */
const OPEN_ATTEMPTS = 40;

/**
 * Opens the file in WAL mode. Two trackers starting at once on a new file both
 * switch it to WAL, and SQLite can answer SQLITE_BUSY to that without calling the
 * busy handler, so the switch is retried here, with a growing pause (startup only).
 */
function openWal(file: string): Database.Database {
  for (let attempt = 1; ; attempt++) {
    // busy_timeout first: every later statement waits for other processes' locks
    const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
      return db;
    } catch (err) {
      db.close();
      const code = (err as { code?: string }).code ?? "";
      if (!code.startsWith("SQLITE_BUSY") || attempt >= OPEN_ATTEMPTS) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(25 * attempt, 250));
    }
  }
}

class SqliteDb implements SqlDb {
  readonly dialect = "sqlite";
  readonly #conn: SqliteConn;
  readonly #mutex: Mutex;

  constructor(file: string) {
    this.#conn = new SqliteConn(openWal(file));
    this.#mutex = mutexFor(file);
  }

  // Outside a transaction too: the connection must not be used while one is open on it.
  all<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    return this.#mutex.run(() => this.#conn.all<T>(sql, params));
  }

  get<T>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined> {
    return this.#mutex.run(() => this.#conn.get<T>(sql, params));
  }

  run(sql: string, params?: readonly SqlParam[]): Promise<{ changes: number }> {
    return this.#mutex.run(() => this.#conn.run(sql, params));
  }

  transaction<T>(fn: (tx: SqlDb) => Promise<T>): Promise<T> {
    const db = this.#conn.db;
    return this.#mutex.run(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          // IMMEDIATE takes the write lock now, so writers of every process serialize
          db.exec("BEGIN IMMEDIATE");
          const result = await fn(this.#conn);
          db.exec("COMMIT");
          return result;
        } catch (err) {
          if (db.inTransaction) db.exec("ROLLBACK");
          if (!isBusy(err) || attempt >= MAX_BUSY_ATTEMPTS) throw err;
        }
        await backoff(attempt);
      }
    });
  }

  close(): Promise<void> {
    return this.#mutex.run(async () => {
      this.#conn.db.close();
    });
  }
}

/** A SQLite database file (created if missing) in WAL mode with foreign keys on. */
export function openSqliteDb(file: string): SqlDb {
  return new SqliteDb(file);
}
