import { GsError } from "../shared/errors.js";
import { Mutex } from "./store/sql.js";
import type { FileMeta, Store } from "./store/store.js";

/**
 * What one account may put in the store. One account made 150,000 groups in 36 s and
 * grew the store by 107 MB with 40 made-up 64 GiB files (2.6 MB of piece hashes each).
 * 1,000 groups keep list_groups of one user's groups small; 32 MiB of piece lists is
 * 12 files of 64 GiB, or 880 GB of registered content.
 */
export interface Quotas {
  groups: number;
  files: number;
  pieceBytes: number;
}

export const DEFAULT_QUOTAS: Quotas = { groups: 1_000, files: 10_000, pieceBytes: 32 * 1024 * 1024 };

/**
 * Checks a user's usage before an action that adds to it. The check and the action of one
 * user run one at a time on this tracker, so parallel requests cannot all pass the check
 * at once; trackers racing on one store can each overshoot by the one action in flight.
 */
export class QuotaGuard {
  readonly #store: Store;
  readonly #quotas: Quotas;
  readonly #locks = new Map<string, { mutex: Mutex; users: number }>();

  constructor(store: Store, quotas: Quotas = DEFAULT_QUOTAS) {
    this.#store = store;
    this.#quotas = quotas;
  }

  createGroup<T>(userId: string, action: () => Promise<T>): Promise<T> {
    return this.#serialized(userId, async () => {
      const usage = await this.#store.usage(userId);
      if (usage.groups >= this.#quotas.groups) {
        throw new GsError("QUOTA_EXCEEDED", `you own ${usage.groups} groups, the most one user may own`);
      }
      return action();
    });
  }

  /** A file already registered with the same content (a new sharer) adds nothing and passes. */
  addFile<T>(userId: string, groupId: string, file: FileMeta, action: () => Promise<T>): Promise<T> {
    return this.#serialized(userId, async () => {
      const usage = await this.#store.usage(userId);
      const over =
        usage.files + 1 > this.#quotas.files
          ? `you registered ${usage.files} files, the most one user may`
          : usage.pieceBytes + file.pieces.length > this.#quotas.pieceBytes
            ? `your files' piece lists would take ${usage.pieceBytes + file.pieces.length} bytes, over ${this.#quotas.pieceBytes}`
            : undefined;
      if (over && !(await this.#registered(userId, groupId, file))) throw new GsError("QUOTA_EXCEEDED", over);
      return action();
    });
  }

  async #registered(userId: string, groupId: string, file: FileMeta): Promise<boolean> {
    try {
      const f = await this.#store.getFile(groupId, file.name, userId);
      return f.sha1 === file.sha1 && f.size === file.size && f.pieces.equals(file.pieces);
    } catch (err) {
      if (err instanceof GsError) return false; // not there, or not readable: a new file
      throw err;
    }
  }

  async #serialized<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    let lock = this.#locks.get(userId);
    if (!lock) {
      lock = { mutex: new Mutex(), users: 0 };
      this.#locks.set(userId, lock);
    }
    lock.users++;
    try {
      return await lock.mutex.run(fn);
    } finally {
      if (--lock.users === 0) this.#locks.delete(userId);
    }
  }
}
