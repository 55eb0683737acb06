/**
 * Raw actors for the peer-access tests: a user speaking the tracker's HTTP API
 * without a client, a downloader and a rogue sharer speaking the peer wire
 * straight from the test, with every wait bounded.
 */
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import type { TicketClaims } from "../../src/shared/tickets.js";
import {
  decodeMessage,
  encodeHandshake,
  encodeRequest,
  encodeTicket,
  FrameDecoder,
  type Message,
  type RejectCode,
  Wire,
} from "../../src/wire/index.js";
import { WAIT_MS } from "../helpers/procs.js";
import { type TrackerAnswer, trackerCall } from "../helpers/tls.js";

export interface ApiError {
  status: number;
  code: string;
}

/** One user of the tracker's HTTP API, as a client other than ours would use it. */
export class ApiUser {
  token = "";
  constructor(
    readonly port: number,
    readonly userId: string,
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.#send(method, path, body);
    assert.ok(res.status < 300, `${this.userId}: ${method} ${path}: ${res.status} ${res.text}`);
    return res.body as T;
  }

  /** The error of a call that must fail. */
  async refused(method: string, path: string, body?: unknown): Promise<ApiError> {
    const res = await this.#send(method, path, body);
    assert.ok(res.status >= 300, `${this.userId}: ${method} ${path} should have failed`);
    return { status: res.status, code: res.code ?? "" };
  }

  #send(method: string, path: string, body: unknown): Promise<TrackerAnswer> {
    return trackerCall(this.port, { method, path, body, token: this.token || undefined, timeoutMs: WAIT_MS });
  }

  /** Creates the account and logs in, announcing `peerAddr` as where it serves. */
  static async create(port: number, userId: string, peerAddr = "127.0.0.1:9"): Promise<ApiUser> {
    const u = new ApiUser(port, userId);
    await u.call("POST", "/v1/users", { userId, password: `pw-${userId}` });
    const { token } = await u.call<{ token: string }>("POST", "/v1/sessions", {
      userId,
      password: `pw-${userId}`,
      peerAddr,
    });
    u.token = token;
    return u;
  }
}

export function claimsOf(ticket: string): TicketClaims {
  return JSON.parse(Buffer.from(ticket.split(".")[0]!, "base64url").toString("utf8")) as TicketClaims;
}

/**
 * A downloader on the raw wire: handshakes, then asks for one piece every
 * `paceMs` (the pieces in turn, over and over) for as long as the sharer serves:
 * a throttle, so that a download is still running when the test needs it to be.
 */
export class RawDownloader {
  readonly socket: Socket;
  readonly messages: Message[] = [];
  pieceBytes = 0;
  lastPieceAt = 0;
  closedAt = 0;
  readonly closed: Promise<void>;
  #pace: NodeJS.Timeout | undefined;
  #pieceWaiters: (() => void)[] = [];

  constructor(port: number, fileId: Buffer, ticket: string, pieceLengths: number[], paceMs: number) {
    this.socket = connect({ host: "127.0.0.1", port });
    this.socket.on("error", () => {});
    const decoder = new FrameDecoder();
    this.socket.on("data", (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        const m = decodeMessage(f);
        if (m.type === "piece") {
          this.pieceBytes += m.data.length;
          this.lastPieceAt = Date.now();
          this.messages.push({ ...m, data: Buffer.alloc(0) });
          for (const w of this.#pieceWaiters.splice(0)) w();
        } else this.messages.push(m);
        if (m.type === "bitfield" && this.#pace === undefined) {
          let next = 0;
          this.#pace = setInterval(() => {
            const piece = next++ % pieceLengths.length;
            this.socket.write(encodeRequest(piece, 0, pieceLengths[piece]!));
          }, paceMs);
        }
      }
    });
    this.closed = new Promise((resolve) =>
      this.socket.on("close", () => {
        this.closedAt = Date.now();
        clearInterval(this.#pace);
        resolve();
      }),
    );
    this.socket.write(encodeHandshake(fileId, ticket));
  }

  renew(ticket: string): void {
    this.socket.write(encodeTicket(ticket));
  }

  /** Resolves at the next piece; rejects if the connection closes or `timeoutMs` passes first. */
  nextPiece(timeoutMs = WAIT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no piece in time")), timeoutMs);
      this.#pieceWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      void this.closed.then(() => {
        clearTimeout(timer);
        reject(new Error(`closed: ${JSON.stringify(this.rejects())}`));
      });
    });
  }

  rejects(): { code: number; reason: string }[] {
    return this.messages.flatMap((m) => (m.type === "reject" ? [{ code: m.code, reason: m.reason }] : []));
  }

  close(): void {
    clearInterval(this.#pace);
    this.socket.destroy();
  }
}

/**
 * A rogue sharer: answers any handshake for any file of `size`, claims every piece,
 * serves only the pieces in `serve` (from `data`) and sits on the rest. It records
 * every ticket a downloader shows it, the handshake's and each renewal.
 */
export class RoguePeer {
  readonly server: Server;
  readonly tickets: string[] = [];
  /** the file id (hex) of every handshake */
  readonly fileIds: string[] = [];
  readonly #sockets = new Set<Socket>();
  #ticketWaiters: (() => void)[] = [];

  constructor(
    readonly size: number,
    readonly pieces: Buffer[],
    readonly serve: Set<number>,
    /** answer every handshake with this reject instead */
    readonly refuse?: { code: RejectCode; reason: string },
  ) {
    this.server = createServer((socket) => this.#accept(socket));
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(0, "127.0.0.1", () => {
        const a = this.server.address();
        resolve(typeof a === "object" && a ? a.port : 0);
      }),
    );
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => this.#sockets.delete(socket));
    const wire = new Wire();
    wire.on("error", () => socket.destroy());
    const seen = (t: Buffer) => {
      this.tickets.push(t.toString("utf8"));
      for (const w of this.#ticketWaiters.splice(0)) w();
    };
    wire.once("handshake", (m) => {
      this.fileIds.push(m.fileId.toString("hex"));
      seen(m.ticket);
      if (this.refuse) {
        wire.reject(this.refuse.code, this.refuse.reason);
        wire.end();
        return;
      }
      wire.setFile({ size: this.size });
      wire.handshake(m.fileId, "");
      const n = this.pieces.length;
      const bits = Buffer.alloc(Math.ceil(n / 8));
      for (let i = 0; i < n; i++) bits[i >> 3]! |= 0x80 >> (i & 7);
      wire.bitfield(bits);
    });
    wire.on("ticket", (m) => seen(m.ticket));
    wire.on("request", (m) => {
      if (this.serve.has(m.piece)) wire.piece(m.piece, 0, this.pieces[m.piece]!);
    });
    socket.pipe(wire).pipe(socket);
  }

  /** Resolves once at least `n` tickets have been shown (bounded). */
  async ticketsSeen(n: number, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.tickets.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`the rogue peer saw ${this.tickets.length} tickets, not ${n}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#ticketWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
