import { chmod, lstat, mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LimitSettings } from "./limits/limits.js";
import type { FileIdentity } from "./serving/shares.js";

/** The state folder and its sub-folders: the owner's only (they hold what you share and where). */
export const STATE_DIR_MODE = 0o700;
/** Every file the client writes in the state folder (state files, the shell's history, keys). */
export const STATE_FILE_MODE = 0o600;
/** The file, in the state folder, of the trackers' keys as first met (OpenSSH's known_hosts). */
export const KNOWN_TRACKERS_FILE = "known_trackers";
/** The file, in the state folder, of this client's own private key (peerIdentity.ts). */
export const PEER_KEY_FILE = "peer_key.pem";
/** The files, in the state folder, of the web UI's token and HTTPS key (web/token.ts). */
export const WEB_TOKEN_FILE = "web_token";
export const WEB_KEY_FILE = "web_key.pem";

/**
 * Creates the state folder, or tightens an existing one: the folder and users/
 * become 0700, and the files the client writes there (history, known_trackers, peer_key.pem, web_token, web_key.pem, users/*.json and
 * their temporary files) 0600, whatever the umask or an older client left. Only
 * those: a state folder given on the command line may be a folder with other files
 * (a home directory). Returns what could not be tightened, for a warning.
 */
export async function prepareStateDir(dir: string): Promise<string[]> {
  await mkdir(join(dir, "users"), { recursive: true, mode: STATE_DIR_MODE });
  const problems: string[] = [];
  const tighten = async (path: string, mode: number) => {
    try {
      const st = await lstat(path);
      // symlinks are left alone: chmod would follow them
      if (!st.isSymbolicLink() && (st.mode & 0o777) !== mode) await chmod(path, mode);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") problems.push(`${path}: ${code}`);
    }
  };
  await tighten(dir, STATE_DIR_MODE);
  await tighten(join(dir, "users"), STATE_DIR_MODE);
  for (const file of ["history", KNOWN_TRACKERS_FILE, PEER_KEY_FILE, WEB_TOKEN_FILE, WEB_KEY_FILE])
    await tighten(join(dir, file), STATE_FILE_MODE);
  for (const name of await readdir(join(dir, "users"))) {
    if (name.endsWith(".json") || name.endsWith(".tmp"))
      await tighten(join(dir, "users", name), STATE_FILE_MODE);
  }
  return problems;
}

/**
 * The text of `<stateDir>/<name>`, a secret: made with `make()` at first use, owner-only
 * (0600) whatever the umask. Two clients starting on one state folder at once keep one.
 */
export async function ownerOnlyFile(stateDir: string, name: string, make: () => string): Promise<string> {
  const path = join(stateDir, name);
  await mkdir(stateDir, { recursive: true, mode: STATE_DIR_MODE });
  await writeFile(path, make(), { mode: STATE_FILE_MODE, flag: "wx" }).catch((err) => {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  });
  await chmod(path, STATE_FILE_MODE);
  return await readFile(path, "utf8");
}

/** What the client shares, kept across logout, login and restarts. */
export interface ShareState {
  groupId: string;
  name: string;
  path: string;
  sha1: string;
  /** fileIdOf(size, pieces); absent in files from before file ids (then the file is hashed again) */
  fileId?: string;
  size: number;
  /** the file's mtime when it was verified; a different one means it changed */
  mtimeMs: number;
  /** lifetime totals: bytes served to peers, and bytes downloaded to make it (absent: 0) */
  uploadedBytes?: number;
  downloadedBytes?: number;
}

export interface DownloadState {
  groupId: string;
  name: string;
  sha1: string;
  /** fileIdOf(size, pieces) once known; a resume only trusts a partial file of the same id */
  fileId?: string;
  size: number;
  /** final path */
  target: string;
  /** partial file beside the target, renamed onto it when the whole file checks */
  partPath: string;
  /** verified pieces, base64 bitfield */
  have: string;
  /** partial file's mtime after our last write, to notice changes behind our back */
  mtimeMs: number;
  /**
   * the partial file's device and inode once created: a file found at partPath at
   * resume is used only if it is this one (absent in states saved by older clients)
   */
  partIdentity?: FileIdentity;
  /** paused by the user: taken up again paused at login (absent: not paused) */
  paused?: boolean;
  /** lifetime totals: verified bytes received, and bytes served from its partial file (absent: 0) */
  uploadedBytes?: number;
  downloadedBytes?: number;
}

export interface UserState {
  version: 1;
  shares: ShareState[];
  /** downloads in the order of the queue */
  downloads: DownloadState[];
  /** the queue's active places (absent: DEFAULT_MAX_ACTIVE) */
  maxActive?: number;
  /** the speed limits set (SpeedLimits.settings(); a limit absent is none) */
  limits?: LimitSettings;
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
      await mkdir(join(this.path, ".."), { recursive: true, mode: STATE_DIR_MODE });
      const tmp = `${this.path}.${process.pid}.tmp`;
      // created 0600 (the mode applies at creation; a leftover temporary file is tightened first)
      await writeFile(tmp, JSON.stringify(s, null, 1), { mode: STATE_FILE_MODE });
      await chmod(tmp, STATE_FILE_MODE);
      await rename(tmp, this.path);
    }
  }
}

/** Every user's unfinished downloads in the state folder: what `show_downloads` lists before login. */
export async function savedDownloads(stateDir: string): Promise<{ userId: string; d: DownloadState }[]> {
  const names = await readdir(join(stateDir, "users")).catch(() => [] as string[]);
  const out: { userId: string; d: DownloadState }[] = [];
  for (const name of names.filter((n) => n.endsWith(".json")).sort()) {
    const userId = name.slice(0, -".json".length);
    for (const d of (await new StateFile(stateDir, userId).load()).downloads) out.push({ userId, d });
  }
  return out;
}
