/**
 * Uniform reservoir sample of the rows of a stream of row-major Float32Array batches, seeded.
 *
 * Algorithm L (Li 1994): after the reservoir fills, the number of rows to skip before the next
 * replacement is drawn directly, so the RNG is called O(capacity · log(seen / capacity)) times
 * rather than once per row. Every row offered has the same probability capacity/seen of being in
 * the final sample. Deterministic for a given seed and offer sequence. Pure math, no I/O.
 */
import { integerOption } from './validate.js';
import { Rng } from './rng.js';

/** A fixed-capacity uniform sample of `dim`-float rows. */
export class RowReservoir {
  readonly capacity: number;
  readonly dim: number;
  /** Sampled rows (capacity × dim); only the first `size` rows are meaningful. */
  readonly data: Float32Array;
  /** 0-based stream index of the row held in each slot (first `size` meaningful). */
  readonly index: Float64Array;
  private seenRows = 0;
  private readonly rng: Rng;
  private w = 0;
  /** 0-based stream index of the next row that enters the (full) reservoir. */
  private next = 0;

  /**
   * `capacity` ≥ 1 rows (the caller bounds memory: capacity·dim·4 bytes), `dim` ≥ 1,
   * `seed` an unsigned 32-bit integer (default 0). Throws ERR_DBPRUNE_INVALID_OPTION otherwise.
   */
  constructor(capacity: number, dim: number, seed = 0) {
    integerOption(capacity, 'capacity', { min: 1 });
    integerOption(dim, 'dim', { min: 1 });
    integerOption(seed, 'seed', { min: 0, max: 0xffffffff });
    this.capacity = capacity;
    this.dim = dim;
    this.data = new Float32Array(capacity * dim);
    this.index = new Float64Array(capacity);
    this.rng = new Rng(seed);
  }

  /** Rows offered so far. */
  get seen(): number {
    return this.seenRows;
  }

  /** Rows held: min(seen, capacity). */
  get size(): number {
    return Math.min(this.seenRows, this.capacity);
  }

  /** Uniform in (0, 1). */
  private unit(): number {
    return (this.rng.nextU32() + 0.5) / 4294967296;
  }

  private advance(): void {
    this.w *= Math.exp(Math.log(this.unit()) / this.capacity);
    const skip = Math.floor(Math.log(this.unit()) / Math.log1p(-this.w));
    this.next += (Number.isFinite(skip) && skip > 0 ? skip : 0) + 1;
  }

  /**
   * Offers the row of `src` starting at float offset `offset` (dim floats). Returns true when it
   * was copied into the reservoir.
   */
  offerRow(src: Float32Array, offset: number): boolean {
    const i = this.seenRows++;
    const cap = this.capacity;
    let slot: number;
    if (i < cap) {
      slot = i;
      if (i === cap - 1) {
        this.w = 1;
        this.next = cap - 1;
        this.advance();
      }
    } else if (i === this.next) {
      slot = this.rng.int(cap);
      this.advance();
    } else {
      return false;
    }
    this.data.set(src.subarray(offset, offset + this.dim), slot * this.dim);
    this.index[slot] = i;
    return true;
  }

  /** Offers the first `rows` rows of `src` (rows × dim). Returns how many were taken. */
  offerRows(src: Float32Array, rows: number): number {
    let taken = 0;
    for (let r = 0; r < rows; r++) if (this.offerRow(src, r * this.dim)) taken++;
    return taken;
  }

  /** A copy of the sampled rows (size × dim), in slot order. */
  sample(): Float32Array {
    return this.data.slice(0, this.size * this.dim);
  }
}
