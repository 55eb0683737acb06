import { Bitfield } from "../../shared/bitfield.js";
import { parseHostPort } from "../../shared/trackerInfo.js";
import type { Clock } from "../peers/clock.js";
import { RejectCode } from "../../wire/index.js";
import { byPath, type Dialer, type PathKind } from "../peers/dialer.js";
import type { Grant } from "./fileTracker.js";
import { type RequestBudget, requestBudget, StartGate } from "./gate.js";
import { describeEnd, type LinkEnd, type LinkOwner, PeerLink, REQUEST_TIMEOUT_MS } from "./peerLink.js";
import { PiecePicker } from "./picker.js";
import { Backoff } from "./retry.js";

/**
 * Peers connected at once per download. Each link is a TCP flow up the sharer's
 * link: a flash crowd of 16 with a full mesh (15 flows up each capped uplink, beside
 * the tracker calls and every request and ACK of its own downloads) used 38% of
 * its upload, where 8 per download used 86% (BENCHMARKS.md, "Swarm: engine changes").
 */
export const MAX_PEERS = 8;

/** What the swarm tells its download. */
/** One open link's figures. */
export interface LinkFigures {
  userId: string;
  addr: string;
  path: PathKind | undefined;
  bytes: number;
}

export interface SwarmOwner {
  /** A piece we lacked arrived and matched its SHA1: store it. */
  onVerified(piece: number, data: Buffer): void;
  /** A peer sent a piece that failed its SHA1: it is banned and dropped. */
  onCorrupt(addr: string, piece: number): void;
  /** A peer refused us (not BUSY): once per peer and reason. */
  onRefused(addr: string, refusal: string): void;
  /** Whoever is at a sharer's address did not prove the sharer's key: it is banned. */
  onImpostor(addr: string): void;
  /** No way to reach the sharer at `addr` worked (`why` says what each met); told once per peer and reason. */
  onUnreachable(addr: string, why: string): void;
  /** No link is open any more. */
  onIdle(): void;
  /** A peer's bitfield arrived with pieces we lack. */
  onServable(): void;
  /** Too many verified pieces wait for the disk: no new requests after a piece. */
  diskFull(): boolean;
  /** Is this piece's data what its SHA1 says? */
  checks(piece: number, data: Buffer): boolean;
}

export interface SwarmComponents {
  clock: Clock;
  dialer: Dialer;
}

export interface SwarmInit {
  fileId: Buffer;
  size: number;
  pieceCount: number;
  pieceLength(piece: number): number;
  /** The pieces we have already. */
  have: Bitfield;
  /** Our own peer address: the tracker may list us among the sharers. */
  selfAddr: string;
  /**
   * The download's share of the download limits above it, bytes a second
   * (SpeedLimits.share), read at each request; undefined, or none given: no limit.
   */
  rate?: () => number | undefined;
  owner: SwarmOwner;
  /** [0, 1), like Math.random (the default): the order in which partial sharers are dialled */
  random?: () => number;
}

/**
 * The download's peers: whom to dial, who is banned or backing off, the start
 * gate and the request budget they share. It alone writes the piece picker:
 * links report bitfields, haves, pieces and their end here.
 */
export class Swarm implements LinkOwner {
  readonly fileId: Buffer;
  readonly size: number;
  readonly #components: SwarmComponents;
  readonly #init: SwarmInit;
  readonly #owner: SwarmOwner;
  readonly #picker: PiecePicker;
  readonly #links = new Map<string, PeerLink>();
  /** Peers that sent a corrupt piece: never again in this download. */
  readonly #banned = new Set<string>();
  readonly #backoff: Backoff;
  /** Refusals and unreachable sharers already reported (peer and reason): a peer that refuses each retry is told once. */
  readonly #told = new Set<string>();
  readonly #gate: StartGate<PeerLink>;

  constructor(components: SwarmComponents, init: SwarmInit) {
    this.#components = components;
    this.#init = init;
    this.#owner = init.owner;
    this.fileId = init.fileId;
    this.size = init.size;
    this.#picker = new PiecePicker(init.pieceCount, init.have);
    this.#backoff = new Backoff(components.clock);
    this.#gate = new StartGate<PeerLink>(components.clock, (asker) => {
      for (const l of [...this.#links.values()]) if (l !== asker) l.fill();
    });
  }

  /** Our pieces: every verified one (its write may still be in progress). */
  get have(): Bitfield {
    return this.#picker.have;
  }

  get complete(): boolean {
    return this.#picker.complete;
  }

  /** Links open now (dialling or ready). */
  get peerCount(): number {
    let n = 0;
    for (const l of this.#links.values()) if (!l.closed) n++;
    return n;
  }

  /** Piece bytes received this run, by how the link they came on was made. */
  readonly received: Record<PathKind, number> = byPath();

  /** Connected links by how they were made (show_downloads prints them). */
  get paths(): Record<PathKind, number> {
    const by = byPath();
    for (const l of this.#links.values()) if (!l.closed && l.path) by[l.path]++;
    return by;
  }

  /** The links open now: who, how the link was made (once it is), piece bytes received on it. */
  get links(): LinkFigures[] {
    return [...this.#links.values()]
      .filter((l) => !l.closed)
      .map((l) => ({ userId: l.userId, addr: l.addr, path: l.path, bytes: l.received }));
  }

  /** A peer still connecting may have what we lack; a connected one must have it. */
  get hopeful(): boolean {
    return [...this.#links.values()].some((l) => !l.closed && (!l.ready || this.#picker.interesting(l.addr)));
  }

  pieceLength(piece: number): number {
    return this.#init.pieceLength(piece);
  }

  /**
   * Dials the grant's sharers we are not connected to, up to MAX_PEERS: complete ones
   * first, the others in random order. The tracker lists them by user id, and in that
   * order every downloader of a large group would link the same few partial sharers.
   */
  connect(grant: Grant): void {
    const random = this.#init.random ?? Math.random;
    const keyed = grant.peers.map((p) => ({ p, r: random() }));
    // complete seeders first: they can serve any piece
    keyed.sort((a, b) => Number(b.p.complete) - Number(a.p.complete) || a.r - b.r);
    for (const { p } of keyed) {
      if (this.peerCount >= MAX_PEERS) break;
      if (p.addr === this.#init.selfAddr || this.#banned.has(p.addr)) continue;
      if (this.#backoff.holds(p.addr)) continue;
      const existing = this.#links.get(p.addr);
      if (existing && !existing.closed) continue;
      const hp = parseHostPort(p.addr);
      if (typeof hp === "string") continue;
      const target = { addr: p.addr, host: hp.host, port: hp.port, userId: p.userId, key: p.key, nat: p.nat };
      this.#links.set(p.addr, new PeerLink(target, grant.ticket, this, this.#components));
    }
  }

  /** A fresh ticket for every open link. */
  renew(ticket: string): void {
    for (const l of this.#links.values()) l.renew(ticket);
  }

  /** Every link asks for what it can (the disk caught up). */
  fillAll(): void {
    for (const l of this.#links.values()) l.fill();
  }

  closeAll(why: string): void {
    this.#gate.dispose();
    for (const l of [...this.#links.values()]) l.close({ kind: "ended", why });
    this.#links.clear();
  }

  budget(): RequestBudget {
    let ready = 0;
    for (const l of this.#links.values()) if (l.ready && !l.closed) ready++;
    return requestBudget(ready, this.#init.rate?.());
  }

  patience(): number | undefined {
    const rate = this.#init.rate?.();
    if (rate === undefined) return REQUEST_TIMEOUT_MS;
    if (rate <= 0) return undefined; // paused by our own limit: no peer is to blame
    let requested = 0;
    for (const l of this.#links.values()) if (!l.closed) requested += l.requested;
    // what the download asked for must be able to pass our own limit twice in a period
    return Math.max(REQUEST_TIMEOUT_MS, Math.ceil((2_000 * requested) / rate));
  }

  mayRequest(asker: PeerLink): boolean {
    if (this.#owner.diskFull()) return false; // onRoom fills every link again
    if (this.#gate.isOpen) return true;
    return this.#gate.mayRequest(
      asker,
      [...this.#links.values()].some((l) => !l.closed && !l.ready),
    );
  }

  pick(link: PeerLink): number | undefined {
    return this.#picker.pick(link.addr);
  }

  onBitfield(link: PeerLink, bits: Uint8Array): void {
    this.#picker.addPeer(link.addr, new Bitfield(this.#init.pieceCount, bits));
    if (this.#picker.interesting(link.addr)) this.#owner.onServable();
  }

  onHave(link: PeerLink, piece: number): void {
    this.#picker.peerHas(link.addr, piece);
  }

  onPiece(link: PeerLink, piece: number, data: Buffer): void {
    this.received[link.path ?? "direct"] += data.length;
    if (!this.#owner.checks(piece, data)) {
      this.#picker.failed(piece, link.addr);
      this.#banned.add(link.addr);
      this.#owner.onCorrupt(link.addr, piece);
      link.close({ kind: "ended", why: "sent a corrupt piece" });
      return;
    }
    if (!this.#picker.have.has(piece)) {
      for (const other of this.#picker.received(piece, link.addr)) this.#links.get(other)?.cancel(piece);
      this.#owner.onVerified(piece, data);
    }
  }

  onClosed(link: PeerLink, end: LinkEnd): void {
    // its availability goes and its pieces return to the pool
    this.#picker.removePeer(link.addr);
    if (this.#links.get(link.addr) === link) this.#links.delete(link.addr);
    switch (end.kind) {
      case "impostor":
        // someone at the address who could not prove the sharer's key: never dialled again
        if (!this.#banned.has(link.addr)) {
          this.#banned.add(link.addr);
          this.#owner.onImpostor(link.addr);
        }
        break;
      case "wrong-length":
        this.#banned.add(link.addr); // as for a corrupt piece
        break;
      case "refused":
        // news (a ticket refused, a share stopped), once per peer and reason; BUSY is routine and retried
        if (end.code !== RejectCode.BUSY)
          this.#once(link.addr, end, (text) => this.#owner.onRefused(link.addr, text));
        break;
      case "unreachable":
        // so is a sharer that no path reaches: the download waits on, and the user learns why
        this.#once(link.addr, end, (text) => this.#owner.onUnreachable(link.addr, text));
        break;
      case "ended":
        break;
    }
    if (link.ready) this.#backoff.succeeded(link.addr);
    else this.#backoff.failed(link.addr);
    // its pieces went back to the pool: let the other peers take them now
    for (const l of this.#links.values()) l.fill();
    if (this.peerCount === 0) this.#owner.onIdle();
  }

  /** Tells `end` of the peer at `addr` once per peer and text. */
  #once(addr: string, end: LinkEnd, tell: (text: string) => void): void {
    const text = describeEnd(end);
    const key = `${addr} ${end.kind} ${text}`;
    if (this.#told.has(key)) return;
    this.#told.add(key);
    tell(text);
  }
}
