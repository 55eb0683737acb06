import type { EngineEvent, EngineEventType, EventOf } from "./types.js";

type Listener = (e: EngineEvent) => void;

/**
 * The engine's events, typed by their `type`. Each subscription returns its own
 * unsubscribe (a front end that goes away calls it: nothing is kept for it). A
 * listener that throws is the front end's bug: it is reported to `onListenerError`
 * and neither stops the others nor reaches the engine.
 */
export class EngineEmitter {
  readonly #all = new Set<Listener>();
  readonly #byType = new Map<EngineEventType, Set<Listener>>();
  readonly #onListenerError: (err: unknown) => void;

  constructor(onListenerError: (err: unknown) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  /** Every event, in the order they happen. */
  subscribe(fn: (e: EngineEvent) => void): () => void {
    this.#all.add(fn);
    return () => {
      this.#all.delete(fn);
    };
  }

  /** Events of one type. */
  on<T extends EngineEventType>(type: T, fn: (e: EventOf<T>) => void): () => void {
    const set = this.#byType.get(type) ?? new Set();
    this.#byType.set(type, set);
    const listener = fn as Listener;
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#byType.get(type) === set) this.#byType.delete(type);
    };
  }

  /** Subscriptions open now (a test's check that none leaked). */
  get size(): number {
    let n = this.#all.size;
    for (const s of this.#byType.values()) n += s.size;
    return n;
  }

  emit(e: EngineEvent): void {
    for (const fn of [...this.#all, ...(this.#byType.get(e.type) ?? [])]) {
      try {
        fn(e);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
  }
}
