import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import { RELAY_PROTOCOL } from "../shared/api.js";
import { FairShare, type ShareLimits } from "./fairShare.js";

/** How much the relay may carry; the README's Limits list the defaults. */
export interface RelayLimits {
  /** Bytes per second through this tracker's relay, all circuits together. */
  totalRate: number;
  /** Bytes per second one user's circuits carry (each byte counts for its sender and its receiver). */
  userRate: number;
  /** Circuits open or waiting: per downloader, per sharer, per pair, on this tracker. */
  circuits: ShareLimits;
  /** A circuit that carries nothing for this long is closed. */
  idleMs: number;
  /** A circuit whose second leg has not come within this time is dropped. */
  pairMs: number;
}

const MBIT = 1_000_000 / 8;
export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  totalRate: 200 * MBIT,
  userRate: 40 * MBIT,
  // a download keeps one circuit per sharer it cannot reach otherwise (8 sharers at most);
  // one downloader holds at most a quarter of a sharer's circuits
  circuits: { perRequester: 8, perSharer: 16, perPair: 4, total: 256 },
  idleMs: 60_000,
  pairMs: 10_000,
};

/** A token bucket that may go into debt: `take` says how long the sender must then wait. */
export class Bucket {
  #tokens: number;
  #at: number;
  constructor(
    readonly rate: number,
    now: number,
  ) {
    // a quarter second of burst: smooth enough for TCP, small enough to hold the rate
    this.#tokens = rate / 4;
    this.#at = now;
  }

  /** Takes `n` bytes; the ms until the bucket is out of debt again (0: go on). */
  take(n: number, now: number): number {
    this.#tokens = Math.min(this.rate / 4, this.#tokens + ((now - this.#at) * this.rate) / 1000);
    this.#at = now;
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.rate;
  }
}

type Side = "downloader" | "sharer";

/**
 * Bytes a direction may queue for its receiving leg before the sending leg is paused:
 * four full TLS records, so a circuit holds at most this much per direction in the
 * relay's memory on top of the sockets' own buffers.
 */
const MAX_QUEUED = 64 * 1024;

/**
 * A circuit another member may take (#makeRoom) is one still waiting for a leg, or one
 * that has carried nothing for this long: a transfer under way is never cut for it, so a
 * member cannot kill others' transfers by taking their circuits over and over.
 */
const EVICT_IDLE_MS = 5_000;

interface Circuit {
  readonly id: string;
  readonly users: Record<Side, string>;
  readonly legs: Partial<Record<Side, { socket: Duplex; head: Buffer }>>;
  readonly timer: NodeJS.Timeout;
  paired: boolean;
  /** the idle check, once paired */
  idle?: NodeJS.Timeout;
  /** when the circuit last carried a byte */
  active: number;
}

/** Circuits the relay has joined (the tests read it). */
export interface RelayStats {
  circuits: number;
}

/**
 * The trackers' relay, the last resort when two members have no direct path: each
 * member opens one leg (its HTTPS connection to this tracker, upgraded), and the
 * relay joins the two legs of a circuit and carries bytes both ways. The bytes are
 * the members' own TLS, end to end with the keys the tracker handed out: the relay
 * host sees neither file names, tickets nor file bytes. Only the two users a
 * circuit was opened for (a member with a valid grant and a sharer of the file) can
 * join it; circuits, rates and idle time are bounded.
 */
export class Relay {
  readonly #limits: RelayLimits;
  readonly #now: () => number;
  readonly #circuits = new Map<string, Circuit>();
  readonly #share: FairShare;
  /** each user's rate bucket, held by the circuits naming the user */
  readonly #perUser = new Map<string, { circuits: number; bucket: Bucket }>();
  readonly #total: Bucket;
  readonly stats: RelayStats = { circuits: 0 };

  constructor(limits: Partial<RelayLimits> = {}, now: () => number = Date.now) {
    this.#limits = { ...DEFAULT_RELAY_LIMITS, ...limits };
    this.#share = new FairShare(this.#limits.circuits, "relay circuits");
    this.#now = now;
    this.#total = new Bucket(this.#limits.totalRate, now());
  }

  /**
   * A new circuit between a downloader and a sharer; its id is the secret both legs name.
   * When the sharer's circuits are all that stands in the way, one held beyond its fair
   * share is closed for a downloader that has fewer (#makeRoom).
   */
  open(downloader: string, sharer: string): string {
    if (this.#share.full(downloader, sharer) === "sharer") this.#makeRoom(downloader, sharer);
    this.#share.take(downloader, sharer);
    const id = randomBytes(16).toString("hex");
    const timer = setTimeout(() => this.#close(id), this.#limits.pairMs);
    timer.unref();
    this.#circuits.set(id, { id, users: { downloader, sharer }, legs: {}, timer, paired: false, active: 0 });
    for (const u of [downloader, sharer]) {
      const entry = this.#perUser.get(u) ?? {
        circuits: 0,
        bucket: new Bucket(this.#limits.userRate, this.#now()),
      };
      entry.circuits++;
      this.#perUser.set(u, entry);
    }
    return id;
  }

  /**
   * `userId` (authenticated by its session) brings a leg of circuit `id`: the socket
   * its upgrade request came on, and any bytes read past the request. Refused with
   * an HTTP status when the circuit is unknown, not the user's, or already has this leg.
   */
  join(id: string, userId: string, socket: Duplex, head: Buffer): void {
    const c = this.#circuits.get(id);
    const side: Side | undefined =
      c?.users.downloader === userId ? "downloader" : c?.users.sharer === userId ? "sharer" : undefined;
    if (!c || !side) {
      refuse(socket, 404, "no such circuit");
      return;
    }
    if (c.legs[side]) {
      refuse(socket, 409, "that leg is here already");
      return;
    }
    c.legs[side] = { socket, head };
    socket.on("error", () => this.#close(id));
    socket.on("close", () => this.#close(id));
    const { downloader: d, sharer: s } = c.legs;
    if (d && s) this.#pair(c, d, s);
  }

  #pair(c: Circuit, d: { socket: Duplex; head: Buffer }, s: { socket: Duplex; head: Buffer }): void {
    clearTimeout(c.timer);
    c.paired = true;
    this.stats.circuits++;
    const answer = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RELAY_PROTOCOL}\r\n\r\n`;
    d.socket.write(answer);
    s.socket.write(answer);
    // the circuit holds its users' entries (they go with its #close), so the buckets stay put
    const bucket = (u: string) => this.#perUser.get(u)!.bucket;
    const buckets = [this.#total, bucket(c.users.downloader), bucket(c.users.sharer)];
    this.#carry(c, d.socket, s.socket, buckets, d.head);
    this.#carry(c, s.socket, d.socket, buckets, s.head);
    this.#watchIdle(c);
  }

  /**
   * Closes `c` once it has carried nothing for idleMs. One timer per circuit, checked
   * against the time of its last batch, instead of socket timeouts that every read
   * and write of both legs would refresh.
   */
  #watchIdle(c: Circuit): void {
    const check = () => {
      if (!this.#circuits.has(c.id)) return;
      const left = c.active + this.#limits.idleMs - this.#now();
      if (left <= 0) this.#close(c.id);
      else c.idle = setTimeout(check, left).unref();
    };
    c.active = this.#now();
    c.idle = setTimeout(check, this.#limits.idleMs).unref();
  }

  /**
   * Bytes from `from` to `to`, under backpressure and the rate buckets (total,
   * downloader's, sharer's: a byte counts for its sender and its receiver).
   *
   * What a relayed byte costs the tracker is set per write and per event, not per
   * byte: each write to a TLS socket is a record, a syscall and a completion callback,
   * and a member's inner TLS records (16 KiB and a few bytes of framing) arrive as a
   * full outer record and a record of a few bytes. So the chunks of one tick go out as
   * one write (cork, uncork once the loop's reads are done), the buckets are charged once per batch,
   * and `from` is paused only when more than MAX_QUEUED bytes wait for `to` rather
   * than whenever a write reaches the socket's 16 KiB mark, which with 16 KiB chunks
   * was every write.
   */
  #carry(c: Circuit, from: Duplex, to: Duplex, buckets: Bucket[], head: Buffer): void {
    let waiting = 0; // reasons `from` is paused: a full `to`, a bucket in debt
    const hold = () => {
      if (waiting++ === 0) from.pause();
    };
    const release = () => {
      if (--waiting === 0 && !from.destroyed) from.resume();
    };
    let draining = false;
    let batch = 0; // bytes written since the last flush, not yet charged
    const flush = () => {
      to.uncork();
      const now = this.#now();
      c.active = now;
      let delay = 0;
      for (const b of buckets) delay = Math.max(delay, b.take(batch, now));
      batch = 0;
      if (delay > 0) {
        hold();
        setTimeout(release, delay).unref();
      }
    };
    const send = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      if (batch === 0) {
        to.cork();
        // not nextTick: ticks run after each record's event, immediates after the loop's reads
        setImmediate(flush);
      }
      batch += chunk.length;
      to.write(chunk);
      // 'drain' comes when the queue is empty: a write past the high-water mark set needDrain
      if (!draining && to.writableLength > MAX_QUEUED) {
        draining = true;
        hold();
        to.once("drain", () => {
          draining = false;
          release();
        });
      }
    };
    send(head);
    from.on("data", send);
    from.on("end", () => {
      if (c.paired) to.end();
    });
  }

  /**
   * The sharer's circuits are all taken: the fair share is the sharer's circuits over the
   * downloaders that want them (this one too). If `downloader` holds fewer and another
   * holds more, that one's circuit still waiting for a leg, or else its idlest that has
   * carried nothing for EVICT_IDLE_MS, is closed; its download tries again later. Without it, a few members who keep circuits
   * open (four at the per-pair cap fill sixteen) would shut everyone else out of a
   * sharer they can only reach through the relay. Nothing is closed when no one holds more.
   */
  #makeRoom(downloader: string, sharer: string): void {
    const perSharer = this.#limits.circuits.perSharer;
    const held = new Map<string, Circuit[]>();
    for (const c of this.#circuits.values()) {
      if (c.users.sharer !== sharer) continue;
      const list = held.get(c.users.downloader) ?? [];
      list.push(c);
      held.set(c.users.downloader, list);
    }
    const fair = Math.floor(perSharer / (held.size + (held.has(downloader) ? 0 : 1)));
    if ((held.get(downloader)?.length ?? 0) >= fair) return;
    let top: Circuit[] = [];
    for (const list of held.values()) if (list.length > top.length) top = list;
    if (top.length <= fair) return;
    const now = this.#now();
    const idle = top.filter((c) => !c.paired || now - c.active >= EVICT_IDLE_MS);
    const victim = idle.find((c) => !c.paired) ?? idle.sort((a, b) => a.active - b.active)[0];
    if (victim) this.#close(victim.id);
  }

  #close(id: string): void {
    const c = this.#circuits.get(id);
    if (!c) return;
    this.#circuits.delete(id);
    this.#share.give(c.users.downloader, c.users.sharer);
    clearTimeout(c.timer);
    clearTimeout(c.idle);
    for (const leg of Object.values(c.legs)) {
      if (!c.paired) refuse(leg.socket, 504, "the other member did not come");
      else leg.socket.destroy();
    }
    for (const u of [c.users.downloader, c.users.sharer]) {
      const entry = this.#perUser.get(u);
      if (entry && --entry.circuits === 0) this.#perUser.delete(u);
    }
  }

  /** Closes every circuit (the tracker is stopping). */
  close(): void {
    for (const id of [...this.#circuits.keys()]) this.#close(id);
  }
}

/** Ends an upgrade request with an HTTP error: the client's request fails with that status. */
export function refuse(socket: Duplex, status: number, why: string): void {
  if (socket.destroyed) return;
  const body = `${why}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), 1_000).unref();
}
