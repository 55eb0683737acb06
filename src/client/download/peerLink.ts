import type { Duplex } from "node:stream";
import { PIECE_SIZE } from "../../shared/constants.js";
import { printable } from "../../shared/ids.js";
import { type PieceMessage, type RejectCode, rejectCodeName, Wire } from "../../wire/index.js";
import type { Clock, Timer } from "../peers/clock.js";
import { type DialTarget, type Dialer, NoPathError, type PathKind, type Reached } from "../peers/dialer.js";
import { IMPOSTOR } from "../peers/dialPeer.js";
import type { RequestBudget } from "./gate.js";

/** Pieces requested from one peer at once: enough to keep a serving peer busy between round trips. */
export const PIPELINE_DEPTH = 6;
/**
 * A connection must be up within this time: a sharer that cannot be dialled is
 * dialled back or relayed to (reachingDialer), which takes a few seconds more.
 */
const CONNECT_TIMEOUT_MS = 15_000;
/** The peer must answer our handshake within this time. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * While requests are out, the peer must send at least STALL_BYTES of what was asked
 * in each period of this length (LinkOwner.patience: longer where our own download
 * limit needs longer to let through what was asked), or the link is dropped and its
 * pieces go back to the pool. Progress, not a whole piece: a sharer whose upload limit
 * is shared by many downloaders sends each a 512 KiB piece in far more than 20 s (2 MB/s
 * over 100 of them is 20 kB/s, 26 s a piece, and the sixth piece of a pipeline waits
 * behind five).
 */
export const REQUEST_TIMEOUT_MS = 20_000;
/** Small: a peer trickling less holds its pieces only until the end-game asks another peer for them. */
export const STALL_BYTES = 1024;
/** Keep-alive towards a peer we are idle on (it closes idle connections after 120 s). */
const KEEPALIVE_MS = 30_000;
/**
 * Renewals on one connection at least this far apart: a sharer refuses renewals
 * closer than a second, and peer lists may come faster than that (a ticket lasts
 * TICKET_TTL_MS and the download asks for one every TICKET_REFRESH_MS at most).
 */
const RENEW_GAP_MS = 2_500;

/** Why a link ended, as its swarm acts on it. */
export type LinkEnd =
  /** the peer refused us; `reason` is its text, escaped */
  | { readonly kind: "refused"; readonly code: RejectCode; readonly reason: string }
  /** whoever answered at the sharer's address did not prove the sharer's key */
  | { readonly kind: "impostor" }
  /** no way of reaching the sharer worked; `why` says what each met */
  | { readonly kind: "unreachable"; readonly why: string }
  /** the peer answered a request with another length */
  | { readonly kind: "wrong-length" }
  /** anything else: a timeout, the connection's end, our own closing */
  | { readonly kind: "ended"; readonly why: string };

/** A line for a link's end (logs, a refusal's warning). */
export function describeEnd(end: LinkEnd): string {
  switch (end.kind) {
    case "refused":
      return `${rejectCodeName(end.code)} ${end.reason}`;
    case "impostor":
      return "did not prove the sharer's key";
    case "unreachable":
    case "ended":
      return end.why;
    case "wrong-length":
      return "sent a block of the wrong length";
  }
}

/** A dial's or stream's error as a link's end. */
function endOf(err: NodeJS.ErrnoException): LinkEnd {
  if (err.code === IMPOSTOR) return { kind: "impostor" };
  if (err instanceof NoPathError) return { kind: "unreachable", why: err.message };
  return { kind: "ended", why: err.code ?? err.message };
}

/** A piece asked of this link, put together from its blocks. */
interface Asked {
  readonly piece: number;
  readonly length: number;
  /** where the next request starts */
  next: number;
  /** bytes arrived */
  got: number;
  /** the piece, made at the first block that is not all of it (a whole piece comes as one buffer) */
  data: Buffer | undefined;
}

/** A request on its way: a block of an asked piece. */
interface Block {
  readonly asked: Asked;
  readonly offset: number;
  readonly length: number;
}

/** What a link needs from the peer set it belongs to. */
export interface LinkOwner {
  readonly fileId: Buffer;
  readonly size: number;
  pieceLength(piece: number): number;
  /** May this ready link send requests yet? (the start gate, the disk) */
  mayRequest(link: PeerLink): boolean;
  /** What each link keeps requested now (the download shares a bound among its links). */
  budget(): RequestBudget;
  /** How long a link with requests out may go without progress (ms); undefined: for now, as long as it takes. */
  patience(): number | undefined;
  /** The next piece to ask this link for, now counted as in flight on it; undefined: none. */
  pick(link: PeerLink): number | undefined;
  /** The peer's bitfield arrived: the link is ready. */
  onBitfield(link: PeerLink, bits: Uint8Array): void;
  /** The peer has a new piece. */
  onHave(link: PeerLink, piece: number): void;
  /** All of a piece arrived from this link: check and store it. */
  onPiece(link: PeerLink, piece: number, data: Buffer): void;
  /** The link ended, and its requests with it. */
  onClosed(link: PeerLink, end: LinkEnd): void;
}

export interface LinkComponents {
  clock: Clock;
  dialer: Dialer;
}

/**
 * One outgoing connection to a peer that shares the file: handshake with our
 * ticket, learn its pieces, keep its share of requests in flight (LinkOwner.budget):
 * whole pieces, or a piece in blocks under a download limit, handed to the owner
 * whole. Every request ends: with its bytes, a timeout, or the link's end, whose
 * pieces the owner hands back to the picker.
 */
export class PeerLink {
  readonly addr: string;
  /** the sharer's user id, as the tracker listed it */
  readonly userId: string;
  readonly #owner: LinkOwner;
  readonly #clock: Clock;
  readonly #wire = new Wire();
  /** the pieces asked of this link and not all here yet */
  readonly #asked = new Map<number, Asked>();
  /** requests on their way, by the file offset they start at */
  readonly #blocks = new Map<number, Block>();
  readonly #dialing = new AbortController();
  #stream: Duplex | undefined;
  #ready = false;
  #closed = false;
  readonly #timers: Timer[] = [];
  /** set while requests are out: each time it fires, the peer must have made progress (STALL_BYTES) */
  #stall: Timer | undefined;
  /** The ticket this connection runs on: the handshake's, then each renewal. */
  #ticket: string;
  /** When the last renewal went out (undefined: none yet). */
  #renewedAt: number | undefined;
  /** Piece data received on this link. */
  received = 0;
  /** How the connection was made, once it is up. */
  path: PathKind | undefined;

  constructor(target: DialTarget, ticket: string, owner: LinkOwner, components: LinkComponents) {
    this.addr = target.addr;
    this.userId = target.userId;
    this.#owner = owner;
    this.#clock = components.clock;
    this.#ticket = ticket;
    const ended = (why: string) => () => this.close({ kind: "ended", why });
    const connectTimer = this.#clock.after(CONNECT_TIMEOUT_MS, ended("connect timed out"));
    const handshakeTimer = this.#clock.after(HANDSHAKE_TIMEOUT_MS, ended("no handshake answer"));
    this.#timers.push(connectTimer, handshakeTimer);
    const wire = this.#wire;
    wire.on("error", (err) =>
      this.close({ kind: "ended", why: `protocol error: ${(err as Error).message}` }),
    );
    wire.once("handshake", (m) => {
      handshakeTimer.cancel();
      if (!m.fileId.equals(owner.fileId))
        return this.close({ kind: "ended", why: "answered for another file" });
      wire.setFile({ size: owner.size });
    });
    wire.once("bitfield", (m) => {
      this.#ready = true;
      owner.onBitfield(this, m.bits);
      this.fill();
    });
    wire.on("have", (m) => {
      if (!this.#ready) return;
      owner.onHave(this, m.piece);
      this.fill();
    });
    wire.on("piece", (m) => this.#onBlock(m));
    wire.on("reject", (m) => {
      // the reason is the peer's text: escaped, never raw on a terminal
      this.close({ kind: "refused", code: m.code, reason: printable(m.reason) });
    });
    this.#timers.push(this.#clock.every(KEEPALIVE_MS, () => wire.keepAlive()));
    // queued in the wire until the stream is there
    wire.handshake(owner.fileId, ticket);
    components.dialer(target, this.#dialing.signal).then(
      (stream) => {
        connectTimer.cancel();
        if (this.#closed) {
          stream.destroy();
          return;
        }
        this.#attach(stream);
      },
      (err: NodeJS.ErrnoException) => this.close(endOf(err)),
    );
  }

  #attach(stream: Reached): void {
    this.#stream = stream;
    this.path = stream.path ?? "direct";
    stream.on("error", (err: NodeJS.ErrnoException) => this.close(endOf(err)));
    stream.on("close", () => this.close({ kind: "ended", why: "connection closed" }));
    stream.pipe(this.#wire).pipe(stream);
  }

  /** The peer's bitfield has arrived. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Bytes requested and not received yet. */
  get requested(): number {
    let n = 0;
    for (const b of this.#blocks.values()) n += b.length;
    return n;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Hands the peer a fresh ticket for this connection: a sharer serves a connection
   * only while its ticket is unexpired, so an open link needs one before the last expires.
   */
  renew(ticket: string): void {
    if (this.#closed || ticket === this.#ticket) return;
    const now = this.#clock.now();
    if (this.#renewedAt !== undefined && now - this.#renewedAt < RENEW_GAP_MS) return;
    this.#renewedAt = now;
    this.#ticket = ticket;
    this.#wire.ticket(ticket);
  }

  /** Requests blocks from this peer until its budget is used or it has nothing we lack. */
  fill(): void {
    if (!this.#ready || this.#closed || !this.#owner.mayRequest(this)) return;
    const { requests, block } = this.#owner.budget();
    while (this.#blocks.size < requests) {
      const asked = this.#unasked() ?? this.#pick();
      if (asked === undefined) break;
      const offset = asked.next;
      const length = Math.min(block, asked.length - offset);
      asked.next += length;
      const at = asked.piece * PIECE_SIZE + offset;
      this.#blocks.set(at, { asked, offset, length });
      this.#wire.request(asked.piece, offset, length);
    }
    if (this.#blocks.size > 0) this.#stall ??= this.#stallTimer();
  }

  /** The asked piece with bytes not requested yet (one at most: a piece is asked to its end first). */
  #unasked(): Asked | undefined {
    for (const a of this.#asked.values()) if (a.next < a.length) return a;
    return undefined;
  }

  #pick(): Asked | undefined {
    const piece = this.#owner.pick(this);
    if (piece === undefined) return undefined;
    const asked: Asked = { piece, length: this.#owner.pieceLength(piece), next: 0, got: 0, data: undefined };
    this.#asked.set(piece, asked);
    return asked;
  }

  #onBlock(m: PieceMessage): void {
    const at = m.piece * PIECE_SIZE + m.offset;
    const block = this.#blocks.get(at);
    if (block === undefined) return; // cancelled or timed out: a late duplicate, ignore
    if (m.data.length !== block.length) {
      this.close({ kind: "wrong-length" });
      return;
    }
    this.#blocks.delete(at);
    this.received += m.data.length;
    if (this.#blocks.size === 0) this.#calm();
    const asked = block.asked;
    if (m.data.length === asked.length) asked.data = m.data;
    else {
      asked.data ??= Buffer.allocUnsafe(asked.length);
      m.data.copy(asked.data, block.offset);
    }
    asked.got += m.data.length;
    if (asked.got === asked.length) {
      this.#asked.delete(asked.piece);
      this.#owner.onPiece(this, asked.piece, asked.data as Buffer);
    }
    this.fill();
  }

  /** Requested bytes received, with what has come of a requested block still arriving: what the stall check measures. */
  #progress(): number {
    const a = this.#wire.arriving;
    const requested = a !== undefined && this.#blocks.has(a.piece * PIECE_SIZE + a.offset);
    return this.received + (requested ? a.received : 0);
  }

  /** The next stall check, or none while the owner has no patience limit (our own limit paused it). */
  #stallTimer(): Timer | undefined {
    const ms = this.#owner.patience();
    if (ms === undefined) return undefined;
    const mark = this.#progress();
    return this.#clock.after(ms, () => {
      this.#stall = undefined;
      // our own limit went to 0 meanwhile: nothing is due until it opens (fill() sets a timer then)
      if (this.#owner.patience() === undefined) return;
      if (this.#progress() - mark >= STALL_BYTES) this.#stall = this.#stallTimer();
      else this.close({ kind: "ended", why: `no piece data for ${Math.round(ms / 1000)} s` });
    });
  }

  /** Nothing is asked of the peer any more: no progress is due. */
  #calm(): void {
    this.#stall?.cancel();
    this.#stall = undefined;
  }

  /** End-game: another peer delivered this piece first. */
  cancel(piece: number): void {
    if (!this.#asked.delete(piece)) return;
    for (const [at, b] of this.#blocks) {
      if (b.asked.piece !== piece) continue;
      this.#blocks.delete(at);
      this.#wire.cancel(piece, b.offset, b.length);
    }
    if (this.#blocks.size === 0) this.#calm();
  }

  close(end: LinkEnd): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stall?.cancel();
    this.#blocks.clear();
    this.#asked.clear();
    for (const t of this.#timers) t.cancel();
    this.#dialing.abort(new Error(describeEnd(end)));
    this.#wire.destroy();
    this.#stream?.destroy();
    this.#owner.onClosed(this, end);
  }
}
