import type { Duplex } from "node:stream";
import { printable } from "../../shared/ids.js";
import { type PieceMessage, rejectCodeName, Wire } from "../../wire/index.js";
import type { Clock, Timer } from "../peers/clock.js";
import type { DialTarget, Dialer, PathKind, Reached } from "../peers/dialer.js";

/** Pieces requested from one peer at once: enough to keep a serving peer busy between round trips. */
export const PIPELINE_DEPTH = 6;
/**
 * A connection must be up within this time: a sharer that cannot be dialled is
 * dialled back or relayed to (reachingDialer), which takes a few seconds more.
 */
const CONNECT_TIMEOUT_MS = 15_000;
/** The peer must answer our handshake within this time. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A requested piece must arrive within this time, or it goes back to the pool and the peer is dropped. */
export const REQUEST_TIMEOUT_MS = 20_000;
/** Keep-alive towards a peer we are idle on (it closes idle connections after 120 s). */
const KEEPALIVE_MS = 30_000;
/**
 * Renewals on one connection at least this far apart: a sharer refuses renewals
 * closer than a second, and peer lists may come faster than that (a ticket lasts
 * TICKET_TTL_MS and the download asks for one every TICKET_REFRESH_MS at most).
 */
const RENEW_GAP_MS = 2_500;

/** What a link needs from the peer set it belongs to. */
export interface LinkOwner {
  readonly fileId: Buffer;
  readonly size: number;
  pieceLength(piece: number): number;
  /** May this ready link send requests yet? (the start gate, the disk) */
  mayRequest(link: PeerLink): boolean;
  /** Requests each link keeps in flight now (the download shares a bound among its links). */
  depth(): number;
  /** The next piece to ask this link for, now counted as in flight on it; undefined: none. */
  pick(link: PeerLink): number | undefined;
  /** The peer's bitfield arrived: the link is ready. */
  onBitfield(link: PeerLink, bits: Uint8Array): void;
  /** The peer has a new piece. */
  onHave(link: PeerLink, piece: number): void;
  /** A piece arrived from this link: check and store it. */
  onPiece(link: PeerLink, msg: PieceMessage): void;
  /** The link ended (with the reason for logs and show_downloads); its requests ended with it. */
  onClosed(link: PeerLink, reason: string): void;
}

export interface LinkComponents {
  clock: Clock;
  dialer: Dialer;
}

/**
 * One outgoing connection to a peer that shares the file: handshake with our
 * ticket, learn its pieces, keep its share of requests in flight (LinkOwner.depth). Every
 * request ends: with its piece, a timeout, or the link's end, which the owner
 * hands back to the picker.
 */
export class PeerLink {
  readonly addr: string;
  /** the sharer's user id, as the tracker listed it */
  readonly userId: string;
  readonly #owner: LinkOwner;
  readonly #clock: Clock;
  readonly #wire = new Wire();
  readonly #inFlight = new Map<number, Timer>();
  readonly #dialing = new AbortController();
  #stream: Duplex | undefined;
  #ready = false;
  #closed = false;
  readonly #timers: Timer[] = [];
  /** The ticket this connection runs on: the handshake's, then each renewal. */
  #ticket: string;
  /** When the last renewal went out (undefined: none yet). */
  #renewedAt: number | undefined;
  /** Piece data received on this link. */
  received = 0;
  /** Why the peer refused us (its reject, escaped), if it did. */
  refusal: string | undefined;
  /** How the connection was made, once it is up. */
  path: PathKind | undefined;

  constructor(target: DialTarget, ticket: string, owner: LinkOwner, components: LinkComponents) {
    this.addr = target.addr;
    this.userId = target.userId;
    this.#owner = owner;
    this.#clock = components.clock;
    this.#ticket = ticket;
    const connectTimer = this.#clock.after(CONNECT_TIMEOUT_MS, () => this.close("connect timed out"));
    const handshakeTimer = this.#clock.after(HANDSHAKE_TIMEOUT_MS, () => this.close("no handshake answer"));
    this.#timers.push(connectTimer, handshakeTimer);
    const wire = this.#wire;
    wire.on("error", (err) => this.close(`protocol error: ${(err as Error).message}`));
    wire.once("handshake", (m) => {
      handshakeTimer.cancel();
      if (!m.fileId.equals(owner.fileId)) return this.close("answered for another file");
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
    wire.on("piece", (m) => {
      const timer = this.#inFlight.get(m.piece);
      if (timer === undefined) return; // cancelled or timed out: a late duplicate, ignore
      timer.cancel();
      this.#inFlight.delete(m.piece);
      this.received += m.data.length;
      owner.onPiece(this, m);
    });
    wire.on("reject", (m) => {
      // the reason is the peer's text: escaped, never raw on a terminal
      this.refusal = `${rejectCodeName(m.code)} ${printable(m.reason)}`;
      this.close(`peer refused: ${this.refusal}`);
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
      (err: NodeJS.ErrnoException) => this.close(err.code ?? err.message),
    );
  }

  #attach(stream: Reached): void {
    this.#stream = stream;
    this.path = stream.path ?? "direct";
    stream.on("error", (err: NodeJS.ErrnoException) => this.close(err.code ?? err.message));
    stream.on("close", () => this.close("connection closed"));
    stream.pipe(this.#wire).pipe(stream);
  }

  /** The peer's bitfield has arrived. */
  get ready(): boolean {
    return this.#ready;
  }

  get inFlight(): number {
    return this.#inFlight.size;
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

  /** Requests pieces from this peer until its pipeline is full or it has nothing we lack. */
  fill(): void {
    if (!this.#ready || this.#closed || !this.#owner.mayRequest(this)) return;
    const depth = this.#owner.depth();
    while (this.#inFlight.size < depth) {
      const piece = this.#owner.pick(this);
      if (piece === undefined) break;
      this.#inFlight.set(
        piece,
        this.#clock.after(REQUEST_TIMEOUT_MS, () =>
          this.close(`piece ${piece} not delivered within ${REQUEST_TIMEOUT_MS / 1000} s`),
        ),
      );
      this.#wire.request(piece, 0, this.#owner.pieceLength(piece));
    }
  }

  /** End-game: another peer delivered this piece first. */
  cancel(piece: number): void {
    const timer = this.#inFlight.get(piece);
    if (timer === undefined) return;
    timer.cancel();
    this.#inFlight.delete(piece);
    this.#wire.cancel(piece, 0, this.#owner.pieceLength(piece));
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#inFlight.values()) t.cancel();
    this.#inFlight.clear();
    for (const t of this.#timers) t.cancel();
    this.#dialing.abort(new Error(reason));
    this.#wire.destroy();
    this.#stream?.destroy();
    this.#owner.onClosed(this, reason);
  }
}
