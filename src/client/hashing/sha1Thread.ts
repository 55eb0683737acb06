import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";

/** A SHA1 over bytes given in order, finished when asked. */
export interface StreamSha1 {
  /**
   * Adds bytes to the hash. `give`: the caller never reads `data` again, so its
   * memory may move to another thread instead of being copied.
   */
  update(data: Buffer, give?: boolean): void;
  /** The SHA1 (hex) of everything given; rejects when the bytes were lost on the way. */
  digest(): Promise<string>;
  /** Resolves once fewer than `max` updates wait to be hashed. */
  room(max: number): Promise<void>;
}

/** A StreamSha1 that may hold bytes before it hashes them, and must be closed. */
export interface StreamHasher extends StreamSha1 {
  /** Updates waiting to be hashed. */
  readonly backlog: number;
  /** Stops; a digest still to come rejects. */
  close(): Promise<void>;
}

/** Makes a hasher; `onEased`: an update was hashed, so fewer bytes wait there. */
export type MakeHasher = (onEased: () => void) => StreamHasher;

/** Hashing on this thread: nothing waits, every update is hashed when it returns. */
export class LocalHasher implements StreamHasher {
  readonly #whole = createHash("sha1");
  readonly backlog = 0;

  update(data: Buffer): void {
    this.#whole.update(data);
  }

  async digest(): Promise<string> {
    return this.#whole.digest("hex");
  }

  async room(): Promise<void> {}

  async close(): Promise<void> {}
}

/** What the hashing worker is asked; `stream`: whose download (each has its own SHA1). */
export type ThreadRequest =
  | { op: "update"; stream: number; buf: ArrayBuffer; offset: number; length: number }
  | { op: "digest"; stream: number }
  | { op: "drop"; stream: number };

/**
 * The worker's answer to every request but a drop. An update's memory comes back
 * with its answer, to be freed here: the worker allocates so little that its own
 * garbage collector would let hashed pieces pile up.
 */
export type ThreadReply =
  | { op: "updated"; stream: number; buf: ArrayBuffer }
  | { op: "digest"; stream: number; sha1: string };

/**
 * Bytes of a buffer's memory that may lie outside it for the memory to move with
 * it: a piece's frame header. Anything more is memory someone else may be using
 * (the socket chunk a small frame was cut from, Buffer's shared pool), so it is copied.
 */
const MOVE_SLACK = 16;

/** The bytes of `data` in memory that can be moved: its own, or a copy. */
function toMove(data: Buffer, give: boolean): { buf: ArrayBuffer; offset: number } {
  const ab = data.buffer;
  if (give && ab instanceof ArrayBuffer && ab.byteLength - data.length <= MOVE_SLACK) {
    return { buf: ab, offset: data.byteOffset };
  }
  const copy = new Uint8Array(data.length);
  copy.set(data);
  return { buf: copy.buffer, offset: 0 };
}

/**
 * The process's one hashing worker, following the whole-file SHA1 of every
 * download at once (one stream each), so the downloading thread spends its time
 * on the network, the piece checks and the disk. A piece's memory moves to it and
 * back instead of being copied: for 2,048 pieces of 512 KiB (1 GiB) the main
 * thread spent 650 ms hashing them itself, 270 ms posting copies to a worker and
 * 50 ms moving them.
 *
 * It keeps the process alive only while it has work, and ends when the last
 * download using it closes. If it fails, every stream's digest rejects (WholeHash
 * then reads the file back).
 */
class HashingThread {
  static #shared: HashingThread | undefined;

  /** A stream on the shared thread, started if none runs. */
  static open(onEased: () => void): Sha1Thread {
    HashingThread.#shared ??= new HashingThread();
    return HashingThread.#shared.#open(onEased);
  }

  readonly #worker: Worker;
  readonly #streams = new Map<number, Sha1Thread>();
  #nextStream = 1;
  /** Requests posted that have not been answered. */
  #busy = 0;
  #ended = false;

  private constructor() {
    this.#worker = new Worker(new URL("./sha1ThreadWorker.js", import.meta.url));
    this.#worker.on("message", (m: ThreadReply) => this.#reply(m));
    this.#worker.on("error", (err) => this.#end(new Error(`hashing thread failed: ${err.message}`)));
    this.#worker.on("exit", (code) => this.#end(new Error(`hashing thread exited (code ${code})`)));
    this.#worker.unref();
  }

  #open(onEased: () => void): Sha1Thread {
    const stream = this.#nextStream++;
    const hasher = new Sha1Thread(this, stream, onEased);
    this.#streams.set(stream, hasher);
    return hasher;
  }

  /** Posts a request that will be answered. */
  post(request: ThreadRequest, transfer: ArrayBuffer[]): void {
    if (this.#busy++ === 0) this.#worker.ref();
    this.#worker.postMessage(request, transfer);
  }

  /** The stream's hasher closed; the thread ends with the last. */
  release(stream: number): void {
    if (!this.#streams.delete(stream) || this.#ended) return;
    this.#worker.postMessage({ op: "drop", stream } satisfies ThreadRequest);
    if (this.#streams.size === 0) {
      this.#end(new Error("hashing stopped"));
      void this.#worker.terminate();
    }
  }

  #reply(m: ThreadReply): void {
    if (--this.#busy === 0) this.#worker.unref();
    this.#streams.get(m.stream)?.reply(m);
  }

  #end(err: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    if (HashingThread.#shared === this) HashingThread.#shared = undefined;
    this.#worker.unref();
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) s.fail(err);
  }
}

/**
 * One download's whole-file SHA1 on the shared hashing thread, and the updates
 * it has not hashed yet. Once the thread is gone (closed, or failed) updates are
 * dropped and the digest rejects.
 */
class Sha1Thread implements StreamHasher {
  readonly #thread: HashingThread;
  readonly #stream: number;
  readonly #onEased: () => void;
  /** Updates posted and not yet hashed. */
  #backlog = 0;
  /** The read-back waiting for the backlog to fall below its max (one at a time). */
  #roomWaiter: { max: number; resolve: () => void } | undefined;
  #final: { resolve: (sha1: string) => void; reject: (err: Error) => void } | undefined;
  #failed: Error | undefined;

  /** Made by HashingThread (threadHasher). */
  constructor(thread: HashingThread, stream: number, onEased: () => void) {
    this.#thread = thread;
    this.#stream = stream;
    this.#onEased = onEased;
  }

  get backlog(): number {
    return this.#backlog;
  }

  update(data: Buffer, give = false): void {
    if (this.#failed) return; // the digest rejects
    const { buf, offset } = toMove(data, give);
    this.#backlog++;
    this.#thread.post({ op: "update", stream: this.#stream, buf, offset, length: data.length }, [buf]);
  }

  digest(): Promise<string> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#final) return Promise.reject(new Error("the digest was already asked for"));
    return new Promise((resolve, reject) => {
      this.#final = { resolve, reject };
      this.#thread.post({ op: "digest", stream: this.#stream }, []);
    });
  }

  room(max: number): Promise<void> {
    if (this.#backlog < max || this.#failed) return Promise.resolve();
    if (this.#roomWaiter) return Promise.reject(new Error("room() is already awaited"));
    return new Promise((resolve) => {
      this.#roomWaiter = { max, resolve };
    });
  }

  async close(): Promise<void> {
    this.fail(new Error("hashing stopped"));
    this.#thread.release(this.#stream);
  }

  /** An answer from the thread. */
  reply(m: ThreadReply): void {
    if (m.op === "updated") {
      this.#backlog--;
      this.#wakeRoom();
    } else {
      const f = this.#final;
      this.#final = undefined;
      f?.resolve(m.sha1);
    }
    this.#onEased();
  }

  /** The thread is gone for this stream: what waits on it rejects or ends. */
  fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = err;
    this.#final?.reject(err);
    this.#final = undefined;
    this.#backlog = 0;
    this.#wakeRoom();
    this.#onEased();
  }

  #wakeRoom(): void {
    const w = this.#roomWaiter;
    if (w && (this.#backlog < w.max || this.#failed)) {
      this.#roomWaiter = undefined;
      w.resolve();
    }
  }
}

/** A stream on the process's shared hashing thread (started if none runs): the default. */
export function threadHasher(onEased: () => void = () => {}): StreamHasher {
  return HashingThread.open(onEased);
}
