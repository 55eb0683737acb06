import { chmodSync, closeSync, existsSync, openSync, statSync } from "node:fs";

/**
 * The SQLite file holds the ticket-signing key and the password hashes: owner only.
 * SQLite gives the -wal and -shm files the database file's mode, so creating the file
 * 0600 before SQLite opens it covers all three; an existing file readable by others is
 * tightened (with a warning, since something made it so).
 */
export function ownerOnly(file: string, warn: (line: string) => void): void {
  if (!existsSync(file)) {
    closeSync(openSync(file, "a", 0o600));
    return;
  }
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    if (!existsSync(f)) continue;
    const mode = statSync(f).mode & 0o777;
    if ((mode & 0o077) === 0) continue;
    chmodSync(f, 0o600);
    warn(`warning: ${f} was readable by others (mode ${mode.toString(8).padStart(4, "0")}): now 0600`);
  }
}
