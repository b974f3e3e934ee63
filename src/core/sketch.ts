/**
 * Mergeable fixed-bin histograms of cosine distance δ ∈ [0, 2], the quantile sketch of streaming
 * mode. Two bin layouts (`scale`):
 *
 * - `linear`: bin b covers [2b/bins, 2(b+1)/bins) (absolute accuracy 2/bins; the layout of
 *   version-1 calibrations and snapshots, which carry no `scale`).
 * - `log` (streaming mode's default, {@link DEFAULT_SKETCH_SCALE}; `fit` picks the finer layout for
 *   its clusters, {@link sketchScaleFor}): bin 0 holds
 *   δ < {@link LOG_MIN} (zero and float noise), bins 1..bins−1 are geometric from LOG_MIN to 2, so
 *   every quantile has relative accuracy ln(2/LOG_MIN)/(bins − 1) (0.82% at 2,048 bins) at every
 *   scale, as DDSketch does. Linear bins of width ~1e-3 cannot tell apart the members of a tight
 *   cluster (δ ~ 1e-4, bench/synth.ts at 512-d): every member fell in bin 0 and streaming mode kept
 *   9.8% for 27.7% asked (issue #11 item 14).
 *
 * Values below 0 count in bin 0, values ≥ 2 in the last bin, NaN is ignored. Within a bin mass is
 * taken as uniform, so `quantile` interpolates linearly and `fractionAbove(quantile(q)) = 1 − q`.
 * Same layout ⇒ merge is exact (add the counts).
 *
 * Pure math, no I/O. Counts are Uint32 (≤ 4.29e9 per bin); totals are float64.
 */
import { checkOption, DbpruneError, ErrorCodes } from './errors.js';
import { choiceOption, integerOption } from './validate.js';

/** Default number of bins over [0, 2]. */
export const DEFAULT_BINS = 2048;
/** Range covered by the bins. */
export const SKETCH_MIN = 0;
export const SKETCH_MAX = 2;
/** Lower edge of the first geometric bin of a `log` sketch; smaller δ go to the zero bin. */
export const LOG_MIN = 1e-7;

/** Bin layout of a sketch (module comment). */
export type SketchScale = 'linear' | 'log';
export const SKETCH_SCALES: readonly SketchScale[] = ['linear', 'log'];
/** The default layout of new sketches (JSON without a scale is `linear`, the version-1 layout). */
export const DEFAULT_SKETCH_SCALE: SketchScale = 'log';

function checkBins(bins: number, scale: SketchScale): void {
  choiceOption(scale, 'scale', SKETCH_SCALES);
  integerOption(bins, 'bins', { min: scale === 'log' ? 2 : 1, max: 1 << 20 });
}

/** ln-width of one geometric bin of a `log` sketch. */
function logStep(bins: number): number {
  return Math.log(SKETCH_MAX / LOG_MIN) / (bins - 1);
}

const edgeCache = new Map<string, Float64Array>();

/** The bins + 1 bin edges of a layout (cached; edges[0] = 0, edges[bins] = 2). */
export function binEdges(bins: number, scale: SketchScale = DEFAULT_SKETCH_SCALE): Float64Array {
  const key = `${scale}:${bins}`;
  let e = edgeCache.get(key);
  if (e) return e;
  e = new Float64Array(bins + 1);
  if (scale === 'linear') for (let b = 0; b <= bins; b++) e[b] = (b * SKETCH_MAX) / bins;
  else {
    const step = logStep(bins);
    for (let b = 1; b < bins; b++) e[b] = LOG_MIN * Math.exp((b - 1) * step);
  }
  e[0] = SKETCH_MIN;
  e[bins] = SKETCH_MAX;
  edgeCache.set(key, e);
  return e;
}

/**
 * The layout whose bins are finer at the typical cluster's δ: `log` when the median mean δ of the
 * non-empty clusters is below the crossover δ* = (2/bins) / ln-step (0.119 at 2,048 bins, where a
 * geometric bin is as wide as a linear one), `linear` otherwise (absolute resolution 2/bins is
 * finer above δ*: on dbp-small, δ ≈ 0.3, log bins cost up to 0.003 mean Jaccard at keep 0.1).
 * `log` when no cluster has members.
 */
export function sketchScaleFor(dIntra: ArrayLike<number>, counts: ArrayLike<number>, bins: number = DEFAULT_BINS): SketchScale {
  const means: number[] = [];
  for (let j = 0; j < dIntra.length; j++) if (counts[j] > 0 && Number.isFinite(dIntra[j])) means.push(dIntra[j]);
  if (means.length === 0 || bins < 2) return bins < 2 ? 'linear' : 'log';
  means.sort((x, y) => x - y);
  const crossover = SKETCH_MAX / bins / logStep(bins);
  return means[Math.floor(means.length / 2)] < crossover ? 'log' : 'linear';
}

/** Bin index of δ, or −1 for NaN. */
export function binOf(d: number, bins: number, scale: SketchScale = DEFAULT_SKETCH_SCALE): number {
  if (d !== d) return -1;
  if (scale === 'log') {
    if (d < LOG_MIN) return 0;
    const b = 1 + Math.floor(Math.log(d / LOG_MIN) / logStep(bins));
    return b >= bins ? bins - 1 : b;
  }
  const b = Math.floor((d * bins) / SKETCH_MAX);
  return b < 0 ? 0 : b >= bins ? bins - 1 : b;
}

/**
 * The q-quantile of the bins at `off`. Only bins `from`..`to` − 1 are scanned: they must hold every
 * non-zero bin (zero bins change nothing below), so the answer is the same as over all bins.
 */
function quantileOf(counts: Uint32Array, off: number, edges: Float64Array, total: number, q: number, from = 0, to = edges.length - 1): number {
  if (!(total > 0)) return NaN;
  const target = (q <= 0 ? 0 : q >= 1 ? 1 : q) * total;
  let cum = 0;
  let last = -1;
  for (let b = from; b < to; b++) {
    const c = counts[off + b];
    if (c === 0) continue;
    if (cum + c >= target) return edges[b] + ((target - cum) / c) * (edges[b + 1] - edges[b]);
    cum += c;
    last = b;
  }
  return edges[last + 1];
}

function fractionAboveOf(counts: Uint32Array, off: number, edges: Float64Array, scale: SketchScale, total: number, theta: number): number {
  if (!(total > 0) || theta !== theta) return NaN;
  if (theta <= SKETCH_MIN) return 1;
  if (theta >= SKETCH_MAX) return 0;
  const bins = edges.length - 1;
  const b0 = binOf(theta, bins, scale);
  const lo = edges[b0];
  const hi = edges[b0 + 1];
  // Float rounding of ln may put θ a hair outside its bin's edges: clamp the partial share.
  const share = Math.min(1, Math.max(0, (hi - theta) / (hi - lo)));
  let above = counts[off + b0] * share;
  for (let b = b0 + 1; b < bins; b++) above += counts[off + b];
  return Math.min(1, Math.max(0, above / total));
}

function sumCounts(counts: Uint32Array): number {
  let s = 0;
  for (let i = 0; i < counts.length; i++) s += counts[i];
  return s;
}

/** The scale of a JSON sketch: absent means `linear` (version-1 files); anything else throws. */
export function scaleFromJSON(scale: unknown): SketchScale {
  return choiceOption(scale, 'sketch scale', SKETCH_SCALES, 'linear');
}

/** Little-endian base64 of a Uint32Array (the JSON form of the counts). */
export function uint32ToBase64(a: Uint32Array): string {
  const buf = Buffer.alloc(a.length * 4);
  for (let i = 0; i < a.length; i++) buf.writeUInt32LE(a[i], i * 4);
  return buf.toString('base64');
}

/** Inverse of {@link uint32ToBase64}; throws ERR_DBPRUNE_INVALID_OPTION when the length is wrong. */
export function base64ToUint32(s: string, expectedLength: number): Uint32Array {
  const buf = Buffer.from(s, 'base64');
  if (buf.length !== expectedLength * 4) {
    throw new DbpruneError(ErrorCodes.INVALID_OPTION, `histogram counts hold ${buf.length} bytes, expected ${expectedLength * 4}`, {
      option: 'counts',
    });
  }
  const out = new Uint32Array(expectedLength);
  for (let i = 0; i < expectedLength; i++) out[i] = buf.readUInt32LE(i * 4);
  return out;
}

/** JSON form of a {@link DistanceHistogram}. */
export interface DistanceHistogramJSON {
  bins: number;
  min: number;
  max: number;
  /** Bin layout; absent means `linear`. */
  scale?: SketchScale;
  count: number;
  /** base64 of the little-endian Uint32 bin counts. */
  counts: string;
}

/** One mergeable histogram of δ over [0, 2]. */
export class DistanceHistogram {
  readonly bins: number;
  readonly scale: SketchScale;
  readonly counts: Uint32Array;
  private readonly edges: Float64Array;
  private total = 0;

  /** `bins`: default 2048, limits 1..1,048,576 (2.. for `log`); `scale` default `linear` (ERR_DBPRUNE_INVALID_OPTION otherwise). */
  constructor(bins: number = DEFAULT_BINS, scale: SketchScale = DEFAULT_SKETCH_SCALE) {
    checkBins(bins, scale);
    this.bins = bins;
    this.scale = scale;
    this.counts = new Uint32Array(bins);
    this.edges = binEdges(bins, scale);
  }

  /** Number of (non-NaN) values added. */
  get count(): number {
    return this.total;
  }

  /** Adds one δ; NaN is ignored. */
  add(d: number): void {
    const b = binOf(d, this.bins, this.scale);
    if (b < 0) return;
    this.counts[b]++;
    this.total++;
  }

  /** Adds the first `n` values of `ds` (default all); NaN values are ignored. */
  addMany(ds: ArrayLike<number>, n: number = ds.length): void {
    const { bins, scale } = this;
    let added = 0;
    for (let i = 0; i < n; i++) {
      const b = binOf(ds[i], bins, scale);
      if (b < 0) continue;
      this.counts[b]++;
      added++;
    }
    this.total += added;
  }

  /** Adds all counts of `other` (same bins and scale, else ERR_DBPRUNE_INVALID_OPTION). Returns this. */
  merge(other: DistanceHistogram): this {
    checkOption(other.bins === this.bins && other.scale === this.scale, 'bins', `equal bins (${this.bins}, ${this.scale}) to merge`, [other.bins, other.scale]);
    for (let b = 0; b < this.bins; b++) this.counts[b] += other.counts[b];
    this.total += other.total;
    return this;
  }

  /** The q-quantile (q clamped to [0, 1]), linear inside its bin; NaN when empty. */
  quantile(q: number): number {
    return quantileOf(this.counts, 0, this.edges, this.total, q);
  }

  /** Estimated fraction of values > θ (uniform mass within a bin); NaN when empty. */
  fractionAbove(theta: number): number {
    return fractionAboveOf(this.counts, 0, this.edges, this.scale, this.total, theta);
  }

  /** The lower edge of bin b (b = bins gives the upper edge of the last bin, 2). */
  edge(b: number): number {
    return this.edges[b];
  }

  /** A histogram holding a copy of `counts` (its length is the number of bins). */
  static fromCounts(counts: Uint32Array, scale: SketchScale = DEFAULT_SKETCH_SCALE): DistanceHistogram {
    const h = new DistanceHistogram(counts.length, scale);
    h.counts.set(counts);
    h.total = sumCounts(h.counts);
    return h;
  }

  toJSON(): DistanceHistogramJSON {
    return { bins: this.bins, min: SKETCH_MIN, max: SKETCH_MAX, scale: this.scale, count: this.total, counts: uint32ToBase64(this.counts) };
  }

  /** Rebuilds a histogram; throws ERR_DBPRUNE_INVALID_OPTION on a malformed object. */
  static fromJSON(j: DistanceHistogramJSON): DistanceHistogram {
    checkOption(j !== null && typeof j === 'object', 'histogram', 'an object', j);
    checkOption(j.min === SKETCH_MIN && j.max === SKETCH_MAX, 'histogram range', `[${SKETCH_MIN}, ${SKETCH_MAX}]`, [j.min, j.max]);
    const h = new DistanceHistogram(j.bins, scaleFromJSON(j.scale));
    h.counts.set(base64ToUint32(j.counts, j.bins));
    h.total = sumCounts(h.counts);
    checkOption(h.total === j.count, 'histogram count', `the sum of its bins (${h.total})`, j.count);
    return h;
  }
}

/** JSON form of {@link ClusterSketches}. */
export interface ClusterSketchesJSON {
  k: number;
  bins: number;
  min: number;
  max: number;
  /** Bin layout; absent means `linear`. */
  scale?: SketchScale;
  /** base64 of the little-endian Uint32 counts, k × bins, cluster-major. */
  counts: string;
}

/**
 * k histograms in one flat Uint32Array (cluster-major, k × bins) plus a Float64Array of totals, so
 * hot loops touch no per-cluster objects. Memory: 4·k·bins bytes (4 MB at k = 500, 2048 bins).
 */
export class ClusterSketches {
  readonly k: number;
  readonly bins: number;
  readonly scale: SketchScale;
  /** Bin counts; after writing them directly, call {@link recountTotals}. */
  readonly counts: Uint32Array;
  readonly totals: Float64Array;
  private readonly edges: Float64Array;
  /**
   * Per cluster, the lowest and highest bin that may be non-zero (empty: lo = bins, hi = −1). Every
   * non-zero bin lies in lo..hi, so the O(bins) scans of `quantile` and `binShares` stop there:
   * a tight cluster spans a few dozen of the 2,048 bins, and those scans were the main thread's
   * largest cost in streaming mode (issue 16). Sums of integer counts, so results are unchanged.
   */
  private readonly lo: Int32Array;
  private readonly hi: Int32Array;

  /** `k` ≥ 1; `bins` default 2048, limits 1..1,048,576 (2.. for `log`); `scale` default `linear` (ERR_DBPRUNE_INVALID_OPTION otherwise). */
  constructor(k: number, bins: number = DEFAULT_BINS, scale: SketchScale = DEFAULT_SKETCH_SCALE) {
    integerOption(k, 'k', { min: 1 });
    checkBins(bins, scale);
    this.k = k;
    this.bins = bins;
    this.scale = scale;
    this.counts = new Uint32Array(k * bins);
    this.totals = new Float64Array(k);
    this.edges = binEdges(bins, scale);
    this.lo = new Int32Array(k).fill(bins);
    this.hi = new Int32Array(k).fill(-1);
  }

  /** Adds δ to cluster j; NaN δ or j outside 0..k−1 is ignored. */
  add(j: number, d: number): void {
    if (!(j >= 0 && j < this.k)) return;
    const b = binOf(d, this.bins, this.scale);
    if (b < 0) return;
    this.counts[j * this.bins + b]++;
    this.totals[j]++;
    this.widen(j, b);
  }

  private widen(j: number, b: number): void {
    if (b < this.lo[j]) this.lo[j] = b;
    if (b > this.hi[j]) this.hi[j] = b;
  }

  /** Adds n (default cluster.length) pairs; rows with cluster < 0 (errors) or NaN δ are skipped. */
  addBatch(cluster: Int32Array, distance: Float32Array | Float64Array, n: number = cluster.length): void {
    const { bins, k, scale } = this;
    for (let i = 0; i < n; i++) {
      const j = cluster[i];
      if (!(j >= 0 && j < k)) continue;
      const b = binOf(distance[i], bins, scale);
      if (b < 0) continue;
      this.counts[j * bins + b]++;
      this.totals[j]++;
      this.widen(j, b);
    }
  }

  /** Values in cluster j. */
  count(j: number): number {
    return this.totals[j];
  }

  /** Values in all clusters. */
  get total(): number {
    let s = 0;
    for (let j = 0; j < this.k; j++) s += this.totals[j];
    return s;
  }

  /** q-quantile of cluster j (linear inside its bin); NaN when the cluster is empty. */
  quantile(j: number, q: number): number {
    return quantileOf(this.counts, j * this.bins, this.edges, this.totals[j], q, this.lo[j], this.hi[j] + 1);
  }

  /** Estimated fraction of cluster j's values > θ; NaN when the cluster is empty. */
  fractionAbove(j: number, theta: number): number {
    return fractionAboveOf(this.counts, j * this.bins, this.edges, this.scale, this.totals[j], theta);
  }

  /** The bin index of δ in this layout (−1 for NaN). */
  binIndex(d: number): number {
    return binOf(d, this.bins, this.scale);
  }

  /**
   * Shares of cluster j's values inside bin b and above it (O(bins)); NaN when the cluster is empty.
   * Streaming mode uses them where one bin holds too much of a cluster for a threshold to split it.
   */
  binShares(j: number, b: number): { inside: number; above: number } {
    const o = j * this.bins;
    let above = 0;
    const end = Math.min(this.bins - 1, this.hi[j]);
    for (let t = b + 1; t <= end; t++) above += this.counts[o + t];
    const total = this.totals[j];
    return { inside: this.counts[o + b] / total, above: above / total };
  }

  /** A copy of cluster j as a standalone {@link DistanceHistogram}. */
  histogram(j: number): DistanceHistogram {
    return DistanceHistogram.fromCounts(this.counts.subarray(j * this.bins, (j + 1) * this.bins), this.scale);
  }

  /** Adds all counts of `other` (same k, bins and scale, else ERR_DBPRUNE_INVALID_OPTION). Returns this. */
  merge(other: ClusterSketches): this {
    checkOption(
      other.k === this.k && other.bins === this.bins && other.scale === this.scale,
      'sketches',
      `k = ${this.k}, bins = ${this.bins}, scale = ${this.scale}`,
      [other.k, other.bins, other.scale],
    );
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    for (let j = 0; j < this.k; j++) this.totals[j] += other.totals[j];
    this.recountRanges();
    return this;
  }

  toJSON(): ClusterSketchesJSON {
    return { k: this.k, bins: this.bins, min: SKETCH_MIN, max: SKETCH_MAX, scale: this.scale, counts: uint32ToBase64(this.counts) };
  }

  /** Rebuilds sketches; throws ERR_DBPRUNE_INVALID_OPTION on a malformed object. */
  static fromJSON(j: ClusterSketchesJSON): ClusterSketches {
    checkOption(j !== null && typeof j === 'object', 'sketches', 'an object', j);
    checkOption(j.min === SKETCH_MIN && j.max === SKETCH_MAX, 'sketches range', `[${SKETCH_MIN}, ${SKETCH_MAX}]`, [j.min, j.max]);
    const s = new ClusterSketches(j.k, j.bins, scaleFromJSON(j.scale));
    s.counts.set(base64ToUint32(j.counts, j.k * j.bins));
    s.recountTotals();
    return s;
  }

  /** Recomputes the per-cluster totals (and occupied bin ranges) from the counts (after `counts.set`). */
  recountTotals(): void {
    for (let c = 0; c < this.k; c++) {
      let t = 0;
      const o = c * this.bins;
      for (let b = 0; b < this.bins; b++) t += this.counts[o + b];
      this.totals[c] = t;
    }
    this.recountRanges();
  }

  private recountRanges(): void {
    for (let c = 0; c < this.k; c++) {
      const o = c * this.bins;
      let lo = this.bins;
      let hi = -1;
      for (let b = 0; b < this.bins; b++) {
        if (this.counts[o + b] === 0) continue;
        if (lo === this.bins) lo = b;
        hi = b;
      }
      this.lo[c] = lo;
      this.hi[c] = hi;
    }
  }
}
