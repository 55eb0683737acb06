import { GsError } from "../shared/errors.js";

/** How many of a thing (relay circuits, hole punches) may be open at once. */
export interface ShareLimits {
  /** that one member asked for, whichever sharers they are with */
  perRequester: number;
  /** with one sharer, whoever asked: what the tracker spends on one user */
  perSharer: number;
  /** that one member asked for with one sharer: well below perSharer, so others keep the rest */
  perPair: number;
  /** on this tracker */
  total: number;
}

/**
 * Counts what is open per requester, per sharer and per pair. A requester that
 * reaches its own caps is RATE_LIMITED; one who finds the sharer or the tracker
 * full is told BUSY (it did nothing wrong). Because one requester holds at most
 * perPair of a sharer's perSharer, asking without end costs the others nothing.
 */
export class FairShare {
  readonly #requesters = new Map<string, number>();
  readonly #sharers = new Map<string, number>();
  readonly #pairs = new Map<string, number>();
  #total = 0;

  constructor(
    readonly limits: ShareLimits,
    /** what is counted, for the messages: "relay circuits" */
    readonly what: string,
  ) {}

  /** The first limit one more for the pair would break, if any. */
  full(requester: string, sharer: string): "total" | "requester" | "pair" | "sharer" | undefined {
    const { perRequester, perSharer, perPair, total } = this.limits;
    if (this.#total >= total) return "total";
    if ((this.#requesters.get(requester) ?? 0) >= perRequester) return "requester";
    if ((this.#pairs.get(pair(requester, sharer)) ?? 0) >= perPair) return "pair";
    if ((this.#sharers.get(sharer) ?? 0) >= perSharer) return "sharer";
    return undefined;
  }

  /** Counts one more for the pair, or throws (nothing counted). */
  take(requester: string, sharer: string): void {
    const { perRequester, perSharer, perPair, total } = this.limits;
    switch (this.full(requester, sharer)) {
      case "total":
        throw new GsError("BUSY", `this tracker has ${total} ${this.what} open: try again later`);
      case "requester":
        throw new GsError("RATE_LIMITED", `you have ${perRequester} ${this.what} open: try again later`);
      case "pair":
        throw new GsError(
          "RATE_LIMITED",
          `you have ${perPair} ${this.what} open with '${sharer}': try again later`,
        );
      case "sharer":
        throw new GsError("BUSY", `'${sharer}' has ${perSharer} ${this.what} open: try again later`);
      case undefined:
        break;
    }
    add(this.#requesters, requester, 1);
    add(this.#sharers, sharer, 1);
    add(this.#pairs, pair(requester, sharer), 1);
    this.#total++;
  }

  /** One of the pair's has closed. */
  give(requester: string, sharer: string): void {
    add(this.#requesters, requester, -1);
    add(this.#sharers, sharer, -1);
    add(this.#pairs, pair(requester, sharer), -1);
    this.#total--;
  }
}

/** A user id never holds a newline (ID_PATTERN). */
const pair = (requester: string, sharer: string) => `${requester}\n${sharer}`;

function add(counts: Map<string, number>, key: string, n: number): void {
  const left = (counts.get(key) ?? 0) + n;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
