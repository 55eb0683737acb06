/**
 * A set of piece indexes, stored as on the wire: bit i of the array is piece i,
 * most significant bit first (as BitTorrent's bitfield).
 */
export class Bitfield {
  readonly bytes: Uint8Array;
  #count = 0;

  constructor(
    readonly length: number,
    bytes?: Uint8Array,
  ) {
    this.bytes = new Uint8Array(Math.ceil(length / 8));
    if (bytes) {
      if (bytes.length !== this.bytes.length)
        throw new RangeError("bitfield length does not match piece count");
      this.bytes.set(bytes);
      // spare bits past `length` must be zero so that counts and equality stay honest
      const spare = this.bytes.length * 8 - length;
      if (spare > 0) this.bytes[this.bytes.length - 1]! &= (0xff << spare) & 0xff;
      for (let i = 0; i < length; i++) if (this.has(i)) this.#count++;
    }
  }

  static full(length: number): Bitfield {
    const b = new Bitfield(length);
    for (let i = 0; i < length; i++) b.set(i);
    return b;
  }

  has(i: number): boolean {
    return i >= 0 && i < this.length && (this.bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0;
  }

  /** Returns true when the bit was newly set. */
  set(i: number): boolean {
    if (i < 0 || i >= this.length) throw new RangeError(`piece ${i} out of range 0..${this.length - 1}`);
    if (this.has(i)) return false;
    this.bytes[i >> 3]! |= 0x80 >> (i & 7);
    this.#count++;
    return true;
  }

  /** How many pieces are set. */
  get count(): number {
    return this.#count;
  }

  get complete(): boolean {
    return this.#count === this.length;
  }

  toBase64(): string {
    return Buffer.from(this.bytes).toString("base64");
  }

  static fromBase64(length: number, text: string): Bitfield {
    return new Bitfield(length, Buffer.from(text, "base64"));
  }
}
