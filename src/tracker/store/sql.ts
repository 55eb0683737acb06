/**
 * The one driver interface SqlStore runs on. SQL text is written once with `?`
 * placeholders; the PostgreSQL driver rewrites them to $1..$n, so every rule
 * lives in one place for both databases.
 */

export type SqlParam = string | number | Buffer | null;

export type Dialect = "sqlite" | "postgres";

export interface SqlDb {
  readonly dialect: Dialect;
  all<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined>;
  run(sql: string, params?: readonly SqlParam[]): Promise<{ changes: number }>;
  /**
   * Runs `fn` atomically and serializably, retrying it (bounded) when the database
   * reports contention, so `fn` must have no effects outside `tx`. A transaction
   * inside `fn` (tx.transaction) joins the outer one.
   */
  transaction<T>(fn: (tx: SqlDb) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `?` → `$1..$n`, leaving quoted strings and identifiers alone. */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  let out = "";
  let quote: string | undefined;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === "?") {
      out += `$${++n}`;
      continue;
    }
    out += ch;
  }
  return out;
}

/** Bounded retries with a small random backoff: `attempt` counts from 1. */
export function backoff(attempt: number, maxMs = 50): Promise<void> {
  const ms = Math.random() * Math.min(maxMs, 5 * attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Serializes async critical sections: the next starts when the previous settles. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
