/**
 * A set of strings kept as 96-bit fingerprints in one typed array (open addressing, linear
 * probing, grown at half load): 24–48 bytes a member and no per-string objects, where a `Set` of a
 * million short keys costs ~60 MB and seconds of GC. Hand-written because no maintained npm
 * package offers a compact string-fingerprint set; the hash is three independent 32-bit
 * multiply-xorshift passes over the UTF-16 code units.
 *
 * Membership is by fingerprint: two different strings are taken for one with probability about
 * n² / 2^97 for n members (6·10^-18 for a million), which `keyGuard` documents.
 */

const EMPTY_SLOTS = 1024;

/** Three 32-bit hashes of `s` (never all three zero). */
export function fingerprint96(s: string, out: Uint32Array): void {
  let a = 0x811c9dc5 | 0;
  let b = 0x9747b28c | 0;
  let c = 0x3c6ef372 | 0;
  for (let i = 0; i < s.length; i++) {
    const x = s.charCodeAt(i);
    a = Math.imul(a ^ x, 0x01000193);
    b = Math.imul(b ^ x, 0x5bd1e995);
    b ^= b >>> 15;
    c = Math.imul(c + x, 0x27d4eb2d);
    c ^= c >>> 13;
  }
  a ^= s.length;
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  b ^= b >>> 13;
  b = Math.imul(b, 0xc2b2ae35);
  b ^= b >>> 16;
  c ^= c >>> 16;
  c = Math.imul(c, 0x165667b1);
  c ^= c >>> 15;
  out[0] = a >>> 0;
  out[1] = b >>> 0;
  out[2] = (c >>> 0) | 1; // a slot of three zero words is empty
}

export class FingerprintSet {
  private table = new Uint32Array(EMPTY_SLOTS * 3);
  private mask = EMPTY_SLOTS - 1;
  private count = 0;
  private readonly fp = new Uint32Array(3);

  /** Members. */
  get size(): number {
    return this.count;
  }

  /** Adds `s`; returns false when it (its fingerprint) was already a member. */
  add(s: string): boolean {
    fingerprint96(s, this.fp);
    return this.insert(this.fp[0], this.fp[1], this.fp[2]);
  }

  /** Adds the member whose {@link fingerprint96} is `fp` (for a caller that already hashed it); false when present. */
  addFingerprint(fp: Uint32Array): boolean {
    return this.insert(fp[0], fp[1], fp[2]);
  }

  /** Whether `s` (its fingerprint) is a member. */
  has(s: string): boolean {
    fingerprint96(s, this.fp);
    return this.hasFingerprint(this.fp);
  }

  /** Whether the member whose {@link fingerprint96} is `fp` is present. */
  hasFingerprint(fp: Uint32Array): boolean {
    const a = fp[0];
    const b = fp[1];
    const c = fp[2];
    const t = this.table;
    for (let i = a & this.mask; ; i = (i + 1) & this.mask) {
      const o = i * 3;
      if (t[o + 2] === 0) return false;
      if (t[o] === a && t[o + 1] === b && t[o + 2] === c) return true;
    }
  }

  private insert(a: number, b: number, c: number): boolean {
    const t = this.table;
    for (let i = a & this.mask; ; i = (i + 1) & this.mask) {
      const o = i * 3;
      if (t[o + 2] === 0) {
        t[o] = a;
        t[o + 1] = b;
        t[o + 2] = c;
        if (++this.count * 2 > this.mask + 1) this.grow();
        return true;
      }
      if (t[o] === a && t[o + 1] === b && t[o + 2] === c) return false;
    }
  }

  private grow(): void {
    const old = this.table;
    const slots = (this.mask + 1) * 2;
    this.table = new Uint32Array(slots * 3);
    this.mask = slots - 1;
    this.count = 0;
    for (let o = 0; o < old.length; o += 3) if (old[o + 2] !== 0) this.insert(old[o], old[o + 1], old[o + 2]);
  }
}
