/**
 * DataComp's filtering baselines as pure functions (mlfoundations/datacomp, baselines/filters.py):
 * the CLIP-score threshold rule and the non-language conditions of the basic filter. No I/O; the
 * language test is a stage (src/stages/basic-filter.ts) because it needs a language identifier.
 */
import { integerOption, numberOption, type NumberSpec } from './validate.js';
import { Rng } from './rng.js';

/** The fraction of `--clip-score-top` (and its library options): in (0, 1]. */
export const TOP_FRACTION: NumberSpec = { min: 0, exclusiveMin: true, max: 1 };

/**
 * The reference's CLIP-score threshold for keeping a fraction `fraction` of the pool:
 * `n = int(len(scores) · fraction)`, `t = (-np.sort(-scores))[n]`, then `keep score ≥ t`.
 *
 * Reproduced exactly, quirks included: the threshold is the (n+1)-th largest score, so `≥ t` keeps
 * at least n+1 rows, and every row tied at t; NaN scores sort last (numpy), so when index n falls on
 * a NaN the threshold is NaN and nothing is kept; `fraction = 1` (index past the end, an IndexError
 * in numpy) keeps every non-NaN score (threshold −∞). Comparisons are on the values as given (a
 * float32 column widened to float64 orders exactly as in float32).
 */
export function clipScoreTopThreshold(scores: Float64Array, fraction: number): { threshold: number; n: number } {
  numberOption(fraction, 'fraction', TOP_FRACTION);
  const n = Math.trunc(scores.length * fraction);
  const sorted = Float64Array.from(scores).sort(); // ascending, NaN last (TypedArray sort)
  let finite = sorted.length;
  while (finite > 0 && Number.isNaN(sorted[finite - 1])) finite--;
  if (n >= sorted.length) return { threshold: -Infinity, n };
  // Descending order with NaN last: position n is ascending position finite-1-n, or a NaN.
  const threshold = n < finite ? sorted[finite - 1 - n] : NaN;
  return { threshold, n };
}

/** Rows whose score passes `score ≥ threshold` (NaN never passes). */
export function passesScore(score: number, threshold: number): boolean {
  return score >= threshold;
}

/** cosine(a_i, b_i) per row of two n×dim row-major matrices, accumulated in float64. 0-norm rows give NaN. */
export function cosineRows(a: Float32Array, b: Float32Array, n: number, dim: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let t = 0; t < dim; t++) {
      const x = a[o + t];
      const y = b[o + t];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    out[i] = ab / Math.sqrt(aa * bb);
  }
  return out;
}

/** Python's `str.isspace()` characters, which `str.split()` splits on: a lookup table by UTF-16
 *  unit (all of them are below U+3001, none is a surrogate). A table rather than a regex because
 *  the set includes control characters (\t \n \v \f \r and the separators U+1C..U+1F). */
const PY_WHITESPACE = (() => {
  const table = new Uint8Array(0x3001);
  const ranges: [number, number][] = [[0x09, 0x0d], [0x1c, 0x20], [0x85, 0x85], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000]];
  for (const [lo, hi] of ranges) table.fill(1, lo, hi + 1);
  return table;
})();

/** `len(text.split())` in Python: whitespace-separated words. */
export function pythonWordCount(text: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c < PY_WHITESPACE.length && PY_WHITESPACE[c] === 1;
    if (!space && !inWord) n++;
    inWord = !space;
  }
  return n;
}

/** `len(text)` in Python: code points, not UTF-16 units. */
export function pythonCharCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Why a row fails the non-language part of DataComp's basic filter, or undefined when it passes. */
export type BasicFilterFailure = 'caption' | 'size' | 'aspect';

/**
 * DataComp's basic filter without the language test: more than 2 words and more than 5
 * characters; `min(original_width, original_height) ≥ 200` and `max/min ≤ 3`. A missing caption or
 * size fails (pandas would raise or compare NaN as False).
 */
export function basicFilterFailure(text: string | null, width: number, height: number): BasicFilterFailure | undefined {
  if (text === null || !(pythonWordCount(text) > 2 && pythonCharCount(text) > 5)) return 'caption';
  const lo = Math.min(width, height);
  const hi = Math.max(width, height);
  if (!(lo >= 200)) return 'size';
  if (!(hi / lo <= 3)) return 'aspect';
  return undefined;
}

/**
 * Streaming `--clip-score-top f`: the reference rule applied to a seeded uniform reservoir of the
 * scores seen so far (Algorithm R, float64 so that the threshold is one of the scores exactly, as in
 * the reference), recomputed every `every` scores. The caller holds back the first
 * `warmup` rows and decides them with the threshold of the warm-up sample, so early rows are not
 * decided on nothing. Fidelity against the exact rule is measured in test/core/datacomp-filters.test.ts.
 */
export class RunningTopThreshold {
  private readonly sample: Float64Array;
  private size = 0;
  private seen = 0;
  private readonly rng: Rng;
  private sinceUpdate = 0;
  private current = NaN;

  constructor(
    readonly fraction: number,
    opts: { capacity?: number; every?: number; seed?: number } = {},
  ) {
    numberOption(fraction, 'fraction', TOP_FRACTION);
    this.capacity = integerOption(opts.capacity, 'capacity', { default: 100_000, min: 1 });
    this.every = integerOption(opts.every, 'every', { default: 4096, min: 1 });
    this.sample = new Float64Array(this.capacity);
    this.rng = new Rng(opts.seed ?? 0);
  }

  readonly capacity: number;
  readonly every: number;

  /** Adds scores (NaN included: the reference counts them in len(pool)). */
  observe(scores: Float64Array): void {
    for (let i = 0; i < scores.length; i++) {
      this.seen++;
      if (this.size < this.capacity) this.sample[this.size++] = scores[i];
      else {
        const j = this.rng.int(this.seen);
        if (j < this.capacity) this.sample[j] = scores[i];
      }
    }
    this.sinceUpdate += scores.length;
    if (this.sinceUpdate >= this.every || Number.isNaN(this.current)) this.update();
  }

  /** Recomputes the threshold from the reservoir now. */
  update(): number {
    this.sinceUpdate = 0;
    const n = this.size;
    this.current = n > 0 ? clipScoreTopThreshold(this.sample.subarray(0, n), this.fraction).threshold : NaN;
    return this.current;
  }

  /** The current threshold (NaN before any score). */
  get threshold(): number {
    return this.current;
  }
}
