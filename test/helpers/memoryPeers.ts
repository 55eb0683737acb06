import { Duplex } from "node:stream";
import { type DialTarget, type Dialer, NoPathError } from "../../src/client/peers/dialer.js";
import { Bitfield } from "../../src/shared/bitfield.js";
import { PIECE_SIZE } from "../../src/shared/constants.js";
import { encodePieceHeader, type RejectCode, Wire } from "../../src/wire/index.js";

/** Two in-memory stream ends: what one writes the other reads; destroying one ends both. */
export function duplexPair(): [Duplex, Duplex] {
  const make = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _encoding, callback) {
        other().push(chunk);
        callback();
      },
      final(callback) {
        other().push(null);
        callback();
      },
      destroy(err, callback) {
        const o = other();
        if (!o.destroyed) o.destroy();
        callback(err);
      },
    });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  return [a, b];
}

export interface SharerOptions {
  /** The pieces it has (default: all). */
  have?: Bitfield;
  /** Send the bitfield only when bitfieldNow() is called. */
  holdBitfield?: boolean;
  /** Answer requests only when serve() is called. */
  holdPieces?: boolean;
  /** Pieces it sends with one byte flipped. */
  corrupt?: Set<number>;
  /** Refuse every connection with this reject. */
  refuse?: { code: (typeof RejectCode)[keyof typeof RejectCode]; reason: string };
}

/**
 * A sharer of one file, in memory: answers a download's handshake with its own
 * and its bitfield, then serves each requested piece (or holds it, as told).
 * It records what it was asked, for the test to look at.
 */
export class MemorySharer {
  /** the piece of each request, in order */
  readonly requests: number[] = [];
  /** each request's range, in order */
  readonly ranges: { piece: number; offset: number; length: number }[] = [];
  readonly cancels: number[] = [];
  /** Connections made to it. */
  dials = 0;
  readonly #data: Buffer;
  readonly #fileId: Buffer;
  readonly #opts: SharerOptions;
  readonly #wires: Wire[] = [];
  readonly #held: {
    wire: Wire;
    socket: Duplex;
    piece: number;
    offset: number;
    length: number;
    sent: number;
  }[] = [];

  constructor(data: Buffer, fileId: Buffer, opts: SharerOptions = {}) {
    this.#data = data;
    this.#fileId = fileId;
    this.#opts = opts;
  }

  get pieceCount(): number {
    return Math.ceil(this.#data.length / PIECE_SIZE);
  }

  /** Requests held, not answered yet (holdPieces). */
  get held(): number[] {
    return this.#held.map((h) => h.piece);
  }

  /** Our end of a new connection; the other end goes to the dialler. */
  accept(): Duplex {
    this.dials++;
    const [mine, theirs] = duplexPair();
    const wire = new Wire();
    mine.pipe(wire).pipe(mine);
    wire.on("error", () => mine.destroy());
    wire.once("handshake", () => {
      if (this.#opts.refuse) {
        wire.reject(this.#opts.refuse.code, this.#opts.refuse.reason);
        return;
      }
      wire.setFile({ size: this.#data.length });
      wire.handshake(this.#fileId, "");
      this.#wires.push(wire);
      if (!this.#opts.holdBitfield) this.#sendBitfield(wire);
    });
    wire.on("request", (m) => {
      const range = { piece: m.piece, offset: m.offset, length: m.length };
      this.requests.push(m.piece);
      this.ranges.push(range);
      if (this.#opts.holdPieces) this.#held.push({ wire, socket: mine, ...range, sent: 0 });
      else this.#send(wire, range);
    });
    wire.on("cancel", (m) => {
      this.cancels.push(m.piece);
      const i = this.#held.findIndex((h) => h.wire === wire && h.piece === m.piece && h.offset === m.offset);
      if (i >= 0) this.#held.splice(i, 1);
    });
    return theirs;
  }

  /** Sends the held bitfield on every connection (holdBitfield). */
  bitfieldNow(): void {
    for (const w of this.#wires) this.#sendBitfield(w);
  }

  /** Answers the first held request for this piece; `length`: with that many bytes instead (a lying peer). */
  serve(piece: number, length?: number): void {
    const i = this.#held.findIndex((h) => h.piece === piece);
    if (i < 0) throw new Error(`no held request for piece ${piece}`);
    const [h] = this.#held.splice(i, 1);
    this.#send(h!.wire, { ...h!, length: length ?? h!.length });
  }

  /**
   * Sends the next `bytes` of the first held request for this piece (its frame, header
   * first), as a slow link would; the request is answered once all of it is sent.
   */
  trickle(piece: number, bytes: number): void {
    const i = this.#held.findIndex((h) => h.piece === piece);
    if (i < 0) throw new Error(`no held request for piece ${piece}`);
    const h = this.#held[i]!;
    const at = h.piece * PIECE_SIZE + h.offset;
    const frame = Buffer.concat([
      encodePieceHeader(h.piece, h.offset, h.length),
      this.#data.subarray(at, at + h.length),
    ]);
    const end = Math.min(frame.length, h.sent + bytes);
    h.socket.write(frame.subarray(h.sent, end));
    h.sent = end;
    if (end === frame.length) this.#held.splice(i, 1);
  }

  /** Tells every connection it has a new piece. */
  gain(piece: number): void {
    this.#opts.have?.set(piece);
    for (const w of this.#wires) w.have(piece);
  }

  #sendBitfield(wire: Wire): void {
    wire.bitfield((this.#opts.have ?? Bitfield.full(this.pieceCount)).bytes);
  }

  #send(wire: Wire, r: { piece: number; offset: number; length: number }): void {
    const at = r.piece * PIECE_SIZE + r.offset;
    const data = Buffer.from(this.#data.subarray(at, at + r.length));
    if (this.#opts.corrupt?.has(r.piece)) data[0]! ^= 0xff;
    wire.piece(r.piece, r.offset, data);
  }
}

/** A dialer over a table of in-memory sharers; an address not in it refuses the connection. */
export function memoryDialer(
  sharers: Map<string, MemorySharer>,
  dialled: string[] = [],
  /** addresses no path reaches: their dial fails as reachingDialer's does */
  unreachable: ReadonlySet<string> = new Set(),
): Dialer {
  return async (target: DialTarget) => {
    dialled.push(target.addr);
    if (unreachable.has(target.addr)) {
      throw new NoPathError(target.userId, "direct: timed out; relayed: BUSY the relay is full");
    }
    const s = sharers.get(target.addr);
    if (!s) throw Object.assign(new Error(`connect ECONNREFUSED ${target.addr}`), { code: "ECONNREFUSED" });
    return s.accept();
  };
}
