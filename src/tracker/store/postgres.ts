import pg from "pg";
import { backoff, numberPlaceholders, type SqlDb, type SqlParam } from "./sql.js";

export interface PostgresOptions {
  /** Connections in the pool. */
  max?: number;
  /** How long to wait for a connection before failing. */
  connectionTimeoutMs?: number;
}

const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECTION_TIMEOUT_MS = 5_000;
/** Attempts at a transaction that keeps losing serialization races. */
const MAX_TX_ATTEMPTS = 20;

const INT8_OID = 20;

/**
 * Retried: serialization failure, deadlock, and unique violation, which under
 * SERIALIZABLE is how a race between "check, then insert" transactions can
 * surface (PostgreSQL docs, 13.2.3); the retry sees the winner and raises the GsError.
 */
const RETRYABLE = new Set(["40001", "40P01", "23505"]);

function isRetryable(err: unknown): boolean {
  return RETRYABLE.has((err as { code?: string }).code ?? "");
}

/**
 * A named query for each DML text: pg prepares it once per connection and then
 * only binds and executes it, so the server skips parsing and planning on the hot
 * paths (a list_files is four of them). Other statements (DDL, SET) stay unnamed.
 */
const prepared = new Map<string, pg.QueryConfig>();

function queryFor(sql: string, params: readonly SqlParam[]): pg.QueryConfig {
  let q = prepared.get(sql);
  if (!q) {
    const text = numberPlaceholders(sql);
    q = /^\s*(SELECT|INSERT|UPDATE|DELETE)\b/i.test(sql) ? { name: `gs${prepared.size}`, text } : { text };
    prepared.set(sql, q);
  }
  return { ...q, values: params as SqlParam[] };
}

/** Statements on one client: the pool for plain calls, a checked-out client in a transaction. */
class PgConn implements SqlDb {
  readonly dialect = "postgres";

  constructor(readonly queryable: pg.Pool | pg.PoolClient) {}

  async all<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    const result = await this.queryable.query(queryFor(sql, params));
    return result.rows as T[];
  }

  async get<T>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<{ changes: number }> {
    const result = await this.queryable.query(queryFor(sql, params));
    return { changes: result.rowCount ?? 0 };
  }

  transaction<T>(fn: (tx: SqlDb) => Promise<T>): Promise<T> {
    return fn(this);
  }

  async close(): Promise<void> {
    throw new Error("close() inside a transaction");
  }
}

class PgDb extends PgConn {
  constructor(readonly pool: pg.Pool) {
    super(pool);
  }

  override async transaction<T>(fn: (tx: SqlDb) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
        const result = await fn(new PgConn(client));
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
        if (!isRetryable(err) || attempt >= MAX_TX_ATTEMPTS) throw err;
      } finally {
        // a client whose ROLLBACK failed is in an unknown state: the pool drops it
        client.release(broken);
      }
      await backoff(attempt);
    }
  }

  override close(): Promise<void> {
    return this.pool.end();
  }
}

/** A pool on `url` whose BIGINTs come back as numbers (ms timestamps, sizes, counts). */
export async function openPostgresDb(url: string, options: PostgresOptions = {}): Promise<SqlDb> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
    // per pool, not pg.types.setTypeParser: other pools in the process keep their parsers
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === INT8_OID && format !== "binary"
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // an idle client's error (server restart) is reported to the next query, not thrown here
  pool.on("error", () => {});
  const db = new PgDb(pool);
  try {
    await db.get("SELECT 1");
  } catch (err) {
    await pool.end();
    throw err;
  }
  return db;
}
