/**
 * Order-independent sums of float32 values (per cluster), so that Σδ is the same bits whether the
 * records are summed in one pass (single-machine exact mode) or in parts that are merged later
 * (the distributed mode, src/cluster/). Hand-written because no npm package sums float32 values
 * exactly in mergeable per-slot accumulators without BigInt (far slower in the 1M-row hot loop).
 *
 * Each value is split, exactly, into pieces on fixed grids q_i = 2^(8 − 20(i+1)) (i = 0 … 7,
 * reaching below float32's smallest subnormal 2^−149); piece i of every value is a multiple of q_i
 * no larger than 2^(8 − 20i), so a float64 slot adds up to 2^32 of them without rounding. The
 * pieces of a sum therefore do not depend on the order of the additions or on how the values were
 * split into parts, and {@link ExactSums.value} folds them (smallest first) into one float64.
 * Values with |v| ≥ 256 or bits below 2^−152 (never a cosine distance) go to a plain float64 slot,
 * whose sum is order-dependent. Pure math, no I/O.
 */

/** Pieces per sum. */
export const EXACT_SUM_PIECES = 8;
/** Exclusive magnitude bound of values the pieces take exactly. */
const TOP = 256;
/** 1.5·2^52·q_i: adding and subtracting it rounds to a multiple of q_i (round to nearest even). */
const ROUNDERS = Array.from({ length: EXACT_SUM_PIECES }, (_, i) => 1.5 * 2 ** 52 * 2 ** (8 - 20 * (i + 1)));
/** Slots per sum: the pieces plus the plain float64 overflow slot. */
const SLOTS = EXACT_SUM_PIECES + 1;

/** `n` exact sums side by side (one per cluster), mergeable across parts. */
export class ExactSums {
  /** n × (pieces + 1) float64 slots; slot `pieces` is the plain overflow sum. */
  readonly slots: Float64Array;

  constructor(readonly n: number, slots?: Float64Array) {
    if (slots && slots.length !== n * SLOTS) throw new RangeError(`ExactSums: expected ${n * SLOTS} slots, got ${slots.length}`);
    this.slots = slots ?? new Float64Array(n * SLOTS);
  }

  /** Adds `v` to sum `j`. */
  add(j: number, v: number): void {
    const base = j * SLOTS;
    const s = this.slots;
    if (!(v < TOP && v > -TOP)) {
      s[base + EXACT_SUM_PIECES] += v;
      return;
    }
    let r = v;
    for (let i = 0; i < EXACT_SUM_PIECES && r !== 0; i++) {
      const c = ROUNDERS[i];
      const hi = r + c - c;
      s[base + i] += hi;
      r -= hi;
    }
    if (r !== 0) s[base + EXACT_SUM_PIECES] += r;
  }

  /** Adds every sum of `other` (same n) into this one: exact, so merge order does not matter. */
  merge(other: ExactSums): void {
    if (other.n !== this.n) throw new RangeError(`ExactSums.merge: ${other.n} sums into ${this.n}`);
    const a = this.slots;
    const b = other.slots;
    for (let t = 0; t < a.length; t++) a[t] += b[t];
  }

  /** Sum `j` as one float64 (pieces folded smallest first; deterministic given the pieces). */
  value(j: number): number {
    const base = j * SLOTS;
    let v = this.slots[base + EXACT_SUM_PIECES];
    for (let i = EXACT_SUM_PIECES - 1; i >= 0; i--) v += this.slots[base + i];
    return v;
  }

  /** The slots of sum `j` (for sparse serialisation). */
  slotsOf(j: number): Float64Array {
    return this.slots.subarray(j * SLOTS, (j + 1) * SLOTS);
  }

  /** Adds serialised slots (as {@link slotsOf} returned them) into sum `j`. */
  addSlots(j: number, slots: ArrayLike<number>): void {
    if (slots.length !== SLOTS) throw new RangeError(`ExactSums.addSlots: expected ${SLOTS} slots, got ${slots.length}`);
    const base = j * SLOTS;
    for (let t = 0; t < SLOTS; t++) this.slots[base + t] += slots[t];
  }
}
