import { Bitfield } from "../../shared/bitfield.js";

/** Random picks before rarest-first: BitTorrent's "random first piece", so we soon have something to serve. */
export const DEFAULT_RANDOM_FIRST = 4;
/** End-game: requesters of one piece at most; each extra one doubles the upload spent on it. */
export const DEFAULT_MAX_DUPLICATES = 2;
/** Pieces an in-order pick examines before it falls back to a random one of the level. */
const IN_ORDER_PROBES = 64;

export interface PickerOptions {
  /** The first N fresh picks are random, not rarest-first (default 4). */
  randomFirst?: number;
  /** End-game: at most this many peers requesting the same piece (default 2). */
  maxDuplicates?: number;
  /** Injectable for tests; returns [0, 1) like Math.random. */
  random?: () => number;
}

interface PeerState {
  readonly bits: Bitfield;
  readonly inFlight: Set<number>;
  /** perLevel[a]: pooled pieces of availability a that this peer has, so pick skips levels it can't serve. */
  readonly perLevel: number[];
  /** Pieces this peer has that we lack (in the pool or not): interesting(). */
  wanted: number;
}

/**
 * Decides which piece to request from which peer. Pure bookkeeping: the caller
 * owns sockets, timers and disk, and reports back (received, release, failed, removePeer).
 *
 * The pool (missing pieces nobody is requesting) is bucketed by availability,
 * and each bucket is kept in random order, so a rarest-first pick probes only
 * the lowest level this peer can serve, from a random start.
 *
 * Pieces every connected peer has, when there are two peers or more, are picked
 * in file order instead: rarity says nothing about them, and in order the whole
 * file's SHA1 can follow the pieces as they arrive instead of reading the file
 * back after the last one (partFile.ts). With a single peer (a flash crowd's first
 * moments, when the seeder is all anyone knows) picks stay random, so that
 * downloaders do not all ask the seeder for the same pieces.
 */
export class PiecePicker {
  /** Our pieces. The picker owns this copy: a bit set elsewhere would skip received()'s cleanup. */
  readonly have: Bitfield;
  readonly #randomFirst: number;
  readonly #maxDuplicates: number;
  readonly #random: () => number;

  readonly #peers = new Map<string, PeerState>();
  /** How many connected peers have each piece. */
  readonly #avail: Uint32Array;
  /** The pool: #levels[a] holds the pooled pieces that a peers have. */
  readonly #levels: number[][] = [[]];
  /** Index of a piece in its level, -1 when not pooled (we have it, or it is in flight). */
  readonly #pos: Int32Array;
  /** Pieces in flight and who is requesting each; we lack every one of them. */
  readonly #requesters = new Map<number, Set<string>>();
  #freshPicks = 0;
  #probes = 0;
  /** In-order picks look from here on: past the last one, or back at a request that ended without its piece. */
  #orderFrom = 0;

  constructor(
    readonly pieceCount: number,
    have: Bitfield,
    options: PickerOptions = {},
  ) {
    if (!Number.isInteger(pieceCount) || pieceCount < 0)
      throw new RangeError(`bad piece count ${pieceCount}`);
    if (have.length !== pieceCount) throw new RangeError("have bitfield length does not match piece count");
    this.#randomFirst = options.randomFirst ?? DEFAULT_RANDOM_FIRST;
    this.#maxDuplicates = options.maxDuplicates ?? DEFAULT_MAX_DUPLICATES;
    if (!Number.isInteger(this.#randomFirst) || this.#randomFirst < 0)
      throw new RangeError("randomFirst must be >= 0");
    if (!Number.isInteger(this.#maxDuplicates) || this.#maxDuplicates < 1) {
      throw new RangeError("maxDuplicates must be >= 1");
    }
    this.#random = options.random ?? Math.random;
    this.have = new Bitfield(pieceCount, have.bytes);
    this.#avail = new Uint32Array(pieceCount);
    this.#pos = new Int32Array(pieceCount).fill(-1);
    for (let i = 0; i < pieceCount; i++) if (!this.have.has(i)) this.#poolAdd(i);
  }

  get complete(): boolean {
    return this.have.complete;
  }

  /** Pieces we still lack. */
  get missing(): number {
    return this.pieceCount - this.have.count;
  }

  /**
   * No fresh work: every missing piece that some peer has is in flight. Pieces
   * no connected peer has don't hold the end-game back; nobody could serve them.
   */
  get inEndGame(): boolean {
    return this.#requesters.size > 0 && this.#pooledAvailable() === 0;
  }

  /** Pieces examined by pick() so far: lets tests bound the work without timing it. */
  get probes(): number {
    return this.#probes;
  }

  inFlight(peer: string): number {
    return this.#peers.get(peer)?.inFlight.size ?? 0;
  }

  availability(piece: number): number {
    this.#check(piece);
    return this.#avail[piece]!;
  }

  /** Does this peer have any piece we lack? (drives our `interested`) */
  interesting(peer: string): boolean {
    return (this.#peers.get(peer)?.wanted ?? 0) > 0;
  }

  /** A peer's bitfield arrived. A second call for the same peer adds to what it has. */
  addPeer(peer: string, bits: Bitfield): void {
    if (bits.length !== this.pieceCount)
      throw new RangeError("peer bitfield length does not match piece count");
    let st = this.#peers.get(peer);
    if (!st) {
      st = { bits: new Bitfield(this.pieceCount), inFlight: new Set(), perLevel: [], wanted: 0 };
      this.#peers.set(peer, st);
    }
    for (let i = 0; i < this.pieceCount; i++) if (bits.has(i)) this.#gain(st, i);
  }

  /** A `have` arrived. Ignored for a peer we don't know (a late message after removePeer). */
  peerHas(peer: string, piece: number): void {
    this.#check(piece);
    const st = this.#peers.get(peer);
    if (st) this.#gain(st, piece);
  }

  /**
   * The peer left, errored or was dropped: its availability goes and its requests
   * end. Returns the pieces that went back to the pool (not those another peer
   * still has in flight in the end-game).
   */
  removePeer(peer: string): number[] {
    const st = this.#peers.get(peer);
    if (!st) return [];
    // out of the map first: the pool bookkeeping below need not count it
    this.#peers.delete(peer);
    for (let i = 0; i < this.pieceCount; i++) {
      if (!st.bits.has(i)) continue;
      const pooled = this.#pos[i]! >= 0;
      if (pooled) this.#poolRemove(i);
      this.#avail[i]!--;
      if (pooled) this.#poolAdd(i);
    }
    const returned: number[] = [];
    for (const piece of st.inFlight) if (this.#drop(piece, peer)) returned.push(piece);
    return returned;
  }

  /**
   * The next piece to request from this peer, now marked requested by it; undefined
   * when it has nothing for us. Rarest-first (random among equally rare) after the
   * first `randomFirst` random picks; in the end-game, a piece another peer is
   * already fetching.
   */
  pick(peer: string): number | undefined {
    const st = this.#peers.get(peer);
    if (!st) return undefined;
    if (this.#pooledAvailable() === 0) return this.#pickDuplicate(peer, st);
    const level = this.#freshPicks < this.#randomFirst ? this.#randomLevel(st) : this.#rarestLevel(st);
    if (level === undefined) return undefined;
    const piece = this.#inOrder(level, st) ?? this.#scan(this.#levels[level]!, st.bits);
    this.#poolRemove(piece);
    this.#requesters.set(piece, new Set([peer]));
    st.inFlight.add(piece);
    this.#freshPicks++;
    return piece;
  }

  /** The request timed out or was rejected: the piece goes back to the pool unless another peer is fetching it. */
  release(piece: number, peer: string): void {
    this.#check(piece);
    this.#drop(piece, peer);
  }

  /** The piece failed its SHA1 check: back to the pool (the caller drops the peer). */
  failed(piece: number, peer: string): void {
    this.release(piece, peer);
  }

  /**
   * The piece was verified and written. Returns the peers that still have it in
   * flight, other than `from` (who delivered it), so the caller can cancel them.
   * A piece we already have returns [].
   */
  received(piece: number, from?: string): string[] {
    this.#check(piece);
    if (this.have.has(piece)) return [];
    const requesters = this.#requesters.get(piece);
    if (requesters) this.#requesters.delete(piece);
    // a late answer to a released request: the piece is back in the pool
    else if (this.#pos[piece]! >= 0) this.#poolRemove(piece);
    this.have.set(piece);
    for (const st of this.#peers.values()) if (st.bits.has(piece)) st.wanted--;
    const cancel: string[] = [];
    for (const p of requesters ?? []) {
      this.#peers.get(p)?.inFlight.delete(piece);
      if (p !== from) cancel.push(p);
    }
    return cancel;
  }

  #check(piece: number): void {
    if (!Number.isInteger(piece) || piece < 0 || piece >= this.pieceCount) {
      throw new RangeError(`piece ${piece} out of range 0..${this.pieceCount - 1}`);
    }
  }

  #gain(st: PeerState, piece: number): void {
    if (st.bits.has(piece)) return;
    const pooled = this.#pos[piece]! >= 0;
    // out of the pool at the old level, back in at the new one, with this peer counted
    if (pooled) this.#poolRemove(piece);
    st.bits.set(piece);
    this.#avail[piece]!++;
    if (!this.have.has(piece)) st.wanted++;
    if (pooled) this.#poolAdd(piece);
  }

  /** Ends one request; true when the piece went back to the pool. */
  #drop(piece: number, peer: string): boolean {
    const requesters = this.#requesters.get(piece);
    if (!requesters?.delete(peer)) return false;
    this.#peers.get(peer)?.inFlight.delete(piece);
    if (requesters.size > 0) return false;
    this.#requesters.delete(piece);
    this.#poolAdd(piece);
    // back in the pool: an in-order pick must see it again
    if (piece < this.#orderFrom) this.#orderFrom = piece;
    return true;
  }

  #pooledAvailable(): number {
    let n = 0;
    for (let a = 1; a < this.#levels.length; a++) n += this.#levels[a]!.length;
    return n;
  }

  #rarestLevel(st: PeerState): number | undefined {
    // level 0 is pieces nobody has; perLevel[0] is always 0
    for (let a = 1; a < st.perLevel.length; a++) if (st.perLevel[a]! > 0) return a;
    return undefined;
  }

  /** A level chosen in proportion to how many of its pieces this peer has: a uniform pick over the peer's pool. */
  #randomLevel(st: PeerState): number | undefined {
    let total = 0;
    for (const n of st.perLevel) total += n ?? 0;
    if (total === 0) return undefined;
    let r = Math.floor(this.#random() * total);
    for (let a = 1; a < st.perLevel.length; a++) {
      r -= st.perLevel[a] ?? 0;
      if (r < 0) return a;
    }
    return this.#rarestLevel(st);
  }

  /** At a level that every peer (two or more) is at, the first pooled piece in file order; undefined otherwise. */
  #inOrder(level: number, st: PeerState): number | undefined {
    if (this.#peers.size < 2 || level !== this.#peers.size) return undefined;
    const end = Math.min(this.pieceCount, this.#orderFrom + IN_ORDER_PROBES);
    for (let i = this.#orderFrom; i < end; i++) {
      this.#probes++;
      if (this.#pos[i]! >= 0 && this.#avail[i] === level && st.bits.has(i)) {
        this.#orderFrom = i + 1;
        return i;
      }
    }
    return undefined;
  }

  /** First piece the peer has, from a random start; the level's order is already random. */
  #scan(level: number[], bits: Bitfield): number {
    const start = Math.floor(this.#random() * level.length);
    for (let k = 0; k < level.length; k++) {
      this.#probes++;
      const piece = level[(start + k) % level.length]!;
      if (bits.has(piece)) return piece;
    }
    throw new Error("piece picker: level count out of step with its pieces");
  }

  /** End-game: among pieces in flight from others that this peer has, one with the fewest requesters. */
  #pickDuplicate(peer: string, st: PeerState): number | undefined {
    let best: number | undefined;
    let bestCount = this.#maxDuplicates;
    let ties = 0;
    for (const [piece, requesters] of this.#requesters) {
      this.#probes++;
      if (requesters.has(peer) || !st.bits.has(piece) || requesters.size > bestCount) continue;
      if (requesters.size < bestCount) {
        best = piece;
        bestCount = requesters.size;
        ties = 1;
      } else if (best !== undefined && this.#random() * ++ties < 1) {
        // reservoir sampling: uniform among the equally requested
        best = piece;
      }
    }
    if (best === undefined) return undefined;
    this.#requesters.get(best)!.add(peer);
    st.inFlight.add(best);
    return best;
  }

  #poolAdd(piece: number): void {
    const a = this.#avail[piece]!;
    while (this.#levels.length <= a) this.#levels.push([]);
    const level = this.#levels[a]!;
    // inside-out shuffle: swap the newcomer with a random member, keeping the level in random order
    const j = Math.floor(this.#random() * (level.length + 1));
    if (j === level.length) {
      level.push(piece);
    } else {
      const moved = level[j]!;
      level.push(moved);
      this.#pos[moved] = level.length - 1;
      level[j] = piece;
    }
    this.#pos[piece] = j;
    for (const st of this.#peers.values()) if (st.bits.has(piece)) st.perLevel[a] = (st.perLevel[a] ?? 0) + 1;
  }

  #poolRemove(piece: number): void {
    const a = this.#avail[piece]!;
    const level = this.#levels[a]!;
    const i = this.#pos[piece]!;
    const last = level.pop()!;
    if (last !== piece) {
      level[i] = last;
      this.#pos[last] = i;
    }
    this.#pos[piece] = -1;
    for (const st of this.#peers.values()) if (st.bits.has(piece)) st.perLevel[a]!--;
  }
}
