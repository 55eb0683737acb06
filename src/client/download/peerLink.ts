import { connect, type Socket } from "node:net";
import { Bitfield } from "../../shared/bitfield.js";
import { printable } from "../../shared/ids.js";
import { type PieceMessage, rejectCodeName, Wire } from "../../wire/index.js";
import type { PiecePicker } from "./picker.js";

/** Pieces requested from one peer at once: enough to keep a serving peer busy between round trips. */
export const PIPELINE_DEPTH = 6;
/** A connection must be up within this time. */
const CONNECT_TIMEOUT_MS = 5_000;
/** The peer must answer our handshake within this time. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A requested piece must arrive within this time, or it goes back to the pool and the peer is dropped. */
export const REQUEST_TIMEOUT_MS = 20_000;
/** Keep-alive towards a peer we are idle on (it closes idle connections after 120 s). */
const KEEPALIVE_MS = 30_000;

/** What a link needs from its download. */
export interface LinkOwner {
  readonly fileId: Buffer;
  readonly size: number;
  readonly pieceCount: number;
  readonly picker: PiecePicker;
  pieceLength(piece: number): number;
  /** May this ready link send requests yet? (the download's start gate) */
  mayRequest(link: PeerLink): boolean;
  /** Requests each link keeps in flight now (the download shares a bound among its links). */
  depth(): number;
  /** A piece arrived from this link: check and store it. */
  onPiece(link: PeerLink, msg: PieceMessage): void;
  /** The link ended (with the reason for logs and show_downloads). */
  onClosed(link: PeerLink, reason: string): void;
}

/**
 * One outgoing connection to a peer that shares the file: handshake with our
 * ticket, learn its pieces, keep its share of requests in flight (LinkOwner.depth). Every
 * request ends: with its piece, a timeout, or the link's end, which hands its
 * pieces back to the picker.
 */
export class PeerLink {
  readonly addr: string;
  readonly #owner: LinkOwner;
  readonly #socket: Socket;
  readonly #wire = new Wire();
  readonly #inFlight = new Map<number, NodeJS.Timeout>();
  #ready = false;
  #closed = false;
  #keepAlive: NodeJS.Timeout | undefined;
  /** The ticket this connection runs on: the handshake's, then each renewal. */
  #ticket: string;
  /** Piece data received on this link. */
  received = 0;
  /** Why the peer refused us (its reject, escaped), if it did. */
  refusal: string | undefined;

  constructor(addr: string, host: string, port: number, ticket: string, owner: LinkOwner) {
    this.addr = addr;
    this.#owner = owner;
    this.#ticket = ticket;
    this.#socket = connect({ host, port });
    this.#socket.setNoDelay(true);
    const connectTimer = setTimeout(() => this.close("connect timed out"), CONNECT_TIMEOUT_MS);
    const handshakeTimer = setTimeout(() => this.close("no handshake answer"), HANDSHAKE_TIMEOUT_MS);
    this.#socket.once("connect", () => clearTimeout(connectTimer));
    this.#socket.on("error", (err: NodeJS.ErrnoException) => this.close(err.code ?? err.message));
    this.#socket.on("close", () => {
      clearTimeout(connectTimer);
      clearTimeout(handshakeTimer);
      this.close("connection closed");
    });
    const wire = this.#wire;
    wire.on("error", (err) => this.close(`protocol error: ${(err as Error).message}`));
    wire.once("handshake", (m) => {
      clearTimeout(handshakeTimer);
      if (!m.fileId.equals(owner.fileId)) return this.close("answered for another file");
      wire.setFile({ size: owner.size });
    });
    wire.once("bitfield", (m) => {
      this.#ready = true;
      owner.picker.addPeer(addr, new Bitfield(owner.pieceCount, m.bits));
      this.fill();
    });
    wire.on("have", (m) => {
      if (!this.#ready) return;
      owner.picker.peerHas(addr, m.piece);
      this.fill();
    });
    wire.on("piece", (m) => {
      const timer = this.#inFlight.get(m.piece);
      if (timer === undefined) return; // cancelled or timed out: a late duplicate, ignore
      clearTimeout(timer);
      this.#inFlight.delete(m.piece);
      this.received += m.data.length;
      owner.onPiece(this, m);
    });
    wire.on("reject", (m) => {
      // the reason is the peer's text: escaped, never raw on a terminal
      this.refusal = `${rejectCodeName(m.code)} ${printable(m.reason)}`;
      this.close(`peer refused: ${this.refusal}`);
    });
    this.#keepAlive = setInterval(() => wire.keepAlive(), KEEPALIVE_MS);
    this.#socket.pipe(wire).pipe(this.#socket);
    wire.handshake(owner.fileId, ticket);
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
    this.#ticket = ticket;
    this.#wire.ticket(ticket);
  }

  /** Requests pieces from this peer until its pipeline is full or it has nothing we lack. */
  fill(): void {
    if (!this.#ready || this.#closed || !this.#owner.mayRequest(this)) return;
    const picker = this.#owner.picker;
    const depth = this.#owner.depth();
    while (this.#inFlight.size < depth) {
      const piece = picker.pick(this.addr);
      if (piece === undefined) break;
      this.#inFlight.set(
        piece,
        setTimeout(
          () => this.close(`piece ${piece} not delivered within ${REQUEST_TIMEOUT_MS / 1000} s`),
          REQUEST_TIMEOUT_MS,
        ),
      );
      this.#wire.request(piece, 0, this.#owner.pieceLength(piece));
    }
  }

  /** End-game: another peer delivered this piece first. */
  cancel(piece: number): void {
    const timer = this.#inFlight.get(piece);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#inFlight.delete(piece);
    this.#wire.cancel(piece, 0, this.#owner.pieceLength(piece));
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#inFlight.values()) clearTimeout(t);
    this.#inFlight.clear();
    clearInterval(this.#keepAlive);
    this.#wire.destroy();
    this.#socket.destroy();
    // its availability goes and its pieces return to the pool
    this.#owner.picker.removePeer(this.addr);
    this.#owner.onClosed(this, reason);
  }
}
