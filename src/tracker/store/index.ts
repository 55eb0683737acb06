import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { ownerOnly } from "./fileMode.js";
import { migrate } from "./migrations.js";
import { openPostgresDb } from "./postgres.js";
import type { SqlDb } from "./sql.js";
import { openSqliteDb } from "./sqlite.js";
import { SqlStore } from "./sqlStore.js";
import type { Store } from "./store.js";

export type { SqlDb } from "./sql.js";
export { SqlStore } from "./sqlStore.js";
export type * from "./store.js";

/** `postgres://…` or `postgresql://…` is a PostgreSQL server; anything else a SQLite file path. */
export function isPostgresSpec(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

export interface OpenOptions {
  /** Told when an existing SQLite file had to be made owner-only. */
  warn?: (line: string) => void;
}

/** The driver for `spec`, its schema not yet migrated. A SQLite file is owner-only (0600). */
export async function openDb(spec: string, { warn = () => {} }: OpenOptions = {}): Promise<SqlDb> {
  if (isPostgresSpec(spec)) return openPostgresDb(spec);
  if (spec !== ":memory:") {
    mkdirSync(dirname(spec), { recursive: true, mode: 0o700 });
    ownerOnly(spec, warn);
  }
  return openSqliteDb(spec);
}

/** The store for `spec` (see openDb), with its schema brought up to date. */
export async function openStore(spec: string, options: OpenOptions = {}): Promise<Store> {
  const db = await openDb(spec, options);
  try {
    await migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return new SqlStore(db);
}
