import type { ThrottleRule } from "./store/store.js";

/**
 * The login throttle's rules. The counts live in the store (Store.admitAttempt), so every
 * tracker sees the same ones, and an attempt is counted before its password is hashed:
 * parallel guesses cannot all pass the check before the first one fails.
 *
 * - Per user: after USER_FREE attempts that did not succeed, each further attempt waits
 *   twice as long as the last, from 1 s up to USER_MAX_BLOCK_MS. A success clears it.
 *   The cap is what a stranger can cost the real user at a time.
 * - Per address: ADDRESS_FREE attempts, then 1 min doubling up to 15 min. This is what
 *   slows one address guessing many users; a success does not clear it (an attacker
 *   would log into an account of their own between guesses), it only gives back the
 *   successful attempt.
 * - A login from an address the user has logged in from (within TRUST_MS) is counted
 *   only against that user at that address: strangers elsewhere can block neither.
 */
export const USER_FREE = 5;
const USER_BASE_BLOCK_MS = 1_000;
export const USER_MAX_BLOCK_MS = 60_000;
export const ADDRESS_FREE = 20;
const ADDRESS_BASE_BLOCK_MS = 60_000;
export const ADDRESS_MAX_BLOCK_MS = 15 * 60_000;
/** How long a successful login makes its address trusted for that user. */
export const TRUST_MS = 30 * 24 * 3600_000;
/** Trusted addresses kept per user (the most recent). */
export const TRUSTED_PER_USER = 8;

export interface LoginKeys {
  /** Counted before the hash. */
  rules: ThrottleRule[];
  /** Cleared by a success. */
  reset: string[];
  /** Given back one attempt by a success. */
  refund: ThrottleRule[];
}

export function loginKeys(userId: string, addr: string, trusted: boolean): LoginKeys {
  const user = (key: string): ThrottleRule => ({
    key,
    free: USER_FREE,
    baseBlockMs: USER_BASE_BLOCK_MS,
    maxBlockMs: USER_MAX_BLOCK_MS,
  });
  if (trusted) {
    const key = `t:${userId}@${addr}`;
    return { rules: [user(key)], reset: [key], refund: [] };
  }
  const u = `u:${userId}`;
  const a: ThrottleRule = {
    key: `a:${addr}`,
    free: ADDRESS_FREE,
    baseBlockMs: ADDRESS_BASE_BLOCK_MS,
    maxBlockMs: ADDRESS_MAX_BLOCK_MS,
  };
  return { rules: [user(u), a], reset: [u], refund: [a] };
}
