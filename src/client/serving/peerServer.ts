import type { KeyObject } from "node:crypto";
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { createSecureContext, type SecureContext, TLSSocket } from "node:tls";
import { PIECE_SIZE, WIRE_VERSION } from "../../shared/constants.js";
import { peerKeyOf } from "../../shared/peerKey.js";
import { type TicketClaims, verifyTicket } from "../../shared/tickets.js";
import { RELAYED_FRAGMENT, TLS_VERSION } from "../../shared/tlsPolicy.js";
import { type RequestMessage, RejectCode, Wire } from "../../wire/index.js";
import { type Clock, systemClock, type Timer } from "../peers/clock.js";
import { byPath, type PathKind } from "../peers/dialer.js";
import { REVERSED_ALPN, type Reversals } from "../peers/reversals.js";
import type { SpeedLimits } from "../limits/limits.js";
import { shareFor } from "./access.js";
import type { PeerIdentity } from "../peerIdentity.js";
import { identityOf, pieceLength, type ShareRegistry, type SharedFile, sameIdentity } from "./shares.js";

/**
 * Served slots: connections whose handshake carried a valid ticket for a file we
 * share. More are refused with BUSY (each holds a socket and a file handle).
 */
export const MAX_SERVED = 64;
/**
 * Served slots one user (the ticket's `u`) may hold: a downloader needs one per file
 * it downloads from us, so no one member can take every slot.
 */
export const MAX_SERVED_PER_USER = 8;
/**
 * Connections that have not yet shown a valid ticket have a pool of their own, so
 * they never hold a served slot. When it is full, the oldest is dropped for the
 * newcomer: a real downloader sends its handshake the moment it connects, so a
 * flood of idle sockets cannot keep it out.
 */
const MAX_PENDING = 32;
/**
 * Pending connections from one address at once, this host's own exempt (every
 * client on one machine connects from it). With 8 addresses at this cap the pool
 * is full, and their further connections are refused without evicting anyone.
 */
const MAX_PENDING_PER_ADDRESS = 4;
const THIS_HOST = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);
/**
 * A connection must complete its TLS handshake, then present its wire handshake,
 * each within this time. A downloader sends the wire handshake with its first bytes: on loopback the sharer read it 0.2 to 10 ms after the accept
 * (median 0.9 ms; 15 connections of the sharing and fault tests, on a busy 2-core box).
 * 3 s leaves room for a slow link.
 */
export const HANDSHAKE_TIMEOUT_MS = 3_000;
/** A connection that sends nothing for this long is closed (downloaders keep-alive every 30 s at most). */
const IDLE_TIMEOUT_MS = 120_000;
/** Requests queued per connection; a downloader pipelines fewer than this, a flood is refused. */
const MAX_QUEUED_REQUESTS = 32;
/**
 * Renewals closer together than this are refused: each costs a signature check, and a
 * downloader renews every TICKET_REFRESH_MS (3 s), never twice within half of it.
 */
export const MIN_RENEWAL_GAP_MS = 1_000;

/** What serving met that its user should hear of; serving goes on (or stops for that file). */
export type ServingWarning =
  | { kind: "peer-server"; message: string }
  /** the shared file changed on disk, or is shorter than shared: no longer shared */
  | { kind: "share-changed"; path: string }
  | { kind: "share-shorter"; path: string }
  | { kind: "serving-failed"; message: string };

export interface PeerServerOptions {
  shares: ShareRegistry;
  /** The trackers' ticket-checking key; undefined until login (then every handshake is refused). */
  publicKey: () => KeyObject | undefined;
  warn: (warning: ServingWarning) => void;
  /** ticket expiry, renewal gaps and handshake windows are read from it (the system clock unless a test brings one) */
  clock?: Clock;
  /** Downloads waiting to be dialled back: a connection offering REVERSED_ALPN goes to them, not to serving. */
  reversals?: Reversals;
  /**
   * The speed limits every connection runs under (none when absent): unplaced until its
   * ticket names the group; a reversal's goes to the download that asked.
   */
  limits?: SpeedLimits;
}

/** How a connection takes and gives back a served slot (the server keeps the counts). */
interface Slots {
  /** Takes a served slot for `user`; false when the server or the user is at its cap. */
  claim(user: string): boolean;
}

/**
 * Serves verified pieces to downloaders that present a valid ticket for a group
 * and file we share, for as long as they keep renewing it. Each piece is read from
 * disk when asked and sent under backpressure: memory is bounded by connections,
 * not by file size. Traffic only ever flows out on these connections.
 *
 * Every connection is TLS 1.3, and the downloader must present a certificate: its
 * key is the one a ticket names (`k`), checked with every ticket the connection
 * shows, so a ticket copied off one connection is worthless on another.
 */
export class PeerServer {
  readonly #opts: PeerServerOptions;
  readonly #clock: Clock;
  readonly #server: Server;
  #tls: SecureContext | undefined;
  readonly #sockets = new Set<Socket>();
  /** Connections without a served slot yet, oldest first (a Set keeps insertion order). */
  readonly #pending = new Set<Socket>();
  #served = 0;
  readonly #servedBy = new Map<string, number>();
  /** Connections past their TLS handshake, with how each was made (show_shares counts them). */
  readonly #connections = new Set<Connection>();

  constructor(opts: PeerServerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#server = createServer((socket) => this.#accept(socket));
    // every socket we keep is pending or served; one spare to accept (and evict for) a newcomer
    this.#server.maxConnections = MAX_SERVED + MAX_PENDING + 1;
  }

  /** Serves on host:port, proving `identity`'s key to downloaders. */
  listen(host: string, port: number, identity: PeerIdentity): Promise<void> {
    this.#tls = createSecureContext({ key: identity.key, cert: identity.cert, ...TLS_VERSION });
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen({ host, port, exclusive: true }, () => {
        this.#server.off("error", reject);
        this.#server.on("error", (err) => this.#opts.warn({ kind: "peer-server", message: err.message }));
        resolve();
      });
    });
  }

  /** How many connections serve each shared file now, by how they were made. */
  connectionsByFile(): Map<SharedFile, Record<PathKind, number>> {
    const by = new Map<SharedFile, Record<PathKind, number>>();
    for (const c of this.#connections) {
      const f = c.file;
      if (!f) continue;
      const counts = by.get(f) ?? byPath();
      counts[c.path]++;
      by.set(f, counts);
    }
    return by;
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === "object" && a ? a.port : 0;
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /**
   * Serves a stream that reached us another way than our port (a relay leg), as
   * the TLS server, like an accepted connection.
   */
  serveStream(stream: Socket, path: PathKind): void {
    this.#accept(stream, path);
  }

  /**
   * Serves a connection we dialled ourselves (a downloader asked us to dial it
   * back): TLS is up and `key` is what the downloader proved, as checked by the dial.
   */
  serveDialed(socket: TLSSocket, key: string): void {
    if (!this.#admit(socket, true)) return;
    this.#serve(socket, socket, key, "reversed");
  }

  /** Takes `tcp` into the pending pool; false when it was refused. */
  #admit(tcp: Socket, exempt: boolean): boolean {
    const from = tcp.remoteAddress ?? "";
    if (!exempt && !THIS_HOST.has(from)) {
      let same = 0;
      for (const s of this.#pending) if (s.remoteAddress === from) same++;
      if (same >= MAX_PENDING_PER_ADDRESS) {
        tcp.destroy();
        return false;
      }
    }
    if (this.#pending.size >= MAX_PENDING) {
      const oldest = this.#pending.values().next().value!;
      this.#pending.delete(oldest);
      oldest.destroy();
    }
    this.#sockets.add(tcp);
    this.#pending.add(tcp);
    tcp.setNoDelay(true);
    tcp.setTimeout(IDLE_TIMEOUT_MS, () => tcp.destroy());
    tcp.on("error", () => {}); // a peer resetting is routine; 'close' cleans up
    tcp.on("close", () => {
      this.#sockets.delete(tcp);
      this.#pending.delete(tcp);
    });
    return true;
  }

  #accept(tcp: Socket, path: PathKind = "direct"): void {
    // a relay leg comes from a tracker's address, shared by every relayed downloader
    if (!this.#admit(tcp, path === "relayed")) return;
    const limits = this.#opts.limits;
    const link = limits?.link(tcp);
    // no certificate is refused here: the wire's reject says why, once the handshake is over
    const socket = new TLSSocket(link ?? tcp, {
      isServer: true,
      secureContext: this.#tls,
      requestCert: true,
      rejectUnauthorized: false, // self-signed: its key is what a ticket names, checked below
      // a sharer dialling us back offers it; a downloader offers nothing
      ...(path === "direct" && this.#opts.reversals && { ALPNProtocols: [REVERSED_ALPN] }),
    });
    if (link) limits!.bind(socket, link);
    if (path === "relayed") socket.setMaxSendFragment(RELAYED_FRAGMENT);
    // a plaintext or TLS 1.2 attempt, or garbage: an error here, and the connection ends
    socket.on("error", () => tcp.destroy());
    const tlsTimer = this.#clock.after(HANDSHAKE_TIMEOUT_MS, () => tcp.destroy());
    tcp.on("close", () => tlsTimer.cancel());
    socket.once("secure", () => {
      tlsTimer.cancel();
      const cert = socket.getPeerX509Certificate();
      const key = cert ? peerKeyOf(cert) : undefined;
      if (socket.alpnProtocol === REVERSED_ALPN) {
        const take = key === undefined ? undefined : this.#opts.reversals?.take(key);
        if (!take) {
          tcp.destroy(); // nobody asked this key to dial us back
          return;
        }
        // the download owns it now: out of our pool and our close()
        this.#pending.delete(tcp);
        this.#sockets.delete(tcp);
        tcp.setTimeout(0);
        take(socket);
        return;
      }
      this.#serve(tcp, socket, key, path);
    });
  }

  /** A connection whose TLS handshake is over: `key` is the key its certificate holds, if it sent one. */
  #serve(tcp: Socket, socket: TLSSocket, key: string | undefined, path: PathKind): void {
    let user: string | undefined;
    const slots: Slots = {
      claim: (u) => {
        if (user !== undefined) return true;
        const mine = this.#servedBy.get(u) ?? 0;
        if (this.#served >= MAX_SERVED || mine >= MAX_SERVED_PER_USER) return false;
        user = u;
        this.#served++;
        this.#servedBy.set(u, mine + 1);
        this.#pending.delete(tcp);
        return true;
      },
    };
    const wire = new Wire();
    const conn = new Connection(this.#opts, this.#clock, socket, wire, slots, key, path);
    this.#connections.add(conn);
    tcp.on("close", () => {
      this.#connections.delete(conn);
      if (user !== undefined) {
        this.#served--;
        const left = this.#servedBy.get(user)! - 1;
        if (left === 0) this.#servedBy.delete(user);
        else this.#servedBy.set(user, left);
      }
      conn.close();
    });
    socket.pipe(wire).pipe(socket);
  }
}

/** One downloader's connection to us. */
class Connection {
  readonly #opts: PeerServerOptions;
  readonly #clock: Clock;
  readonly #socket: Socket;
  readonly #wire: Wire;
  readonly #slots: Slots;
  #file: SharedFile | undefined;
  /** The claims of the ticket this connection runs on: the handshake's, then each renewal's. */
  #claims: TicketClaims | undefined;
  /** Refuses the connection when its ticket expires without a renewal. */
  #expiry: Timer | undefined;
  #lastRenewal = 0;
  /** the shared file, opened once and checked to be the one verified (undefined: it was not) */
  #fh: Promise<FileHandle | undefined> | undefined;
  #queue: RequestMessage[] = [];
  #serving = false;
  #closed = false;
  readonly #onHave = (share: SharedFile, piece: number) => {
    if (share === this.#file) this.#wire.have(piece);
  };
  readonly #onRemoved = (share: SharedFile) => {
    if (share === this.#file) this.#refuse(RejectCode.NOT_SHARED, "no longer shared");
  };

  /** The key the other end proved in the TLS handshake; undefined when it sent no certificate. */
  readonly #peerKey: string | undefined;
  readonly path: PathKind;

  constructor(
    opts: PeerServerOptions,
    clock: Clock,
    socket: Socket,
    wire: Wire,
    slots: Slots,
    peerKey: string | undefined,
    path: PathKind,
  ) {
    this.path = path;
    this.#opts = opts;
    this.#clock = clock;
    this.#socket = socket;
    this.#wire = wire;
    this.#slots = slots;
    this.#peerKey = peerKey;
    const timer = clock.after(HANDSHAKE_TIMEOUT_MS, () =>
      this.#refuse(RejectCode.BAD_REQUEST, "no handshake"),
    );
    wire.once("handshake", (m) => {
      timer.cancel();
      void this.#handshake(m.version, m.fileId, m.ticket.toString("utf8"));
    });
    wire.on("ticket", (m) => this.#renew(m.ticket.toString("utf8")));
    wire.on("request", (m) => this.#request(m));
    wire.on("cancel", (m) => {
      this.#queue = this.#queue.filter(
        (r) => !(r.piece === m.piece && r.offset === m.offset && r.length === m.length),
      );
    });
    // a peer sending garbage: drop it, carry on. Once refused, what it sends after (a request
    // behind its handshake) errs as written after the wire's end: the refusal's own timer
    // closes it then, or the reject, still on its way down a speed-limited link, is lost
    wire.on("error", () => {
      if (!this.#closed) socket.destroy();
    });
    wire.on("close", () => timer.cancel());
  }

  #now(): number {
    return this.#clock.now();
  }

  /** The file served, once the handshake is through. */
  get file(): SharedFile | undefined {
    return this.#file;
  }

  async #handshake(version: number, fileId: Buffer, ticket: string): Promise<void> {
    if (version !== WIRE_VERSION)
      return this.#refuse(RejectCode.VERSION, `protocol version ${WIRE_VERSION} only`);
    const key = this.#opts.publicKey();
    if (!key) return this.#refuse(RejectCode.NOT_SHARED, "not logged in");
    const now = this.#now();
    const check = verifyTicket(key, ticket, now);
    if (!check.ok) return this.#refuse(RejectCode.BAD_TICKET, check.reason);
    const other = this.#otherKey(check.claims);
    if (other) return this.#refuse(RejectCode.BAD_TICKET, other);
    const access = shareFor(this.#opts.shares, check.claims, fileId.toString("hex"), now);
    if (!access.ok) return this.#refuse(access.code, access.reason);
    const file = access.share;
    if (!this.#slots.claim(check.claims.u)) {
      return this.#refuse(RejectCode.BUSY, "no free slot for this user now: try again later");
    }
    this.#setClaims(check.claims);
    this.#opts.limits?.placeServed(this.#socket, file.groupId);
    if (!(await this.#stillValid(file))) return;
    if (this.#closed) return;
    this.#file = file;
    this.#opts.shares.on("have", this.#onHave);
    this.#opts.shares.on("removed", this.#onRemoved);
    this.#wire.setFile({ size: file.size });
    this.#wire.handshake(fileId, "");
    this.#wire.bitfield(file.have.bytes);
  }

  /** A renewal must be a valid ticket for the same user, group and file, or the connection ends. */
  #renew(ticket: string): void {
    const held = this.#claims;
    if (!held || this.#closed) return; // refused already: its reject is on the way
    const now = this.#now();
    if (now - this.#lastRenewal < MIN_RENEWAL_GAP_MS) {
      this.#refuse(RejectCode.BAD_REQUEST, "renewals more often than once a second");
      return;
    }
    this.#lastRenewal = now;
    const key = this.#opts.publicKey();
    const check = key ? verifyTicket(key, ticket, now) : { ok: false as const, reason: "not logged in" };
    if (!check.ok) {
      this.#refuse(RejectCode.BAD_TICKET, `renewal: ${check.reason}`);
    } else if (check.claims.u !== held.u || check.claims.g !== held.g || check.claims.f !== held.f) {
      this.#refuse(RejectCode.BAD_TICKET, "renewal is for another user, group or file");
    } else if (this.#otherKey(check.claims)) {
      this.#refuse(RejectCode.BAD_TICKET, `renewal: ${this.#otherKey(check.claims)}`);
    } else {
      this.#setClaims(check.claims);
    }
  }

  /** Why a ticket is not this connection's: it names another key than the one proved. */
  #otherKey(claims: TicketClaims): string | undefined {
    if (this.#peerKey === undefined)
      return "no client certificate: a ticket is good only with the key it names";
    if (claims.k !== this.#peerKey) return "ticket is for another key than this connection's";
    return undefined;
  }

  #setClaims(claims: TicketClaims): void {
    this.#claims = claims;
    this.#expiry?.cancel();
    // +1: verifyTicket accepts a ticket up to and including its exp
    this.#expiry = this.#clock.after(Math.max(0, claims.exp - this.#now() + 1), () =>
      this.#refuse(RejectCode.BAD_TICKET, "ticket expired without a renewal"),
    );
  }

  /**
   * Checked before every piece: the ticket has not expired and the file is still
   * shared in the ticket's group. The timer alone would leave the pieces queued
   * before it fired.
   */
  #authorized(file: SharedFile): boolean {
    const claims = this.#claims;
    if (!claims) {
      this.#refuse(RejectCode.BAD_TICKET, "no ticket");
      return false;
    }
    const access = shareFor(this.#opts.shares, claims, file.fileId, this.#now());
    if (access.ok && access.share === file) return true;
    if (access.ok) this.#refuse(RejectCode.NOT_SHARED, "no longer shared");
    else this.#refuse(access.code, access.reason);
    return false;
  }

  /**
   * A changed or replaced file stops being shared, with a warning: it would serve
   * pieces that fail their SHA1, or another file's bytes.
   */
  async #stillValid(file: SharedFile): Promise<boolean> {
    if (await this.#opts.shares.unchanged(file, this.#now())) return true;
    this.#replaced(file);
    return false;
  }

  #replaced(file: SharedFile): void {
    if (this.#opts.shares.get(file.groupId, file.fileId) === file) {
      this.#opts.warn({ kind: "share-changed", path: file.path });
      this.#opts.shares.remove(file.groupId, file.fileId);
    }
    this.#refuse(RejectCode.FILE_CHANGED, "file changed on disk");
  }

  #request(m: RequestMessage): void {
    const file = this.#file;
    if (!file) {
      this.#refuse(RejectCode.BAD_REQUEST, "request before handshake");
      return;
    }
    if (!this.#authorized(file)) return;
    if (this.#queue.length >= MAX_QUEUED_REQUESTS) {
      this.#refuse(RejectCode.BUSY, "too many requests queued");
      return;
    }
    this.#queue.push(m);
    if (!this.#serving) void this.#serve();
  }

  /** Serves queued requests one at a time, waiting for the socket to drain between pieces. */
  async #serve(): Promise<void> {
    const file = this.#file;
    if (!file) return; // requests are queued only once the handshake set it
    this.#serving = true;
    try {
      for (let m = this.#queue.shift(); m !== undefined && !this.#closed; m = this.#queue.shift()) {
        if (!this.#authorized(file)) return;
        if (!file.have.has(m.piece)) {
          this.#wire.reject(RejectCode.DONT_HAVE, `piece ${m.piece} not here yet`);
          continue;
        }
        if (!(await this.#stillValid(file))) return;
        this.#fh ??= openVerified(file);
        const fh = await this.#fh;
        if (!fh) return this.#replaced(file);
        // a fresh buffer per piece: the socket may hold it after we move on, and
        // backpressure below bounds how many are alive per connection (about two)
        const data = Buffer.allocUnsafe(m.length);
        const at = m.piece * PIECE_SIZE + m.offset;
        if (m.offset + m.length > pieceLength(file.size, m.piece)) {
          return this.#refuse(RejectCode.BAD_REQUEST, "request beyond the piece");
        }
        const { bytesRead } = await fh.read(data, 0, m.length, at);
        // the read took time: the ticket may have expired meanwhile
        if (this.#closed || !this.#authorized(file)) return;
        if (bytesRead !== m.length) {
          this.#opts.warn({ kind: "share-shorter", path: file.path });
          this.#opts.shares.remove(file.groupId, file.fileId);
          return;
        }
        this.#wire.piece(m.piece, m.offset, data);
        file.servedBytes += m.length;
        await this.#wire.whenWritable();
      }
    } catch (err) {
      if (!this.#closed) this.#opts.warn({ kind: "serving-failed", message: (err as Error).message });
      this.#socket.destroy();
    } finally {
      this.#serving = false;
    }
  }

  #refuse(code: RejectCode, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#expiry?.cancel();
    this.#queue = [];
    this.#wire.reject(code, reason);
    this.#wire.end();
    // bounded: a peer that never reads its reject is cut off
    setTimeout(() => this.#socket.destroy(), 2_000).unref();
  }

  close(): void {
    this.#expiry?.cancel();
    this.#opts.shares.off("have", this.#onHave);
    this.#opts.shares.off("removed", this.#onRemoved);
    void this.#fh?.then((fh) => fh?.close()).catch(() => {});
    this.#fh = undefined;
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#wire.destroy();
  }
}

/**
 * The shared file opened for reading, if the descriptor is the file that was
 * verified: a path replaced since (by a rename, or another user in a folder they
 * can write) opens another file, and none of its bytes are served. Reads then come
 * from this descriptor, whatever the path names later.
 */
async function openVerified(file: SharedFile): Promise<FileHandle | undefined> {
  // O_NONBLOCK: a FIFO put at the path must not hold a thread waiting for a writer
  const fh = await open(file.path, constants.O_RDONLY | constants.O_NONBLOCK);
  const st = await fh.stat().catch(() => undefined);
  if (st?.isFile() && sameIdentity(identityOf(st), file.identity)) return fh;
  await fh.close().catch(() => {});
  return undefined;
}
