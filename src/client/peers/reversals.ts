import type { TLSSocket } from "node:tls";
import { type Clock, systemClock } from "./clock.js";

/**
 * The ALPN protocol a sharer offers when it dials a downloader back: the peer
 * server then hands the connection to the download that asked, which sends its
 * handshake as if it had dialled. Chosen in the TLS handshake, so no wire message
 * comes before the downloader's handshake and the roles are fixed before a byte.
 */
export const REVERSED_ALPN = "groupshare-reversed/1";

/** Reversals waited for at once; more are refused at once (their dialer moves on to the relay). */
const MAX_WAITING = 64;

interface Waiter {
  key: string;
  take: (socket: TLSSocket) => void;
}

/**
 * Downloads waiting for sharers they asked (through the tracker) to dial them back,
 * matched by the key the sharer proves in TLS: a connection that offers
 * REVERSED_ALPN from a key nobody waits for is refused.
 */
export class Reversals {
  readonly #waiting: Waiter[] = [];
  readonly #clock: Clock;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  /** Resolves with the connection of the sharer proving `key`, or rejects after `timeoutMs` or on `signal`. */
  expect(key: string, timeoutMs: number, signal: AbortSignal): Promise<TLSSocket> {
    if (this.#waiting.length >= MAX_WAITING) {
      return Promise.reject(new Error(`${MAX_WAITING} reversals are waiting already`));
    }
    return new Promise((resolve, reject) => {
      const end = () => {
        timer.cancel();
        signal.removeEventListener("abort", onAbort);
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
      };
      const waiter: Waiter = {
        key,
        take: (socket) => {
          end();
          resolve(socket);
        },
      };
      const onAbort = () => {
        end();
        reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      const timer = this.#clock.after(timeoutMs, () => {
        end();
        reject(new Error(`not dialled back within ${timeoutMs / 1000} s`));
      });
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Whoever waits for the sharer proving `key`, oldest first; undefined when nobody does. */
  take(key: string): ((socket: TLSSocket) => void) | undefined {
    return this.#waiting.find((w) => w.key === key)?.take;
  }
}
