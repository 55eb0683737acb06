import type { Clock, Timer } from "../peers/clock.js";
import type { Rate } from "./rate.js";

/**
 * The most bytes one grant hands out: one TLS record (16 KiB of payload). A larger grant
 * would only let one link run ahead of its siblings for longer.
 */
export const MAX_GRANT = 16 * 1024;

/**
 * Requests one node may have waiting at once. A link's stream has one per direction at
 * most; more is a caller's bug, refused rather than queued without bound.
 */
export const MAX_WAITING = 4;

/**
 * How many bytes a bucket holds when full. It is what may pass above the rate in any
 * window, so it is small: 50 ms of the rate, which also absorbs an event loop that wakes
 * up to 50 ms late without losing rate. Below 320 KiB/s that is under one grant, so the
 * floor is one grant (16 KiB), but never more than 250 ms of the rate, so that even at
 * 10 kB/s no second carries more than 1.25 times the limit.
 */
export function burstOf(rate: number): number {
  return Math.max(1, rate * 0.05, Math.min(MAX_GRANT, rate * 0.25));
}

/** Tokens are floats; a bucket this close to a need meets it (no wake-up 1 ms later for 1e-12 of a byte). */
const EPSILON = 1e-6;

/**
 * What a waiting request is told: how many bytes it may move now (already charged), or
 * closed with 0 when its node was closed first.
 */
export type Grant = (bytes: number, closed: boolean) => void;

/** A request waiting for tokens; cancel() is safe at any time, more than once. */
export interface Waiting {
  cancel(): void;
}

interface Waiter extends Waiting {
  readonly node: LimitNode;
  /** bytes asked for; 0 asks only that every bucket on the path be out of debt */
  readonly max: number;
  readonly grant: Grant;
  /** the pump during which it was made (LimitTree.pumping) */
  readonly made: number;
  done: boolean;
}

/**
 * One direction's limits as a tree (client → group → download → link), each node a token
 * bucket with its own rate. A link moves bytes when every bucket from it to the root has
 * them, and every bucket is charged. Waiting links are served in turns at every node: a
 * node's children with something waiting take turns, and one that waits on this node (or
 * above) keeps its place, so a link asking for a whole grant is not starved by siblings
 * that ask for less. Time is the injected clock's: one timer, set for when the next
 * waiting request can go.
 */
export class LimitTree {
  readonly root: LimitNode;
  readonly #clock: Clock;
  #timer: Timer | undefined;
  #pumping = false;
  #pass = 0;
  #again = false;
  #queued = false;
  /** the earliest time a request examined by the last pass could go */
  #nextReady = Number.POSITIVE_INFINITY;

  constructor(clock: Clock, rate?: Rate) {
    this.#clock = clock;
    this.root = new LimitNode(this, undefined, rate);
  }

  get clock(): Clock {
    return this.#clock;
  }

  /**
   * Runs a pump after the current code, once however often it is asked. On the next turn
   * of the event loop rather than as a microtask: a link with no limit that asks again from
   * each grant must not keep I/O from ever running.
   */
  wake(): void {
    if (this.#queued) return;
    this.#queued = true;
    setImmediate(() => {
      this.#queued = false;
      this.pump();
    });
  }

  /** The pump under way, or -1: a request made during pump n waits for the next one, so each pump ends. */
  get pumping(): number {
    return this.#pumping ? this.#pass : -1;
  }

  /** Whether a request made while `pumping` returned `made` may be granted by this pump. */
  eligible(made: number): boolean {
    return made !== this.#pass || !this.#pumping;
  }

  /** Grants every waiting request that can go now, in turn order, then sets the timer. */
  pump(): void {
    if (this.#pumping) {
      this.#again = true; // a grant's callback asked: the pass under way goes on
      return;
    }
    this.#pumping = true;
    this.#pass++;
    try {
      do {
        this.#again = false;
        const now = this.#clock.now();
        // every grant removes a waiter, and those its callback adds wait for the next pump
        for (;;) {
          this.#nextReady = Number.POSITIVE_INFINITY;
          if (this.root.visit(now) !== GRANTED) break;
        }
      } while (this.#again);
    } finally {
      this.#pumping = false;
    }
    this.#schedule();
  }

  /** Called by a pass for each request it examined and could not grant. */
  readyAt(t: number): void {
    if (t < this.#nextReady) this.#nextReady = t;
  }

  #schedule(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#nextReady === Number.POSITIVE_INFINITY) return; // nothing waits, or only paused links
    const ms = Math.max(1, Math.ceil(this.#nextReady - this.#clock.now()));
    this.#timer = this.#clock.after(ms, () => {
      this.#timer = undefined;
      this.pump();
    });
  }
}

const GRANTED = "granted";
/** A pass's answer for a subtree: a grant made, the lowest node that stopped its next request, or nothing waiting. */
type Visit = typeof GRANTED | LimitNode | undefined;

export class LimitNode {
  #parent: LimitNode | undefined;
  #depth: number;
  readonly #tree: LimitTree;
  #rate: Rate;
  #burst = 0;
  #tokens = 0;
  #stamp: number;
  #bytes = 0;
  #closed = false;
  readonly #children = new Set<LimitNode>();
  /** children with a request waiting below them, in turn order (a Set keeps insertion order) */
  readonly #turns = new Set<LimitNode>();
  readonly #waiters: Waiter[] = [];

  /** Use LimitTree's root and child(). */
  constructor(tree: LimitTree, parent: LimitNode | undefined, rate: Rate) {
    this.#tree = tree;
    this.#parent = parent;
    this.#depth = parent ? parent.#depth + 1 : 0;
    this.#stamp = tree.clock.now();
    this.#setRate(rate);
    this.#tokens = this.#burst; // a new link may send its first burst at once
  }

  /** A node below this one; rate undefined (no limit of its own) by default. */
  child(rate?: Rate): LimitNode {
    if (this.#closed) throw new Error("child() of a closed limit node");
    if (this.#waiters.length > 0) throw new Error("a node with requests of its own cannot have children");
    const c = new LimitNode(this.#tree, this, rate);
    this.#children.add(c);
    return c;
  }

  /** Its tree's clock. */
  get clock(): Clock {
    return this.#tree.clock;
  }

  get parent(): LimitNode | undefined {
    return this.#parent;
  }

  /** How far below the root (0). */
  get depth(): number {
    return this.#depth;
  }

  /**
   * Moves this node and its subtree under another node of the same tree: a served
   * connection's group is known only once its ticket has been read, after the TLS
   * handshake that was already charged. Its waiting requests go on waiting, in the new
   * parent's turns.
   */
  moveTo(parent: LimitNode): void {
    const old = this.#parent;
    if (old === undefined) throw new Error("the root cannot move");
    if (this.#closed || parent.#closed) throw new Error("moveTo() with a closed limit node");
    if (parent.#tree !== this.#tree) throw new Error("moveTo() a node of another tree");
    for (let n: LimitNode | undefined = parent; n; n = n.#parent) {
      if (n === this) throw new Error("moveTo() under itself");
    }
    if (parent.#waiters.length > 0) throw new Error("a node with requests of its own cannot have children");
    if (parent === old) return;
    const waiting = this.#hasWork();
    old.#children.delete(this);
    old.#turnDone(this);
    this.#parent = parent;
    parent.#children.add(this);
    this.#setDepth(parent.#depth + 1);
    if (waiting) parent.#enqueue(this);
    this.#tree.wake();
  }

  #setDepth(depth: number): void {
    this.#depth = depth;
    for (const c of this.#children) c.#setDepth(depth + 1);
  }

  get rate(): Rate {
    return this.#rate;
  }

  get burst(): number {
    return this.#burst;
  }

  /** Bytes charged to this node since it was made (its own and its subtree's). */
  get bytes(): number {
    return this.#bytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Requests waiting at this node. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * A new rate, in force at once: what was earned at the old rate is kept (up to the new
   * burst) and the waiting requests are looked at again. 0 pauses the subtree.
   */
  setRate(rate: Rate): void {
    if (this.#closed) return;
    this.#refill(this.#tree.clock.now());
    const was = this.#rate;
    this.#setRate(rate);
    if (was === undefined) this.#tokens = this.#burst;
    else this.#tokens = Math.min(this.#tokens, this.#burst);
    this.#tree.pump();
  }

  #setRate(rate: Rate): void {
    if (rate !== undefined && !(rate >= 0 && Number.isFinite(rate))) throw new RangeError(`bad rate ${rate}`);
    this.#rate = rate;
    this.#burst = rate ? burstOf(rate) : 0;
  }

  /**
   * Takes up to `max` bytes now if that needs no waiting and jumps no queue: every bucket
   * on the way up has them and nothing waits in the tree, or no bucket on the way up has a
   * limit. Returns the bytes granted (charged), 0 when the caller must wait().
   */
  take(max: number): number {
    if (this.#closed || max <= 0) return 0;
    const now = this.#tree.clock.now();
    const amount = this.#grantSize(max);
    if (this.#unlimitedPath()) {
      this.#charge(amount, now);
      return amount;
    }
    if (this.#tree.root.#turns.size > 0 || this.#waiters.length > 0) return 0;
    if (this.#blocker(amount, now) !== undefined) return 0;
    this.#charge(amount, now);
    return amount;
  }

  /**
   * Waits for up to `max` bytes (see #grantSize), then calls `grant` with the bytes it may move, already charged; or closed if
   * the node is closed first. `max` 0 waits only until no bucket on the way up is in debt
   * (after debit()). The call never grants before it returns.
   */
  wait(max: number, grant: Grant): Waiting {
    if (this.#children.size > 0) throw new Error("only a node without children waits for bytes");
    if (this.#waiters.length >= MAX_WAITING)
      throw new Error(`more than ${MAX_WAITING} requests waiting at one limit node`);
    const w: Waiter = {
      node: this,
      max: Math.max(0, max),
      grant,
      made: this.#tree.pumping,
      done: false,
      cancel: () => {
        if (w.done) return;
        w.done = true;
        this.#dequeue(w);
        this.#tree.wake(); // one that held its place may have let others wait
      },
    };
    if (this.#closed) {
      w.done = true;
      queueMicrotask(() => grant(0, true));
      return w;
    }
    this.#waiters.push(w);
    if (this.#waiters.length === 1 && this.#parent) this.#parent.#enqueue(this);
    this.#tree.wake();
    return w;
  }

  /**
   * Charges bytes already moved (read off a socket, whose size is known only after the
   * read). Buckets may go into debt; wait(0) then waits until they are out of it.
   */
  debit(bytes: number): void {
    if (this.#closed || bytes <= 0) return;
    this.#charge(bytes, this.#tree.clock.now());
  }

  /** Whether no bucket on the way up is paused or in debt (reading may go on without waiting). */
  ready(): boolean {
    if (this.#closed) return false;
    return (
      this.#unlimitedPath() ||
      (this.#tree.root.#turns.size === 0 && this.#blocker(0, this.#tree.clock.now()) === undefined)
    );
  }

  /** Closes this node and its subtree: their waiting requests are told so and dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closeSubtree();
    if (this.#parent) {
      this.#parent.#children.delete(this);
      this.#parent.#turnDone(this);
    }
    this.#tree.wake();
  }

  #closeSubtree(): void {
    this.#closed = true;
    for (const c of this.#children) c.#closeSubtree();
    this.#children.clear();
    this.#turns.clear();
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w.done = true;
    for (const w of waiters) w.grant(0, true);
  }

  /** One pass over this subtree: grants the next request whose turn it is, if it can go. */
  visit(now: number): Visit {
    if (this.#waiters.length > 0) return this.#visitOwn(now);
    for (const c of this.#turns) {
      const r = c.visit(now);
      if (r === GRANTED) {
        if (this.#turns.delete(c) && c.#hasWork()) this.#turns.add(c); // to the back of the turns
        return GRANTED;
      }
      if (r !== undefined && r.#depth <= this.#depth) return r; // it waits on us or above: it keeps its place
    }
    return undefined;
  }

  #visitOwn(now: number): Visit {
    const w = this.#waiters[0] as Waiter;
    if (!this.#tree.eligible(w.made)) return undefined; // asked from a grant of this pump: the next one serves it
    const amount = this.#grantSize(w.max);
    const blocker = this.#blocker(amount, now);
    if (blocker !== undefined) {
      this.#tree.readyAt(this.#readyTime(amount, now));
      return blocker;
    }
    this.#waiters.shift();
    if (this.#waiters.length === 0 && this.#parent) this.#parent.#turnDone(this);
    w.done = true;
    this.#charge(amount, now);
    w.grant(amount, false);
    return GRANTED;
  }

  /**
   * What a request for `max` bytes is granted: all of it where no bucket on the way up has
   * a limit; otherwise no more than MAX_GRANT nor half of any bucket's burst. Half, so
   * that a bucket that waits on one above it keeps earning: asking for a whole burst, a
   * link capped at 300 kB/s under a client at 1 MB/s sat full while the client's bucket
   * refilled, and got 2.5 MB in 10 s, not 3.
   */
  #grantSize(max: number): number {
    let size = Math.max(0, max);
    for (let n: LimitNode | undefined = this; n; n = n.#parent) {
      if (n.#rate) size = Math.min(size, MAX_GRANT, Math.max(1, Math.floor(n.#burst / 2)));
    }
    return size;
  }

  #unlimitedPath(): boolean {
    for (let n: LimitNode | undefined = this; n; n = n.#parent) if (n.#rate !== undefined) return false;
    return true;
  }

  /** The lowest node on the way up that cannot give `amount` bytes now (or, for 0, is in debt). */
  #blocker(amount: number, now: number): LimitNode | undefined {
    for (let n: LimitNode | undefined = this; n; n = n.#parent) {
      if (n.#rate === undefined) continue;
      if (n.#rate === 0) return n;
      n.#refill(now);
      if (n.#tokens + EPSILON < amount || n.#tokens <= 0) return n;
    }
    return undefined;
  }

  /** When every bucket on the way up will have `amount` bytes (and be out of debt); Infinity if one is paused. */
  #readyTime(amount: number, now: number): number {
    let t = now;
    for (let n: LimitNode | undefined = this; n; n = n.#parent) {
      if (n.#rate === undefined) continue;
      if (n.#rate === 0) return Number.POSITIVE_INFINITY;
      const need = Math.max(amount, EPSILON) - n.#tokens;
      if (need > 0) t = Math.max(t, now + (need * 1000) / n.#rate);
    }
    return t;
  }

  #charge(bytes: number, now: number): void {
    for (let n: LimitNode | undefined = this; n; n = n.#parent) {
      n.#bytes += bytes;
      if (n.#rate) {
        n.#refill(now);
        n.#tokens -= bytes;
      }
    }
  }

  #refill(now: number): void {
    if (this.#rate)
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#stamp) * this.#rate) / 1000);
    this.#stamp = now;
  }

  #hasWork(): boolean {
    return this.#waiters.length > 0 || this.#turns.size > 0;
  }

  /** A child now has something waiting: it joins the turns here and, if it is our first, ours above. */
  #enqueue(child: LimitNode): void {
    if (this.#turns.has(child)) return;
    const first = !this.#hasWork();
    this.#turns.add(child);
    if (first && this.#parent) this.#parent.#enqueue(this);
  }

  /** A child has nothing waiting any more: it leaves the turns, and we leave ours above if that was all. */
  #turnDone(child: LimitNode): void {
    if (!this.#turns.delete(child)) return;
    if (!this.#hasWork() && this.#parent) this.#parent.#turnDone(this);
  }

  #dequeue(w: Waiter): void {
    const i = this.#waiters.indexOf(w);
    if (i < 0) return;
    this.#waiters.splice(i, 1);
    if (this.#waiters.length === 0 && this.#parent) this.#parent.#turnDone(this);
  }
}
