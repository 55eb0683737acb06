import type { KeyObject } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { PIECE_SIZE, SHA1_LENGTH, WIRE_VERSION } from "../shared/constants.js";
import { verifyTicket } from "../shared/tickets.js";
import { type RequestMessage, RejectCode, Wire } from "../wire/index.js";
import { pieceLength, type ShareRegistry, type SharedFile } from "./shares.js";

/** Connections served at once; more are refused with BUSY (each holds a socket and a file handle). */
const MAX_CONNECTIONS = 64;
/**
 * Connections from one address at once: a downloader needs one per file, so no one
 * host can take every slot. This host's own address is exempt: clients on one
 * machine (a demo, the tests) all connect from it.
 */
const MAX_CONNECTIONS_PER_ADDRESS = 8;
const THIS_HOST = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);
/** A connection must present its handshake within this time. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A connection that sends nothing for this long is closed (downloaders keep-alive every 30 s at most). */
const IDLE_TIMEOUT_MS = 120_000;
/** Requests queued per connection; a downloader pipelines fewer than this, a flood is refused. */
const MAX_QUEUED_REQUESTS = 32;

export interface PeerServerOptions {
  shares: ShareRegistry;
  /** The trackers' ticket-checking key; undefined until login (then every handshake is refused). */
  publicKey: () => KeyObject | undefined;
  warn: (line: string) => void;
  now?: () => number;
}

/**
 * Serves verified pieces to downloaders that present a valid ticket for a group
 * and file we share. Each piece is read from disk when asked and sent under
 * backpressure: memory is bounded by connections, not by file size. Traffic
 * only ever flows out on these connections.
 */
export class PeerServer {
  readonly #opts: PeerServerOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(opts: PeerServerOptions) {
    this.#opts = opts;
    this.#server = createServer((socket) => this.#accept(socket));
    this.#server.maxConnections = MAX_CONNECTIONS;
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen({ host, port, exclusive: true }, () => {
        this.#server.off("error", reject);
        this.#server.on("error", (err) => this.#opts.warn(`warning: peer server: ${err.message}`));
        resolve();
      });
    });
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === "object" && a ? a.port : 0;
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    const from = socket.remoteAddress ?? "";
    if (!THIS_HOST.has(from)) {
      let same = 0;
      for (const s of this.#sockets) if (s.remoteAddress === from) same++;
      if (same >= MAX_CONNECTIONS_PER_ADDRESS) {
        socket.destroy();
        return;
      }
    }
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    const wire = new Wire();
    const conn = new Connection(this.#opts, socket, wire);
    socket.on("error", () => {}); // a peer resetting is routine; 'close' cleans up
    socket.on("close", () => {
      this.#sockets.delete(socket);
      conn.close();
    });
    socket.pipe(wire).pipe(socket);
  }
}

/** One downloader's connection to us. */
class Connection {
  readonly #opts: PeerServerOptions;
  readonly #socket: Socket;
  readonly #wire: Wire;
  #file: SharedFile | undefined;
  #fh: Promise<FileHandle> | undefined;
  #queue: RequestMessage[] = [];
  #serving = false;
  #closed = false;
  readonly #onHave = (sha1: string, piece: number) => {
    if (sha1 === this.#file?.sha1) this.#wire.have(piece);
  };
  readonly #onRemoved = (sha1: string) => {
    if (sha1 === this.#file?.sha1) this.#refuse(RejectCode.NOT_SHARED, "no longer shared");
  };

  constructor(opts: PeerServerOptions, socket: Socket, wire: Wire) {
    this.#opts = opts;
    this.#socket = socket;
    this.#wire = wire;
    const timer = setTimeout(
      () => this.#refuse(RejectCode.BAD_REQUEST, "no handshake"),
      HANDSHAKE_TIMEOUT_MS,
    );
    wire.once("handshake", (m) => {
      clearTimeout(timer);
      void this.#handshake(m.version, m.fileId, m.ticket.toString("utf8"));
    });
    wire.on("request", (m) => this.#request(m));
    wire.on("cancel", (m) => {
      this.#queue = this.#queue.filter(
        (r) => !(r.piece === m.piece && r.offset === m.offset && r.length === m.length),
      );
    });
    wire.on("error", () => socket.destroy()); // a peer sending garbage: drop it, carry on
    wire.on("close", () => clearTimeout(timer));
  }

  async #handshake(version: number, fileId: Buffer, ticket: string): Promise<void> {
    if (version !== WIRE_VERSION)
      return this.#refuse(RejectCode.VERSION, `protocol version ${WIRE_VERSION} only`);
    const key = this.#opts.publicKey();
    if (!key) return this.#refuse(RejectCode.NOT_SHARED, "not logged in");
    const now = (this.#opts.now ?? Date.now)();
    const check = verifyTicket(key, ticket, now);
    const sha1 = fileId.toString("hex");
    if (!check.ok) return this.#refuse(RejectCode.BAD_TICKET, check.reason);
    if (check.claims.f !== sha1 || fileId.length !== SHA1_LENGTH) {
      return this.#refuse(RejectCode.BAD_TICKET, "ticket is for another file");
    }
    const file = this.#opts.shares.get(sha1);
    if (!file?.groups.has(check.claims.g)) {
      return this.#refuse(RejectCode.NOT_SHARED, "file not shared in that group here");
    }
    if (!(await this.#stillValid(file))) return;
    if (this.#closed) return;
    this.#file = file;
    this.#opts.shares.on("have", this.#onHave);
    this.#opts.shares.on("removed", this.#onRemoved);
    this.#wire.setFile({ size: file.size });
    this.#wire.handshake(fileId, "");
    this.#wire.bitfield(file.have.bytes);
  }

  /** A changed file stops being shared, with a warning: it would serve pieces that fail their SHA1. */
  async #stillValid(file: SharedFile): Promise<boolean> {
    if (await this.#opts.shares.unchanged(file)) return true;
    if (this.#opts.shares.get(file.sha1) === file) {
      this.#opts.warn(`warning: ${file.path} changed on disk since it was shared: no longer sharing it`);
      this.#opts.shares.remove(file.sha1);
    }
    this.#refuse(RejectCode.FILE_CHANGED, "file changed on disk");
    return false;
  }

  #request(m: RequestMessage): void {
    if (!this.#file) {
      this.#refuse(RejectCode.BAD_REQUEST, "request before handshake");
      return;
    }
    if (this.#queue.length >= MAX_QUEUED_REQUESTS) {
      this.#refuse(RejectCode.BUSY, "too many requests queued");
      return;
    }
    this.#queue.push(m);
    if (!this.#serving) void this.#serve();
  }

  /** Serves queued requests one at a time, waiting for the socket to drain between pieces. */
  async #serve(): Promise<void> {
    this.#serving = true;
    try {
      while (!this.#closed && this.#queue.length > 0) {
        const m = this.#queue.shift()!;
        const file = this.#file!;
        if (!file.have.has(m.piece)) {
          this.#wire.reject(RejectCode.DONT_HAVE, `piece ${m.piece} not here yet`);
          continue;
        }
        if (!(await this.#stillValid(file))) return;
        this.#fh ??= open(file.path, "r");
        const fh = await this.#fh;
        // a fresh buffer per piece: the socket may hold it after we move on, and
        // backpressure below bounds how many are alive per connection (about two)
        const data = Buffer.allocUnsafe(m.length);
        const at = m.piece * PIECE_SIZE + m.offset;
        if (m.offset + m.length > pieceLength(file.size, m.piece)) {
          return this.#refuse(RejectCode.BAD_REQUEST, "request beyond the piece");
        }
        const { bytesRead } = await fh.read(data, 0, m.length, at);
        if (this.#closed) return;
        if (bytesRead !== m.length) {
          this.#opts.warn(`warning: ${file.path} is shorter than shared: no longer sharing it`);
          this.#opts.shares.remove(file.sha1);
          return;
        }
        this.#wire.piece(m.piece, m.offset, data);
        file.servedBytes += m.length;
        await this.#wire.whenWritable();
      }
    } catch (err) {
      if (!this.#closed) this.#opts.warn(`warning: serving a peer failed: ${(err as Error).message}`);
      this.#socket.destroy();
    } finally {
      this.#serving = false;
    }
  }

  #refuse(code: RejectCode, reason: string): void {
    if (this.#closed) return;
    this.#wire.reject(code, reason);
    this.#wire.end();
    // bounded: a peer that never reads its reject is cut off
    setTimeout(() => this.#socket.destroy(), 2_000).unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#opts.shares.off("have", this.#onHave);
    this.#opts.shares.off("removed", this.#onRemoved);
    this.#wire.destroy();
    void this.#fh?.then((fh) => fh.close()).catch(() => {});
  }
}
