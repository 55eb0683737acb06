import {
  MAX_FRAME_LENGTH,
  MAX_TICKET_LENGTH,
  PIECE_SIZE,
  SHA1_LENGTH,
  WIRE_VERSION,
} from "../shared/constants.js";
import {
  isRejectCode,
  MAX_REJECT_REASON_LENGTH,
  type Message,
  MessageId,
  type RejectCode,
  WireError,
} from "./messages.js";

// Every frame is <len u32><id u8><payload>, big-endian; len counts id + payload; len 0 is a keep-alive.
const LEN = 4;
const HANDSHAKE_FIXED = 1 + 1 + SHA1_LENGTH + 2;
/** Bytes before the data in a `piece` frame, length prefix included. */
export const PIECE_HEADER_LENGTH = LEN + 9;

// Encoding checks our own arguments: a bad one is a bug here, not the peer's fault, so RangeError.
function u32(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`${name} is not a u32: ${value}`);
  }
  return value;
}

function blockLength(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > PIECE_SIZE) {
    throw new RangeError(`${name} must be 1..${PIECE_SIZE}: ${value}`);
  }
  return value;
}

// <len=0000>
export function encodeKeepAlive(): Buffer {
  return Buffer.alloc(LEN);
}

// <len=0024+t><id=0><version><fileId x20><ticketLen u16><ticket>
export function encodeHandshake(
  fileId: Uint8Array,
  ticket: Uint8Array | string,
  version: number = WIRE_VERSION,
): Buffer {
  if (fileId.length !== SHA1_LENGTH) throw new RangeError(`fileId must be ${SHA1_LENGTH} bytes`);
  if (!Number.isInteger(version) || version < 0 || version > 0xff)
    throw new RangeError("version is not a u8");
  const t = typeof ticket === "string" ? Buffer.from(ticket, "utf8") : ticket;
  if (t.length > MAX_TICKET_LENGTH) throw new RangeError(`ticket longer than ${MAX_TICKET_LENGTH} bytes`);
  const buf = Buffer.allocUnsafe(LEN + HANDSHAKE_FIXED + t.length);
  buf.writeUInt32BE(HANDSHAKE_FIXED + t.length, 0);
  buf[4] = MessageId.HANDSHAKE;
  buf[5] = version;
  buf.set(fileId, 6);
  buf.writeUInt16BE(t.length, 6 + SHA1_LENGTH);
  buf.set(t, LEN + HANDSHAKE_FIXED);
  return buf;
}

// <len=0001+b><id=1><bits>
export function encodeBitfield(bits: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(LEN + 1 + bits.length);
  buf.writeUInt32BE(1 + bits.length, 0);
  buf[4] = MessageId.BITFIELD;
  buf.set(bits, 5);
  return buf;
}

// <len=0005><id=2><piece>
export function encodeHave(piece: number): Buffer {
  const buf = Buffer.allocUnsafe(LEN + 5);
  buf.writeUInt32BE(5, 0);
  buf[4] = MessageId.HAVE;
  buf.writeUInt32BE(u32("piece", piece), 5);
  return buf;
}

// <len=0013><id=3|5><piece><offset><length>
function encodeRange(id: MessageId, piece: number, offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(LEN + 13);
  buf.writeUInt32BE(13, 0);
  buf[4] = id;
  buf.writeUInt32BE(u32("piece", piece), 5);
  buf.writeUInt32BE(u32("offset", offset), 9);
  buf.writeUInt32BE(blockLength("length", length), 13);
  return buf;
}

// <len=0013><id=3><piece><offset><length>
export function encodeRequest(piece: number, offset: number, length: number): Buffer {
  return encodeRange(MessageId.REQUEST, piece, offset, length);
}

// <len=0009+n><id=4><piece><offset> — the n data bytes follow, written by the caller (no copy)
export function encodePieceHeader(piece: number, offset: number, dataLength: number): Buffer {
  const buf = Buffer.allocUnsafe(PIECE_HEADER_LENGTH);
  buf.writeUInt32BE(9 + blockLength("data length", dataLength), 0);
  buf[4] = MessageId.PIECE;
  buf.writeUInt32BE(u32("piece", piece), 5);
  buf.writeUInt32BE(u32("offset", offset), 9);
  return buf;
}

// <len=0013><id=5><piece><offset><length>
export function encodeCancel(piece: number, offset: number, length: number): Buffer {
  return encodeRange(MessageId.CANCEL, piece, offset, length);
}

// <len=0002+r><id=6><code u8><utf8 reason, at most 256 bytes>
export function encodeReject(code: RejectCode, reason = ""): Buffer {
  if (!isRejectCode(code)) throw new RangeError(`unknown reject code ${code}`);
  let r = Buffer.from(reason, "utf8");
  if (r.length > MAX_REJECT_REASON_LENGTH) {
    // cut on a character boundary: back off over UTF-8 continuation bytes
    let end = MAX_REJECT_REASON_LENGTH;
    while (end > 0 && (r[end]! & 0xc0) === 0x80) end--;
    r = r.subarray(0, end);
  }
  const buf = Buffer.allocUnsafe(LEN + 2 + r.length);
  buf.writeUInt32BE(2 + r.length, 0);
  buf[4] = MessageId.REJECT;
  buf[5] = code;
  buf.set(r, 6);
  return buf;
}

// <len=0001+t><id=7><ticket, at most MAX_TICKET_LENGTH bytes>
export function encodeTicket(ticket: Uint8Array | string): Buffer {
  const t = typeof ticket === "string" ? Buffer.from(ticket, "utf8") : ticket;
  if (t.length === 0 || t.length > MAX_TICKET_LENGTH)
    throw new RangeError(`ticket must be 1..${MAX_TICKET_LENGTH} bytes`);
  const buf = Buffer.allocUnsafe(LEN + 1 + t.length);
  buf.writeUInt32BE(1 + t.length, 0);
  buf[4] = MessageId.TICKET;
  buf.set(t, 5);
  return buf;
}

const KEEP_ALIVE_FRAME = Buffer.alloc(0);

export interface FrameDecoderOptions {
  /** Largest accepted `len` (id + payload); default MAX_FRAME_LENGTH. */
  maxFrameLength?: number;
}

/**
 * Splits a byte stream into frames (id + payload, without the length prefix;
 * a keep-alive is an empty frame). Holds at most one partial frame: its body
 * buffer is allocated once the length is known and checked, and chunks are
 * copied into it once; a frame lying whole inside a chunk is a view of it.
 */
export class FrameDecoder {
  readonly maxFrameLength: number;
  private readonly header = Buffer.alloc(LEN);
  private headerFilled = 0;
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private failed: WireError | null = null;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameLength = options.maxFrameLength ?? MAX_FRAME_LENGTH;
  }

  /** Bytes of the current partial frame held (0 between frames). */
  get buffered(): number {
    return this.headerFilled + this.bodyFilled;
  }

  /** The partial frame's piece and offset, once a piece frame's are in; undefined otherwise. */
  get arrivingPiece(): { piece: number; offset: number; received: number } | undefined {
    const body = this.body;
    if (body === null || this.bodyFilled < 9 || body[0] !== MessageId.PIECE) return undefined;
    return { piece: body.readUInt32BE(1), offset: body.readUInt32BE(5), received: this.bodyFilled - 9 };
  }

  /**
   * Yields the complete frames in `chunk`, throwing WireError FRAME_TOO_LARGE on
   * an oversized length prefix before any of its body is kept. Iterate to the
   * end (or stop using the decoder): state advances as frames are yielded.
   */
  *push(chunk: Buffer): Generator<Buffer, void, undefined> {
    if (this.failed) throw this.failed;
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      let body = this.body;
      if (body === null) {
        let len: number;
        if (this.headerFilled === 0 && end - pos >= LEN) {
          len = chunk.readUInt32BE(pos);
          pos += LEN;
        } else {
          const n = chunk.copy(
            this.header,
            this.headerFilled,
            pos,
            Math.min(end, pos + LEN - this.headerFilled),
          );
          pos += n;
          this.headerFilled += n;
          if (this.headerFilled < LEN) return;
          this.headerFilled = 0;
          len = this.header.readUInt32BE(0);
        }
        if (len > this.maxFrameLength) {
          this.failed = new WireError(
            "FRAME_TOO_LARGE",
            `frame of ${len} bytes exceeds ${this.maxFrameLength}`,
          );
          throw this.failed;
        }
        if (len === 0) {
          yield KEEP_ALIVE_FRAME;
          continue;
        }
        if (end - pos >= len) {
          // fast path: the whole frame is in this chunk
          pos += len;
          yield chunk.subarray(pos - len, pos);
          continue;
        }
        body = this.body = Buffer.allocUnsafe(len);
        this.bodyFilled = 0;
      }
      const n = chunk.copy(body, this.bodyFilled, pos, Math.min(end, pos + body.length - this.bodyFilled));
      pos += n;
      this.bodyFilled += n;
      if (this.bodyFilled === body.length) {
        this.body = null;
        this.bodyFilled = 0;
        yield body;
      }
    }
  }
}

function malformed(what: string): WireError {
  return new WireError("MALFORMED", what);
}

/** Decodes one frame from FrameDecoder; checks every length exactly. Views, not copies, except the handshake. */
export function decodeMessage(frame: Buffer): Message {
  if (frame.length === 0) return { type: "keep-alive" };
  const size = frame.length;
  switch (frame[0]) {
    case MessageId.HANDSHAKE: {
      if (size < HANDSHAKE_FIXED) throw malformed("truncated handshake");
      const ticketLength = frame.readUInt16BE(2 + SHA1_LENGTH);
      if (ticketLength > MAX_TICKET_LENGTH) throw malformed("ticket too long");
      if (size !== HANDSHAKE_FIXED + ticketLength)
        throw malformed("handshake length does not match its ticket");
      return {
        type: "handshake",
        version: frame[1]!,
        // copied: small, and kept for the connection's life, so don't pin the chunk they came in
        fileId: Buffer.from(frame.subarray(2, 2 + SHA1_LENGTH)),
        ticket: Buffer.from(frame.subarray(HANDSHAKE_FIXED)),
      };
    }
    case MessageId.BITFIELD:
      return { type: "bitfield", bits: frame.subarray(1) };
    case MessageId.HAVE:
      if (size !== 5) throw malformed("have must be 5 bytes");
      return { type: "have", piece: frame.readUInt32BE(1) };
    case MessageId.REQUEST:
    case MessageId.CANCEL: {
      if (size !== 13) throw malformed("request/cancel must be 13 bytes");
      const length = frame.readUInt32BE(9);
      if (length < 1 || length > PIECE_SIZE) throw malformed(`block length ${length}`);
      return {
        type: frame[0] === MessageId.REQUEST ? "request" : "cancel",
        piece: frame.readUInt32BE(1),
        offset: frame.readUInt32BE(5),
        length,
      };
    }
    case MessageId.PIECE:
      if (size < 10 || size > 9 + PIECE_SIZE) throw malformed(`piece data of ${size - 9} bytes`);
      return {
        type: "piece",
        piece: frame.readUInt32BE(1),
        offset: frame.readUInt32BE(5),
        data: frame.subarray(9),
      };
    case MessageId.REJECT: {
      if (size < 2 || size > 2 + MAX_REJECT_REASON_LENGTH) throw malformed("reject length");
      const code = frame[1]!;
      if (!isRejectCode(code)) throw malformed(`unknown reject code ${code}`);
      return { type: "reject", code, reason: frame.toString("utf8", 2) };
    }
    case MessageId.TICKET:
      if (size < 2 || size > 1 + MAX_TICKET_LENGTH) throw malformed("ticket length");
      // copied: kept for the connection's life, like the handshake's
      return { type: "ticket", ticket: Buffer.from(frame.subarray(1)) };
    default:
      throw new WireError("UNKNOWN_MESSAGE", `unknown message id ${frame[0]}`);
  }
}
