import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { FINGERPRINT_PATTERN } from "../../shared/x509.js";
import { KNOWN_TRACKERS_FILE, STATE_DIR_MODE, STATE_FILE_MODE } from "../state.js";

/** What a tracker whose certificate a system CA vouched for is recorded as, in place of a key. */
export const CA_VERIFIED = "ca";

/**
 * The key each tracker presented the first time this client met it, one line per
 * tracker: `IP:PORT sha256:…` (or `IP:PORT ca`). Written 0600 and replaced atomically;
 * read afresh on each lookup, so a line deleted by hand (the way to accept a tracker's
 * new key) takes effect at the next connection. Without a folder, kept in memory only.
 */
export class KnownTrackers {
  readonly path: string | undefined;
  readonly #memory = new Map<string, string>();

  constructor(stateDir?: string) {
    this.path = stateDir === undefined ? undefined : join(stateDir, KNOWN_TRACKERS_FILE);
  }

  #read(): Map<string, string> {
    if (!this.path) return this.#memory;
    let text = "";
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const known = new Map<string, string>();
    for (const raw of text.split("\n")) {
      const [addr, key] = raw.replace(/#.*/, "").trim().split(/\s+/);
      // a line damaged by hand is no key: that tracker is met afresh
      if (addr && key && (key === CA_VERIFIED || FINGERPRINT_PATTERN.test(key))) known.set(addr, key);
    }
    return known;
  }

  /** The recorded key (or CA_VERIFIED) of each tracker met, by `IP:PORT`. */
  all(): ReadonlyMap<string, string> {
    return new Map(this.#read());
  }

  record(addr: string, key: string): void {
    const known = this.#read();
    known.set(addr, key);
    if (!this.path) return;
    mkdirSync(dirname(this.path), { recursive: true, mode: STATE_DIR_MODE });
    const text = [...known].map(([a, k]) => `${a} ${k}\n`).join("");
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(
      tmp,
      `# trackers' keys as first seen; delete a line to accept that tracker's new key\n${text}`,
      {
        mode: STATE_FILE_MODE,
      },
    );
    chmodSync(tmp, STATE_FILE_MODE);
    renameSync(tmp, this.path);
  }
}
