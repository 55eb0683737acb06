import { randomBytes } from "node:crypto";
import { GsError } from "../shared/errors.js";
import { FairShare, type ShareLimits } from "./fairShare.js";

/**
 * Rendezvous waiting at once (each for at most a few seconds): a download punches
 * towards each of its 8 sharers at most once at a time; one downloader holds at most a
 * quarter of what a sharer answers.
 */
const PUNCH_LIMITS: ShareLimits = { perRequester: 8, perSharer: 16, perPair: 4, total: 256 };

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
  readonly #share = new FairShare(PUNCH_LIMITS, "hole punches");

  /** Opens a rendezvous; resolves with the sharer's address once it answers, rejects after `waitMs`. */
  open(
    downloader: string,
    sharer: string,
    downloaderAddr: string,
    waitMs: number,
  ): { id: string; met: Promise<string> } {
    this.#share.take(downloader, sharer);
    const id = randomBytes(16).toString("hex");
    const met = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#close(id);
        reject(new GsError("BUSY", `'${sharer}' did not answer the hole punch`));
      }, waitMs);
      this.#open.set(id, {
        downloader,
        sharer,
        downloaderAddr,
        meet: (addr) => {
          clearTimeout(timer);
          this.#close(id);
          resolve(addr);
        },
      });
    });
    return { id, met };
  }

  #close(id: string): void {
    const r = this.#open.get(id);
    if (!r) return;
    this.#open.delete(id);
    this.#share.give(r.downloader, r.sharer);
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
