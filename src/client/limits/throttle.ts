import { Duplex } from "node:stream";
import type { Timer } from "../peers/clock.js";
import type { LimitNode, Waiting } from "./buckets.js";

/**
 * Which way a link's pieces flow. Its other direction carries the requests (a few dozen
 * bytes a block): counted, but never held back, or a limit in one direction, even 0,
 * would stall the other (a download's requests under `set_limit up 0`, the peers'
 * requests to us under `set_limit down 0`).
 */
export type LinkRole = "download" | "serve";

/**
 * What a served link may send us unheld: an allowance that starts at 16 KiB (its TLS
 * and wire handshakes take some 3 KB), grows by 1/16 of what we send it and by 4 kB a
 * second, and holds at most 64 KiB. Requests are about 1% of what they ask for (40
 * bytes with TLS's for the smallest block, 4 KiB), and the rest a downloader sends (a
 * partial sharer's HAVE for each piece it gets) a few bytes a second, so a downloader
 * stays within it, even one we serve little under `set_limit down 0`. A peer past it
 * (keep-alives at line speed, say) is not read until the allowance is back above 0:
 * TCP holds it back, and it cannot put the download limit into a debt that would hold
 * our downloads for minutes.
 */
export const FREE_READ_START = 16 * 1024;
export const FREE_READ_SHARE = 16;
export const FREE_READ_RATE = 4_000;
export const FREE_READ_MOST = 64 * 1024;

/** A link's two leaves: its node in the upload tree and in the download tree. */
export interface LinkLimits {
  /** charged for each byte written to the transport */
  readonly up: LimitNode;
  /** charged for each byte read off the transport */
  readonly down: LimitNode;
}

/**
 * A transport (a TCP socket, a relay leg) with speed limits, for TLS to run over:
 * `tls.connect({ socket: throttled })` or `new TLSSocket(throttled, …)`. Sitting below
 * TLS, it counts what crosses the socket: records, their headers and tags, handshakes.
 *
 * Writes go out in grants from `up`, each as soon as every bucket on the way up has it,
 * and the write is done (TLS may send more) only once the transport has taken the last
 * piece. Reads cannot be sized beforehand (a socket
 * reads what the kernel holds, up to 64 KiB), so each read is charged to `down` after
 * the fact, and the transport is paused until the buckets are out of debt; TCP's window
 * then holds the sender back. The transport is also paused while whoever reads from this
 * stream is behind.
 *
 * Only the direction its role's pieces flow in waits (reads for a download, writes for
 * a served link); the other is charged as it goes, a served link's reads within an
 * allowance (FREE_READ_START and the rest).
 *
 * The stream owns the two nodes: destroying it closes them, and closing either (its
 * download removed, say) destroys it.
 */
export class ThrottledStream extends Duplex {
  readonly #inner: Duplex;
  readonly #up: LimitNode;
  readonly #down: LimitNode;
  /** our reader asked for more and has not been pushed back since */
  #wanted = false;
  /** whether the transport is flowing (kept here: pause() and resume() each cost a tick) */
  #reading = false;
  #innerEnded = false;
  /** a wait(0) was granted: reading may go on until the next read is charged */
  #cleared = false;
  #downWait: Waiting | undefined;
  #upWait: Waiting | undefined;
  #role: LinkRole;
  /** a served link's allowance of unheld reads (bytes), as of #freeAt */
  #free = FREE_READ_START;
  #freeAt: number;
  /** set while a served link past its allowance waits for it */
  #freeWait: Timer | undefined;

  constructor(inner: Duplex, limits: LinkLimits, role: LinkRole) {
    super();
    this.#role = role;
    // TLS copies allowHalfOpen from the stream it runs over when it is made, and ends its
    // writing at the peer's end unless it is true: it must see false, as over a socket.
    // Our own writing must never end by itself (TLS would lose what it still had to
    // send), and Duplex reads the same flag when our reading ends: true by then.
    Object.defineProperty(this, "allowHalfOpen", { get: () => this.#innerEnded, set: () => {} });
    this.#inner = inner;
    this.#up = limits.up;
    this.#down = limits.down;
    this.#freeAt = limits.down.clock.now();
    // A net.Socket ends its own writing when the peer's FIN comes, unless half-open: TLS
    // over it would then lose what it still had to send (EPIPE). TLS ends it when done.
    inner.allowHalfOpen = true;
    inner.on("data", (chunk: Buffer) => this.#onData(chunk));
    inner.pause(); // reading starts with our first _read
    inner.on("end", () => {
      this.#innerEnded = true;
      this.push(null);
    });
    inner.on("error", (err) => this.destroy(err));
    inner.on("close", () => {
      if (!this.#innerEnded) this.destroy(); // reset or destroyed: no end will come
    });
  }

  /** An accepted link (served until then) turns out to be a download's: its reads wait from now on. */
  toDownload(): void {
    this.#role = "download";
    this.#freeWait?.cancel();
    this.#freeWait = undefined;
    this.#flow();
  }

  override _read(): void {
    this.#wanted = true;
    this.#flow();
  }

  #onData(chunk: Buffer): void {
    this.#cleared = false;
    if (this.#role === "serve") this.#earn(-chunk.length);
    this.#down.debit(chunk.length);
    if (!this.push(chunk)) this.#wanted = false;
    this.#flow();
  }

  /** Reads from the transport while our reader wants bytes and no bucket on the way up is in debt. */
  #flow(): void {
    if (this.destroyed) return;
    let go = this.#wanted && this.#downWait === undefined && this.#freeWait === undefined;
    if (go && this.#role === "serve" && this.#earn(0) < 0) {
      go = false;
      const ms = Math.ceil((-this.#free * 1000) / FREE_READ_RATE);
      this.#freeWait = this.#down.clock.after(ms, () => {
        this.#freeWait = undefined;
        this.#flow();
      });
    }
    if (go && this.#role === "download" && !this.#cleared && !this.#down.ready()) {
      go = false;
      this.#downWait = this.#down.wait(0, (_bytes, closed) => {
        this.#downWait = undefined;
        if (closed) {
          this.destroy();
          return;
        }
        // our turn: asking ready() again would find the others waiting and wait behind them forever
        this.#cleared = true;
        this.#flow();
      });
    }
    if (go === this.#reading) return;
    this.#reading = go;
    if (go) this.#inner.resume();
    else this.#inner.pause();
  }

  /** A served link's allowance, earned since it was last counted, plus `bytes` (negative: read); what it is now. */
  #earn(bytes: number): number {
    const now = this.#down.clock.now();
    this.#free =
      Math.min(FREE_READ_MOST, this.#free + ((now - this.#freeAt) * FREE_READ_RATE) / 1000) + bytes;
    this.#freeAt = now;
    return this.#free;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.#send(chunk, 0, done);
  }

  /** Sends chunk[offset..] in grants (or at once, charged, for a download's requests), then calls done. */
  #send(chunk: Buffer, offset: number, done: (err?: Error | null) => void): void {
    if (this.#role === "download") {
      this.#up.debit(chunk.length - offset);
      this.#put(chunk, offset, chunk.length - offset, done);
      return;
    }
    let at = offset;
    while (at < chunk.length) {
      const left = chunk.length - at;
      const granted = this.#up.take(left);
      if (granted === 0) {
        const from = at;
        this.#upWait = this.#up.wait(left, (bytes, closed) => {
          this.#upWait = undefined;
          if (closed) {
            this.destroy();
            return;
          }
          if (this.#put(chunk, from, bytes, done)) this.#send(chunk, from + bytes, done);
        });
        return;
      }
      if (!this.#put(chunk, at, granted, done)) return;
      at += granted;
    }
    done();
  }

  /**
   * Writes a granted piece; false when sending stops here: the transport pushed back
   * (sending goes on at 'drain'), or this was the last piece, and done is called when the
   * transport has taken it: TLS hands down its next records only then, so nothing
   * piles up here above the transport's own buffer.
   */
  #put(chunk: Buffer, at: number, bytes: number, done: (err?: Error | null) => void): boolean {
    if (this.destroyed) return false;
    if (this.#role === "serve") this.#free = Math.min(FREE_READ_MOST, this.#free + bytes / FREE_READ_SHARE);
    const piece = at === 0 && bytes === chunk.length ? chunk : chunk.subarray(at, at + bytes);
    if (at + bytes === chunk.length) {
      this.#inner.write(piece, (err) => done(err));
      return false;
    }
    if (this.#inner.write(piece)) return true;
    this.#inner.once("drain", () => this.#send(chunk, at + bytes, done));
    return false;
  }

  override _final(done: (err?: Error | null) => void): void {
    const inner = this.#inner;
    if (inner.writableFinished || inner.destroyed) {
      done();
      return;
    }
    const finished = () => {
      inner.off("finish", finished);
      inner.off("close", finished);
      done();
    };
    inner.once("finish", finished);
    inner.once("close", finished);
    inner.end();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#downWait?.cancel();
    this.#freeWait?.cancel();
    this.#upWait?.cancel();
    this.#up.close();
    this.#down.close();
    this.#inner.destroy();
    done(err);
  }
}
