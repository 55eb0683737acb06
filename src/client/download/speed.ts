import type { Clock } from "../peers/clock.js";

/** Speed is averaged over this window. */
export const SPEED_WINDOW_MS = 5_000;

/** Bytes received, and the rate over the last SPEED_WINDOW_MS. */
export class SpeedMeter {
  readonly #clock: Clock;
  readonly #startedAt: number;
  #samples: [number, number][] = [];
  /** Bytes counted since this meter started. */
  total = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#startedAt = clock.now();
  }

  add(bytes: number): void {
    this.#samples.push([this.#clock.now(), bytes]);
    this.total += bytes;
  }

  /** Bytes per second over the window (or since the start, when younger than the window). */
  get rate(): number {
    const now = this.#clock.now();
    this.#samples = this.#samples.filter(([t]) => now - t <= SPEED_WINDOW_MS);
    const bytes = this.#samples.reduce((s, [, b]) => s + b, 0);
    const span = Math.min(SPEED_WINDOW_MS, now - this.#startedAt);
    return span > 0 ? (bytes * 1000) / span : 0;
  }
}
