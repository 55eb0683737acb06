/**
 * Noise_XX_25519_ChaChaPoly_SHA256 on node:crypto, enough to be measured against
 * TLS 1.3: the XX handshake (both sides prove a static key), then a transport of
 * frames (a 2-byte length, then ChaCha20-Poly1305 ciphertext and tag), each at most
 * 65,535 bytes as the Noise spec bounds messages. A bench part's, not the product's.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import type { Socket } from "node:net";

const NAME = Buffer.from("Noise_XX_25519_ChaChaPoly_SHA256"); // 32 bytes: h starts as the name itself
const X25519_SPKI = Buffer.from("302a300506032b656e032100", "hex");
const TAG = 16;
/** Plaintext per transport frame: the 65,535-byte message bound less the tag. */
export const NOISE_MAX_PLAINTEXT = 65_535 - TAG;

interface KeyPair {
  priv: KeyObject;
  pub: Buffer;
}

function keyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  return { priv: privateKey, pub: publicKey.export({ type: "spki", format: "der" }).subarray(12) };
}

const dh = (k: KeyPair, pub: Buffer) =>
  diffieHellman({
    privateKey: k.priv,
    publicKey: createPublicKey({ key: Buffer.concat([X25519_SPKI, pub]), format: "der", type: "spki" }),
  });
const hmac = (key: Buffer, data: Buffer) => createHmac("sha256", key).update(data).digest();
function hkdf(ck: Buffer, ikm: Buffer): [Buffer, Buffer] {
  const t = hmac(ck, ikm);
  const a = hmac(t, Buffer.from([1]));
  return [a, hmac(t, Buffer.concat([a, Buffer.from([2])]))];
}

function nonce(n: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64LE(BigInt(n), 4);
  return b;
}

/** One direction's cipher state: a key and its message counter. */
export class CipherState {
  #n = 0;
  constructor(readonly key: Buffer) {}

  encrypt(ad: Buffer, plain: Buffer): Buffer {
    const c = createCipheriv("chacha20-poly1305", this.key, nonce(this.#n++), { authTagLength: TAG });
    c.setAAD(ad, { plaintextLength: plain.length });
    return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  }

  decrypt(ad: Buffer, data: Buffer): Buffer {
    const d = createDecipheriv("chacha20-poly1305", this.key, nonce(this.#n++), { authTagLength: TAG });
    d.setAAD(ad, { plaintextLength: data.length - TAG });
    d.setAuthTag(data.subarray(data.length - TAG));
    return Buffer.concat([d.update(data.subarray(0, data.length - TAG)), d.final()]);
  }
}

const EMPTY = Buffer.alloc(0);

/** The handshake's symmetric state (Noise spec, section 5.2). */
class Symmetric {
  h: Buffer = Buffer.from(NAME);
  ck: Buffer = Buffer.from(NAME);
  k: CipherState | undefined;

  mixHash(data: Buffer): void {
    this.h = createHash("sha256").update(this.h).update(data).digest();
  }
  mixKey(ikm: Buffer): void {
    const [ck, k] = hkdf(this.ck, ikm);
    this.ck = ck;
    this.k = new CipherState(k);
  }
  encryptAndHash(p: Buffer): Buffer {
    const c = this.k ? this.k.encrypt(this.h, p) : p;
    this.mixHash(c);
    return c;
  }
  decryptAndHash(c: Buffer): Buffer {
    const p = this.k ? this.k.decrypt(this.h, c) : c;
    this.mixHash(c);
    return p;
  }
  split(): [CipherState, CipherState] {
    const [a, b] = hkdf(this.ck, EMPTY);
    return [new CipherState(a), new CipherState(b)];
  }
}

/** Reads 2-byte-length frames off a socket: awaited one by one in the handshake, then handed to a listener. */
export class Frames {
  #buf: Buffer = Buffer.alloc(0);
  readonly #waiters: ((f: Buffer) => void)[] = [];
  readonly #queue: Buffer[] = [];
  #listener: ((f: Buffer) => void) | undefined;

  constructor(socket: Socket) {
    socket.on("data", (d: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
      while (this.#buf.length >= 2) {
        const len = this.#buf.readUInt16BE(0);
        if (this.#buf.length < 2 + len) break;
        this.#deliver(this.#buf.subarray(2, 2 + len));
        this.#buf = this.#buf.subarray(2 + len);
      }
    });
  }

  #deliver(f: Buffer): void {
    if (this.#listener) this.#listener(f);
    else {
      const w = this.#waiters.shift();
      if (w) w(f);
      else this.#queue.push(f);
    }
  }

  next(): Promise<Buffer> {
    const f = this.#queue.shift();
    return f ? Promise.resolve(f) : new Promise((r) => this.#waiters.push(r));
  }

  /** From now on every frame (those already queued first) goes to `fn`. */
  listen(fn: (f: Buffer) => void): void {
    this.#listener = fn;
    for (const f of this.#queue.splice(0)) fn(f);
  }
}

export function frame(b: Buffer): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(b.length);
  return Buffer.concat([head, b]);
}

/** The XX handshake; resolves with [send, receive] cipher states and the other side's static key. */
export async function handshake(
  socket: Socket,
  frames: Frames,
  initiator: boolean,
): Promise<{ send: CipherState; receive: CipherState; remoteStatic: Buffer }> {
  const ss = new Symmetric();
  ss.mixHash(EMPTY); // empty prologue
  const s = keyPair();
  const e = keyPair();
  let re: Buffer;
  let rs: Buffer;
  if (initiator) {
    // -> e
    ss.mixHash(e.pub);
    socket.write(frame(Buffer.concat([e.pub, ss.encryptAndHash(EMPTY)])));
    // <- e, ee, s, es
    const m2 = await frames.next();
    re = m2.subarray(0, 32);
    ss.mixHash(re);
    ss.mixKey(dh(e, re));
    rs = ss.decryptAndHash(m2.subarray(32, 32 + 32 + TAG));
    ss.mixKey(dh(e, rs));
    ss.decryptAndHash(m2.subarray(32 + 32 + TAG));
    // -> s, se
    const cs = ss.encryptAndHash(s.pub);
    ss.mixKey(dh(s, re));
    socket.write(frame(Buffer.concat([cs, ss.encryptAndHash(EMPTY)])));
    const [a, b] = ss.split();
    return { send: a, receive: b, remoteStatic: rs };
  }
  const m1 = await frames.next();
  re = m1.subarray(0, 32);
  ss.mixHash(re);
  ss.decryptAndHash(m1.subarray(32));
  ss.mixHash(e.pub);
  ss.mixKey(dh(e, re));
  const cs = ss.encryptAndHash(s.pub);
  ss.mixKey(dh(s, re));
  socket.write(frame(Buffer.concat([e.pub, cs, ss.encryptAndHash(EMPTY)])));
  const m3 = await frames.next();
  rs = ss.decryptAndHash(m3.subarray(0, 32 + TAG));
  ss.mixKey(dh(e, rs));
  ss.decryptAndHash(m3.subarray(32 + TAG));
  const [a, b] = ss.split();
  return { send: b, receive: a, remoteStatic: rs };
}
