import { MAX_FILE_SIZE, PIECE_SIZE } from "../shared/constants.js";

/** The message id byte that follows every frame's length prefix. */
export const MessageId = {
  HANDSHAKE: 0,
  BITFIELD: 1,
  HAVE: 2,
  REQUEST: 3,
  PIECE: 4,
  CANCEL: 5,
  REJECT: 6,
  TICKET: 7,
} as const;
export type MessageId = (typeof MessageId)[keyof typeof MessageId];

/** Why a peer refuses; carried in `reject` (DESIGN.md "Peer wire"). */
export const RejectCode = {
  BAD_TICKET: 1,
  NOT_SHARED: 2,
  FILE_CHANGED: 3,
  BAD_REQUEST: 4,
  BUSY: 5,
  VERSION: 6,
  DONT_HAVE: 7,
} as const;
export type RejectCodeName = keyof typeof RejectCode;
export type RejectCode = (typeof RejectCode)[RejectCodeName];

const rejectNames = new Map<number, RejectCodeName>(
  Object.entries(RejectCode).map(([name, code]) => [code, name as RejectCodeName]),
);

export function isRejectCode(code: number): code is RejectCode {
  return rejectNames.has(code);
}

/** The registry name of a reject code, e.g. 1 → "BAD_TICKET" (for logs and messages). */
export function rejectCodeName(code: RejectCode): RejectCodeName {
  return rejectNames.get(code)!;
}

/** A reject's reason is for a human and a log line, so it is kept short. */
export const MAX_REJECT_REASON_LENGTH = 256;

export interface HandshakeMessage {
  type: "handshake";
  version: number;
  /** The file id (SHA1_LENGTH bytes): fileIdOf(size, piece hashes), never the whole-file SHA1. */
  fileId: Buffer;
  /** Empty in the serving peer's answer. */
  ticket: Buffer;
}
export interface BitfieldMessage {
  type: "bitfield";
  /** MSB-first: bit i is piece i; spare bits of the last byte are zero. */
  bits: Buffer;
}
export interface HaveMessage {
  type: "have";
  piece: number;
}
export interface RequestMessage {
  type: "request";
  piece: number;
  offset: number;
  length: number;
}
export interface PieceMessage {
  type: "piece";
  piece: number;
  offset: number;
  /** A view into the received bytes, not a copy. */
  data: Buffer;
}
export interface CancelMessage {
  type: "cancel";
  piece: number;
  offset: number;
  length: number;
}
export interface RejectMessage {
  type: "reject";
  code: RejectCode;
  reason: string;
}
/** A downloader's fresh ticket for the connection it is on (same user, group and file). */
export interface TicketMessage {
  type: "ticket";
  ticket: Buffer;
}
export interface KeepAliveMessage {
  type: "keep-alive";
}

export type Message =
  | HandshakeMessage
  | BitfieldMessage
  | HaveMessage
  | RequestMessage
  | PieceMessage
  | CancelMessage
  | RejectMessage
  | TicketMessage
  | KeepAliveMessage;

export const WIRE_ERROR_CODES = [
  "FRAME_TOO_LARGE", // length prefix above the bound: refused before buffering
  "MALFORMED", // a frame whose fields do not fit its id or the file
  "UNKNOWN_MESSAGE", // an id this version does not know
  "UNEXPECTED_MESSAGE", // a message before the handshake, or a second handshake
  "CLOSED", // waiting to send on a wire that has ended
] as const;
export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number];

/** A peer broke the protocol. Assert on `code`, never on the message. */
export class WireError extends Error {
  override readonly name = "WireError";
  constructor(
    readonly code: WireErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** What a wire needs to know to check piece indexes and ranges. */
export interface FileGeometry {
  readonly size: number;
  readonly pieceCount: number;
}

export function fileGeometry(size: number): FileGeometry {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE_SIZE) {
    throw new RangeError(`file size out of range: ${size}`);
  }
  return { size, pieceCount: Math.ceil(size / PIECE_SIZE) };
}

/** Every piece is PIECE_SIZE except the last. */
export function pieceLength(geometry: FileGeometry, piece: number): number {
  return piece === geometry.pieceCount - 1 ? geometry.size - piece * PIECE_SIZE : PIECE_SIZE;
}

/** Messages that name pieces and so cannot be checked until the file is known. */
export function needsGeometry(msg: Message): boolean {
  switch (msg.type) {
    case "bitfield":
    case "have":
    case "request":
    case "piece":
    case "cancel":
      return true;
    default:
      return false;
  }
}

/** Checks a decoded message against the file; returns the error rather than throwing (hot path). */
export function checkAgainstFile(msg: Message, geometry: FileGeometry): WireError | null {
  const n = geometry.pieceCount;
  switch (msg.type) {
    case "bitfield": {
      if (msg.bits.length !== Math.ceil(n / 8)) {
        return new WireError("MALFORMED", `bitfield of ${msg.bits.length} bytes for ${n} pieces`);
      }
      const spare = n % 8;
      if (spare !== 0 && (msg.bits[msg.bits.length - 1]! & (0xff >> spare)) !== 0) {
        return new WireError("MALFORMED", "bitfield has spare bits set");
      }
      return null;
    }
    case "have":
      return msg.piece < n ? null : new WireError("MALFORMED", `have ${msg.piece} of ${n} pieces`);
    case "request":
    case "cancel":
      return checkRange(msg.type, msg.piece, msg.offset, msg.length, geometry);
    case "piece":
      return checkRange(msg.type, msg.piece, msg.offset, msg.data.length, geometry);
    default:
      return null;
  }
}

function checkRange(
  type: string,
  piece: number,
  offset: number,
  length: number,
  geometry: FileGeometry,
): WireError | null {
  if (piece >= geometry.pieceCount) {
    return new WireError("MALFORMED", `${type} for piece ${piece} of ${geometry.pieceCount}`);
  }
  if (offset + length > pieceLength(geometry, piece)) {
    return new WireError("MALFORMED", `${type} ${offset}+${length} beyond piece ${piece}`);
  }
  return null;
}
