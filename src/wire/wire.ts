import { Duplex } from "node:stream";
import {
  decodeMessage,
  encodeBitfield,
  encodeCancel,
  encodeHandshake,
  encodeHave,
  encodeKeepAlive,
  encodePieceHeader,
  encodeReject,
  encodeRequest,
  encodeTicket,
  FrameDecoder,
} from "./frames.js";
import {
  type BitfieldMessage,
  type CancelMessage,
  checkAgainstFile,
  type FileGeometry,
  fileGeometry,
  type HandshakeMessage,
  type HaveMessage,
  type Message,
  needsGeometry,
  type PieceMessage,
  type RejectCode,
  type RejectMessage,
  type RequestMessage,
  type TicketMessage,
  WireError,
} from "./messages.js";

export interface WireEvents {
  handshake: [HandshakeMessage];
  bitfield: [BitfieldMessage];
  have: [HaveMessage];
  request: [RequestMessage];
  piece: [PieceMessage];
  cancel: [CancelMessage];
  reject: [RejectMessage];
  ticket: [TicketMessage];
  "keep-alive": [];
  /** The peer-bound side has room again after a send returned false. */
  sendable: [];
  /** A WireError when the peer breaks the protocol; the wire is destroyed. */
  error: [Error];
}

export interface WireOptions {
  /** Largest frame accepted from the peer; default MAX_FRAME_LENGTH. */
  maxFrameLength?: number;
  /** Bytes queued towards the peer before sends return false (Node's default otherwise). */
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

type WriteCallback = (error?: Error | null) => void;

interface Held {
  frames: Iterator<Buffer>;
  msg: Message;
  callback: WriteCallback;
}

/**
 * The peer wire as a Duplex with no transport (like bittorrent-protocol): bytes
 * from the peer are written in, bytes for the peer are read out; pipe it to and
 * from a socket. Every send returns false once the peer-bound side is full:
 * then wait for `whenWritable()` (or 'sendable') so piece data never queues
 * without bound. A protocol breach destroys the wire with a WireError.
 */
export class Wire extends Duplex {
  /** Piece data handed to the peer-bound side. */
  bytesUploaded = 0;
  /** Piece data received from the peer. */
  bytesDownloaded = 0;

  private readonly decoder: FrameDecoder;
  private geometry: FileGeometry | null = null;
  private remoteHandshake: HandshakeMessage | null = null;
  // a message waiting for setFile(), with the rest of its chunk and the write it belongs to
  private held: Held | null = null;
  private blocked = false;
  private sendingEnded = false;
  private waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(options: WireOptions = {}) {
    super({
      // the peer's end of stream ends ours too: a wire is one connection
      allowHalfOpen: false,
      ...(options.readableHighWaterMark !== undefined && {
        readableHighWaterMark: options.readableHighWaterMark,
      }),
      ...(options.writableHighWaterMark !== undefined && {
        writableHighWaterMark: options.writableHighWaterMark,
      }),
    });
    this.decoder = new FrameDecoder({ maxFrameLength: options.maxFrameLength });
  }

  // typed listeners for our events; Duplex's own events keep their types
  override on<E extends keyof WireEvents>(event: E, listener: (...args: WireEvents[E]) => void): this;
  override on(...args: Parameters<Duplex["on"]>): this;
  override on(...args: Parameters<Duplex["on"]>): this {
    return super.on(...args);
  }

  override once<E extends keyof WireEvents>(event: E, listener: (...args: WireEvents[E]) => void): this;
  override once(...args: Parameters<Duplex["once"]>): this;
  override once(...args: Parameters<Duplex["once"]>): this {
    return super.once(...args);
  }

  /** The piece frame from the peer still arriving: where its data goes, and how much of it is here. */
  get arriving(): { piece: number; offset: number; received: number } | undefined {
    return this.decoder.arrivingPiece;
  }

  /** The peer's handshake, once received. */
  get peerHandshake(): HandshakeMessage | null {
    return this.remoteHandshake;
  }

  /** The file's geometry, once set. */
  get file(): FileGeometry | null {
    return this.geometry;
  }

  /**
   * Tells the wire the file's size, so piece indexes and ranges can be checked.
   * Messages that name pieces wait (the peer's bytes back up) until this is called.
   */
  setFile(file: { size: number }): void {
    if (this.geometry !== null) throw new Error("setFile called twice");
    this.geometry = fileGeometry(file.size);
    const held = this.held;
    if (held !== null && !this.destroyed) {
      this.held = null;
      this.consume(held.frames, held.msg, held.callback);
    }
  }

  handshake(fileId: Uint8Array, ticket: Uint8Array | string): boolean {
    return this.send(encodeHandshake(fileId, ticket));
  }

  bitfield(bits: Uint8Array): boolean {
    return this.send(encodeBitfield(bits));
  }

  have(piece: number): boolean {
    return this.send(encodeHave(piece));
  }

  request(piece: number, offset: number, length: number): boolean {
    return this.send(encodeRequest(piece, offset, length));
  }

  /** Queues the 13-byte header and then `data` itself: the data is not copied. */
  piece(piece: number, offset: number, data: Buffer): boolean {
    const header = encodePieceHeader(piece, offset, data.length);
    if (this.destroyed || this.sendingEnded) return false;
    // header and data go together whatever push says: a frame is never split by backpressure
    this.push(header);
    this.bytesUploaded += data.length;
    return this.send(data);
  }

  cancel(piece: number, offset: number, length: number): boolean {
    return this.send(encodeCancel(piece, offset, length));
  }

  reject(code: RejectCode, reason = ""): boolean {
    return this.send(encodeReject(code, reason));
  }

  /** A renewed ticket for this connection (after our handshake). */
  ticket(ticket: Uint8Array | string): boolean {
    return this.send(encodeTicket(ticket));
  }

  keepAlive(): boolean {
    return this.send(encodeKeepAlive());
  }

  /** Resolves when sends may continue; rejects with WireError CLOSED once the wire has ended. */
  whenWritable(): Promise<void> {
    if (this.destroyed || this.sendingEnded) {
      return Promise.reject(new WireError("CLOSED", "wire is closed"));
    }
    if (!this.blocked) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private send(buf: Buffer): boolean {
    if (this.destroyed || this.sendingEnded) return false;
    const ok = this.push(buf);
    if (!ok) this.blocked = true;
    return ok;
  }

  // the consumer (socket) wants more: release senders waiting on backpressure
  override _read(): void {
    if (!this.blocked) return;
    this.blocked = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve();
    this.emit("sendable");
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    this.consume(this.decoder.push(chunk), undefined, callback);
  }

  override _final(callback: WriteCallback): void {
    if (this.decoder.buffered > 0) {
      callback(new WireError("MALFORMED", "stream ended inside a frame"));
      return;
    }
    this.endSending();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.held = null;
    this.endSending();
    callback(error);
  }

  private endSending(): void {
    if (this.sendingEnded) return;
    this.sendingEnded = true;
    if (!this.destroyed) this.push(null);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(new WireError("CLOSED", "wire is closed"));
  }

  private consume(frames: Iterator<Buffer>, first: Message | undefined, callback: WriteCallback): void {
    let msg = first;
    for (;;) {
      if (msg === undefined) {
        try {
          const next = frames.next();
          if (next.done) break;
          msg = decodeMessage(next.value);
        } catch (error) {
          this.fail(error, callback);
          return;
        }
      }
      const verdict = this.admit(msg);
      if (verdict === "hold") {
        this.held = { frames, msg, callback };
        return;
      }
      if (verdict !== null) {
        this.fail(verdict, callback);
        return;
      }
      this.dispatch(msg);
      // a listener may have destroyed the wire: no events after that
      if (this.destroyed) break;
      msg = undefined;
    }
    callback();
  }

  // protocol state: handshake first and once; reject and keep-alive at any time
  private admit(msg: Message): WireError | "hold" | null {
    switch (msg.type) {
      case "handshake":
        if (this.remoteHandshake !== null) return new WireError("UNEXPECTED_MESSAGE", "second handshake");
        return null;
      case "reject":
      case "keep-alive":
        return null;
    }
    if (this.remoteHandshake === null) {
      return new WireError("UNEXPECTED_MESSAGE", `${msg.type} before handshake`);
    }
    if (!needsGeometry(msg)) return null;
    if (this.geometry === null) return "hold";
    return checkAgainstFile(msg, this.geometry);
  }

  private dispatch(msg: Message): void {
    switch (msg.type) {
      case "keep-alive":
        this.emit("keep-alive");
        return;
      case "handshake":
        this.remoteHandshake = msg;
        break;
      case "piece":
        this.bytesDownloaded += msg.data.length;
        break;
    }
    this.emit(msg.type, msg);
  }

  private fail(error: unknown, callback: WriteCallback): void {
    this.destroy(error instanceof Error ? error : new Error(String(error)));
    callback();
  }
}
