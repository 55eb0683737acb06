import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** What the client shares, kept across logout, login and restarts. */
export interface ShareState {
  groupId: string;
  name: string;
  path: string;
  sha1: string;
  size: number;
  /** the file's mtime when it was verified; a different one means it changed */
  mtimeMs: number;
}

export interface DownloadState {
  groupId: string;
  name: string;
  sha1: string;
  size: number;
  /** final path */
  target: string;
  /** partial file beside the target, renamed onto it when the whole file checks */
  partPath: string;
  /** verified pieces, base64 bitfield */
  have: string;
  /** partial file's mtime after our last write, to notice changes behind our back */
  mtimeMs: number;
}

export interface UserState {
  version: 1;
  shares: ShareState[];
  downloads: DownloadState[];
}

const empty = (): UserState => ({ version: 1, shares: [], downloads: [] });

/**
 * One JSON file per user under the state directory, replaced atomically
 * (write a temporary file, then rename) so a crash leaves the old or the new one.
 * Saves are coalesced: at most one write in flight, the latest state wins.
 */
export class StateFile {
  readonly path: string;
  #writing: Promise<void> | undefined;
  #pending: UserState | undefined;

  constructor(stateDir: string, userId: string) {
    this.path = join(stateDir, "users", `${userId}.json`);
  }

  async load(): Promise<UserState> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return empty();
      throw err;
    }
    try {
      const s = JSON.parse(text) as UserState;
      if (s.version !== 1 || !Array.isArray(s.shares) || !Array.isArray(s.downloads)) return empty();
      return s;
    } catch {
      return empty(); // a torn or hand-edited file: start afresh rather than refuse to log in
    }
  }

  save(state: UserState): Promise<void> {
    this.#pending = structuredClone(state);
    this.#writing ??= this.#drain().finally(() => {
      this.#writing = undefined;
    });
    return this.#writing;
  }

  async #drain(): Promise<void> {
    while (this.#pending) {
      const s = this.#pending;
      this.#pending = undefined;
      await mkdir(join(this.path, ".."), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(s, null, 1));
      await rename(tmp, this.path);
    }
  }
}
