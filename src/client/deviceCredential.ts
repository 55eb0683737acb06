import { constants } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { DEVICE_ID_PATTERN, DEVICE_SECRET_PATTERN, ID_PATTERN } from "../shared/constants.js";
import { type Infer, strict, validate } from "../shared/schema.js";
import { formatHostPort, type TrackerAddress } from "../shared/trackerInfo.js";
import { STATE_DIR_MODE, STATE_FILE_MODE } from "./state.js";

/** The file, in the state folder, of this client's remembered login (never the password). */
export const REMEMBERED_LOGIN_FILE = "remembered_login.json";
/** A remembered login is a few hundred bytes: a larger file is not one, and is not read whole. */
const MAX_FILE_BYTES = 16 * 1024;
/** Trackers one login remembers: far more than any tracker_info.txt lists. */
const MAX_TRACKERS = 64;

const fileSchema = strict(
  {
    version: { type: "integer", minimum: 1, maximum: 1 },
    userId: { type: "string", pattern: ID_PATTERN.source },
    deviceId: { type: "string", pattern: DEVICE_ID_PATTERN },
    secret: { type: "string", pattern: DEVICE_SECRET_PATTERN },
    trackers: {
      type: "array",
      maxItems: MAX_TRACKERS,
      items: { type: "string", minLength: 3, maxLength: 64 },
    },
  },
  ["version", "userId", "deviceId", "secret", "trackers"],
);

/**
 * A login this client may repeat by itself: the device credential a tracker answered
 * a login that asked to be remembered, and the trackers (IP:PORT, as tracker_info.txt
 * lists them) it was made at. It is sent to no other tracker: one that is not of the
 * issuing store could replay it there.
 */
export type RememberedLogin = Omit<Infer<typeof fileSchema>, "version">;

export type Remembered =
  | { state: "none" }
  | { state: "ready"; login: RememberedLogin }
  /** A file that is there but is not used: `problem` says why and what to do. */
  | { state: "refused"; problem: string };

/** The trackers as a remembered login names them. */
export function trackerNames(trackers: readonly TrackerAddress[]): string[] {
  return trackers.map((t) => formatHostPort(t.host, t.port));
}

/**
 * `<stateDir>/remembered_login.json`: written owner-only (0600, in a 0700 folder) and
 * replaced atomically; read only when it is a regular file of this user's that nobody
 * else can read or write. A looser file is refused, not tightened: its secret may have
 * been read already, so the user is told to revoke it.
 */
export class RememberedLoginFile {
  readonly path: string;

  constructor(stateDir: string) {
    this.path = join(stateDir, REMEMBERED_LOGIN_FILE);
  }

  /** The remembered login, if there is a usable one for these trackers (the client's, from tracker_info.txt). */
  async load(trackers: readonly TrackerAddress[]): Promise<Remembered> {
    let read: { text: string } | { problem: string } | undefined;
    try {
      read = await this.#read();
    } catch (err) {
      return { state: "refused", problem: `cannot read ${this.path}: ${(err as Error).message}` };
    }
    if (read === undefined) return { state: "none" };
    if ("problem" in read) return { state: "refused", problem: read.problem };
    let value: unknown;
    try {
      value = JSON.parse(read.text);
    } catch {
      value = undefined;
    }
    const damage = validate(fileSchema, value, REMEMBERED_LOGIN_FILE);
    if (damage) {
      return {
        state: "refused",
        problem: `${this.path} is damaged (${damage}): log in with the password again`,
      };
    }
    const { version: _, ...login } = value as Infer<typeof fileSchema>;
    const strangers = trackerNames(trackers).filter((t) => !login.trackers.includes(t));
    if (strangers.length > 0) {
      return {
        state: "refused",
        problem: `the remembered login of ${login.userId} was made at ${login.trackers.join(", ")}, not at ${strangers.join(", ")}: it is sent to no other tracker; log in with the password again`,
      };
    }
    return { state: "ready", login };
  }

  /**
   * Replaces the remembered login. The new file is made afresh (exclusive create, so no
   * file or link left at its temporary name is written through), 0600 whatever the
   * umask, flushed, then renamed over the old one.
   */
  async save(login: RememberedLogin): Promise<void> {
    const content = { version: 1, ...login };
    const bad = validate(fileSchema, content, "remembered login");
    if (bad) throw new Error(`not a remembered login: ${bad}`);
    await mkdir(join(this.path, ".."), { recursive: true, mode: STATE_DIR_MODE });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await rm(tmp, { force: true });
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, STATE_FILE_MODE);
    try {
      await fh.chmod(STATE_FILE_MODE);
      await fh.writeFile(`${JSON.stringify(content, null, 1)}\n`);
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await rename(tmp, this.path);
  }

  /** Deletes the remembered login (a logout that forgets this device); nothing to do when there is none. */
  async forget(): Promise<void> {
    await rm(this.path, { force: true });
  }

  /**
   * The file's text, undefined when there is no file, or why it is refused. Opened
   * without following a link (nor waiting on a FIFO); the checks are on what was
   * opened, so nothing can be swapped in between.
   */
  async #read(): Promise<{ text: string } | { problem: string } | undefined> {
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(this.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return undefined;
      if (code === "ELOOP") return { problem: `${this.path} is a symbolic link: not read` };
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return { problem: `${this.path} is not a regular file: not read` };
      const uid = process.getuid?.();
      if (uid !== undefined && st.uid !== uid) {
        return { problem: `${this.path} belongs to another user (uid ${st.uid}): not read` };
      }
      if ((st.mode & 0o077) !== 0) {
        return {
          problem: `${this.path} can be read or written by others (mode ${(st.mode & 0o777).toString(8)}): not used; revoke that device (its secret may have been read) and log in with the password again`,
        };
      }
      if (st.size > MAX_FILE_BYTES)
        return { problem: `${this.path} is over ${MAX_FILE_BYTES} bytes: not read` };
      // at most the bound, even if the file grows while it is read
      const buf = Buffer.alloc(MAX_FILE_BYTES);
      let got = 0;
      for (let n = -1; n !== 0 && got < buf.length; got += n) {
        n = (await fh.read(buf, got, buf.length - got, got)).bytesRead;
      }
      return { text: buf.subarray(0, got).toString("utf8") };
    } finally {
      await fh.close();
    }
  }
}
