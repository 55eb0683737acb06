import { randomBytes } from "node:crypto";
import { GsError } from "../shared/errors.js";

/** Rendezvous open on one tracker at once, and per user. */
const MAX_PUNCHES = 256;
const PUNCHES_PER_USER = 8;

interface Rendezvous {
  downloader: string;
  sharer: string;
  /** the downloader's address as this tracker saw the connection it asked on */
  downloaderAddr: string;
  meet: (sharerAddr: string) => void;
}

/**
 * Where two members behind routers learn each other's public address and port for
 * a TCP hole punch: each calls this tracker on a fresh connection from the port it
 * will punch from, so the address the tracker sees is the mapping its router made
 * for that port. The downloader's call waits until the sharer's has come; both then
 * get the other's address in the same moment and connect to each other at once.
 */
export class Punches {
  readonly #open = new Map<string, Rendezvous>();

  /** Opens a rendezvous; resolves with the sharer's address once it answers, rejects after `waitMs`. */
  open(
    downloader: string,
    sharer: string,
    downloaderAddr: string,
    waitMs: number,
  ): { id: string; met: Promise<string> } {
    if (this.#open.size >= MAX_PUNCHES)
      throw new GsError("BUSY", "too many hole punches at once: try again later");
    let mine = 0;
    for (const r of this.#open.values()) if (r.downloader === downloader || r.sharer === sharer) mine++;
    if (mine >= PUNCHES_PER_USER)
      throw new GsError("RATE_LIMITED", "too many hole punches at once: try again later");
    const id = randomBytes(16).toString("hex");
    const met = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#open.delete(id);
        reject(new GsError("BUSY", `'${sharer}' did not answer the hole punch`));
      }, waitMs);
      this.#open.set(id, {
        downloader,
        sharer,
        downloaderAddr,
        meet: (addr) => {
          clearTimeout(timer);
          this.#open.delete(id);
          resolve(addr);
        },
      });
    });
    return { id, met };
  }

  /** The sharer's answer from `sharerAddr`: the downloader's address, and the downloader hears ours. */
  answer(id: string, sharer: string, sharerAddr: string): string {
    const r = this.#open.get(id);
    if (!r || r.sharer !== sharer)
      throw new GsError("NOT_SHARING", "no such hole punch (it may have timed out)");
    r.meet(sharerAddr);
    return r.downloaderAddr;
  }
}
