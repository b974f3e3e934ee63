/**
 * What the report needs from a run, collected while manifest rows stream to the sink, in memory
 * bounded independently of the number of samples N: per-cluster δ histograms (all rows and kept
 * rows), the exact smallest/largest kept and dropped δ per cluster, error counts by reason, a
 * downsampled progress timeline, per-stage throughput, and a seeded reservoir of small JPEG
 * thumbnails per cluster for kept and for dropped samples.
 *
 * Used by both pipelines (exact and streaming): construct one {@link ReportCollector} per run, call
 * {@link ReportCollector.observe} with every batch of manifest rows as it is written (with the
 * batch's thumbnails when images passed through), {@link ReportCollector.tick} with the elapsed
 * time after each batch, and at the end put `toJSON().report` into `stats.json` as its `report`
 * section and write `toJSON().thumbnails` to `thumbnails.json` beside it
 * ({@link writeReportThumbnails}). `writeReport` (report-html.ts) renders both.
 *
 * Memory: 2 · k · fineBins · 4 bytes of histograms (fineBins = clamp(⌊2^22 / k⌋, 64, 1024), so at
 * most ~32 MiB; 4 MiB at k = 500), 4 · k doubles of δ extrema, ≤ 2 · k · thumbsPerCluster thumbnails
 * of ≤ maxThumbBytes each, ≤ 2 · maxTimelinePoints timeline points.
 */
import { joinLocation as join } from '../io/storage/index.js';
import { integerOption, numberOption } from '../core/validate.js';
import { Rng } from '../core/rng.js';
import type { ManifestRow } from '../core/sample.js';
import { writeJsonAtomic } from '../io/stats.js';
import type { OutputSet } from '../io/output-set.js';

/** Range of the internal fine δ histograms: cosine distance of unit vectors lies in [0, 2]. */
const DELTA_MAX = 2;

/** Options of {@link ReportCollector}: k (integer 1..2^24), thumbnail seed (default 0), δ histogram bins (default 48; 4..512) and thumbnail sampling. */
export interface ReportCollectorOptions {
  /** Number of clusters (integer 1..2^24). Rows with cluster outside 0..k−1 count only as errors/other. */
  k: number;
  /** Seed of the thumbnail reservoirs (unsigned 32-bit integer). Default 0. */
  seed?: number;
  /** Maximum bins per cluster in the emitted δ histograms. Default 48, 4..512. */
  bins?: number;
  /** Thumbnails kept per cluster for each side (kept, dropped). Default 4, 0..64. */
  thumbsPerCluster?: number;
  /**
   * Bytes the thumbnails may add to thumbnails.json and to the page: each costs its base64 JPEG
   * plus its caption, key and ~96 bytes of markup. Default 3,500,000 (the page for k = 500 stays
   * under 5 MB), 0..2^30. Filled round-robin over clusters (1st kept + 1st dropped of every
   * cluster, then the 2nd, ...), so every cluster gets thumbnails before any gets many.
   */
  thumbBudgetBytes?: number;
  /** A thumbnail larger than this is ignored (decode's `thumbnail` should be ~32–48 px). Default 8192, 256..1 MiB. */
  maxThumbBytes?: number;
  /** Captions are cut to this many characters. Default 140, 0..2000. */
  captionChars?: number;
  /** Timeline points kept (older points thinned by halving). Default 500, 2..10000. */
  maxTimelinePoints?: number;
}

/** Per-cluster δ histograms, columnar (length k each); a cluster with no rows has empty arrays. */
export interface ReportHistograms {
  /** Width of the internal fine bins the emitted bins are whole multiples of. */
  fine_width: number;
  /** Left edge of cluster j's first bin. */
  lo: number[];
  /** Bin width for cluster j (a multiple of fine_width); its bins cover [lo, lo + width · all[j].length). */
  width: number[];
  /** Counts of all decided rows of cluster j with a finite δ (kept + dropped, duplicates included). */
  all: number[][];
  /** Counts of kept rows, aligned with `all`. */
  kept: number[][];
}

/** Progress over the run, columnar; cumulative counts at elapsed time t (seconds). */
export interface ReportTimeline {
  t: number[];
  samples: number[];
  kept: number[];
  errors: number[];
  duplicates: number[];
}

/** The `report` section of stats.json. */
export interface ReportSection {
  version: 1;
  /** Totals over the observed rows (equal to stats.totals when every row was observed). */
  observed: { samples: number; kept: number; dropped: number; errors: number; duplicates: number; filtered: number };
  /** Rows by manifest reason, e.g. { dbp: 1200, duplicate: 30, 'error:decode': 2 }. */
  reasons: Record<string, number>;
  /** Rows with an `error:*` reason, by reason. */
  errors: Record<string, number>;
  histograms: ReportHistograms;
  /** Exact extremes of δ per cluster (null where none): the keep threshold of exact `hard` is kept_min, of `easy` kept_max. */
  delta: { kept_min: (number | null)[]; kept_max: (number | null)[]; dropped_min: (number | null)[]; dropped_max: (number | null)[] };
  timeline: ReportTimeline;
  /** Samples per second by stage, as given to {@link ReportCollector.setThroughput}. */
  throughput: Record<string, number>;
  thumbnails: {
    per_cluster: number;
    budget_bytes: number;
    /** Rows offered with a thumbnail. */
    offered: number;
    /** Thumbnails written to thumbnails.json, their JPEG bytes, and their cost against the budget. */
    included: number;
    jpeg_bytes: number;
    bytes: number;
    /** Held by the reservoirs but left out by the byte budget. */
    over_budget: number;
  };
}

/** One thumbnail in thumbnails.json. */
export interface ReportThumbnail {
  cluster: number;
  decision: 'keep' | 'drop';
  reason: string;
  key: string;
  caption: string | null;
  distance: number | null;
  /** Base64 JPEG. */
  jpeg: string;
}

/** thumbnails.json. */
export interface ReportThumbnails {
  version: 1;
  items: ReportThumbnail[];
}

interface HeldThumb {
  key: string;
  caption: string | null;
  distance: number | null;
  reason: string;
  jpeg: Buffer;
}

interface TimelinePoint {
  t: number;
  samples: number;
  kept: number;
  errors: number;
  duplicates: number;
}

/**
 * Collects the report's data from the manifest rows of a run. Not thread-safe; one per run.
 * The constructor validates options (ERR_DBPRUNE_INVALID_OPTION).
 */
export class ReportCollector {
  readonly k: number;
  readonly bins: number;
  readonly fineBins: number;
  readonly thumbsPerCluster: number;
  readonly thumbBudgetBytes: number;
  readonly maxThumbBytes: number;
  readonly captionChars: number;
  readonly maxTimelinePoints: number;

  private readonly histAll: Uint32Array;
  private readonly histKept: Uint32Array;
  private readonly keptMin: Float64Array;
  private readonly keptMax: Float64Array;
  private readonly droppedMin: Float64Array;
  private readonly droppedMax: Float64Array;
  private readonly reasons = new Map<string, number>();
  private samples = 0;
  private kept = 0;
  private errors = 0;
  private duplicates = 0;
  private filtered = 0;

  private readonly rng: Rng;
  /** Reservoirs: index 2j = kept, 2j + 1 = dropped. */
  private readonly thumbs: (HeldThumb[] | undefined)[];
  private readonly thumbSeen: Float64Array;
  private thumbsOffered = 0;

  private timeline: TimelinePoint[] = [];
  private tickStride = 1;
  private ticksSinceStored = 0;
  private lastTick: TimelinePoint | undefined;
  private throughput: Record<string, number> = {};

  constructor(options: ReportCollectorOptions) {
    const o = options;
    this.k = integerOption(o.k, 'k', { min: 1, max: 1 << 24 });
    const seed = integerOption(o.seed, 'seed', { default: 0, min: 0, max: 0xffffffff });
    this.bins = integerOption(o.bins, 'bins', { default: 48, min: 4, max: 512 });
    this.thumbsPerCluster = integerOption(o.thumbsPerCluster, 'thumbsPerCluster', { default: 4, min: 0, max: 64 });
    this.thumbBudgetBytes = integerOption(o.thumbBudgetBytes, 'thumbBudgetBytes', { default: 3_500_000, min: 0, max: 2 ** 30 });
    this.maxThumbBytes = integerOption(o.maxThumbBytes, 'maxThumbBytes', { default: 8192, min: 256, max: 1 << 20 });
    this.captionChars = integerOption(o.captionChars, 'captionChars', { default: 140, min: 0, max: 2000 });
    this.maxTimelinePoints = integerOption(o.maxTimelinePoints, 'maxTimelinePoints', { default: 500, min: 2, max: 10000 });

    this.fineBins = Math.max(64, Math.min(1024, Math.floor((1 << 22) / this.k)));
    this.histAll = new Uint32Array(this.k * this.fineBins);
    this.histKept = new Uint32Array(this.k * this.fineBins);
    this.keptMin = new Float64Array(this.k).fill(Infinity);
    this.keptMax = new Float64Array(this.k).fill(-Infinity);
    this.droppedMin = new Float64Array(this.k).fill(Infinity);
    this.droppedMax = new Float64Array(this.k).fill(-Infinity);
    this.rng = new Rng(seed);
    this.thumbs = new Array<HeldThumb[] | undefined>(2 * this.k);
    this.thumbSeen = new Float64Array(2 * this.k);
  }

  /**
   * Records one batch of manifest rows, in sink order. `thumbnails[i]` (optional, aligned with
   * `rows`) is a small JPEG of row i; it enters cluster `rows[i].cluster`'s kept or dropped
   * reservoir (uniform over the rows offered with a thumbnail, seeded). Rows without a cluster
   * (−1) count in the totals and reasons only. O(rows) time; never keeps a reference to `rows`.
   */
  observe(rows: readonly ManifestRow[], thumbnails?: readonly (Buffer | undefined)[]): void {
    const fb = this.fineBins;
    const scale = fb / DELTA_MAX;
    // Reasons come in long runs (dbp, dbp, …): count a run, then add it to the tallies once.
    let runReason: string | undefined;
    let runLength = 0;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      const keep = r.decision === 'keep';
      if (keep) this.kept++;
      if (r.reason !== runReason) {
        if (runReason !== undefined) this.countReason(runReason, runLength);
        runReason = r.reason;
        runLength = 0;
      }
      runLength++;
      const j = r.cluster;
      if (!(Number.isInteger(j) && j >= 0 && j < this.k)) continue;
      const d = r.distance;
      if (d !== null && Number.isFinite(d)) {
        let b = Math.floor(d * scale);
        if (b < 0) b = 0;
        else if (b >= fb) b = fb - 1;
        this.histAll[j * fb + b]++;
        if (keep) {
          this.histKept[j * fb + b]++;
          if (d < this.keptMin[j]) this.keptMin[j] = d;
          if (d > this.keptMax[j]) this.keptMax[j] = d;
        } else {
          if (d < this.droppedMin[j]) this.droppedMin[j] = d;
          if (d > this.droppedMax[j]) this.droppedMax[j] = d;
        }
      }
      const th = thumbnails?.[i];
      if (th && th.length > 0 && th.length <= this.maxThumbBytes && this.thumbsPerCluster > 0) this.offerThumb(r, j, keep, th);
    }
    if (runReason !== undefined) this.countReason(runReason, runLength);
  }

  /** Adds `n` rows with manifest reason `reason` to the totals. */
  private countReason(reason: string, n: number): void {
    this.samples += n;
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + n);
    if (reason.startsWith('error:')) this.errors += n;
    else if (reason === 'duplicate') this.duplicates += n;
    else if (reason.startsWith('filter:')) this.filtered += n;
  }

  private offerThumb(r: ManifestRow, j: number, keep: boolean, jpeg: Buffer): void {
    this.thumbsOffered++;
    const slot = 2 * j + (keep ? 0 : 1);
    const seen = ++this.thumbSeen[slot];
    let res = this.thumbs[slot];
    if (!res) res = this.thumbs[slot] = [];
    let at: number;
    if (res.length < this.thumbsPerCluster) at = res.length;
    else {
      at = Math.floor(this.rng.next() * seen);
      if (at >= this.thumbsPerCluster) return;
    }
    const caption = r.caption === null || r.caption === undefined ? null : r.caption.length > this.captionChars ? `${r.caption.slice(0, this.captionChars - 1)}…` : r.caption;
    // Copy: the caller's buffer may be a view into a larger pool.
    res[at] = { key: r.key, caption, distance: r.distance, reason: r.reason, jpeg: Buffer.from(jpeg) };
  }

  /**
   * Records a point of the progress timeline: the cumulative counts so far at `elapsedSeconds`
   * (finite, ≥ 0). Call after each batch; at most `maxTimelinePoints` points are kept, evenly
   * thinned (every other point is dropped and the stride doubles when full), and the latest call
   * is always the last point.
   */
  tick(elapsedSeconds: number): void {
    numberOption(elapsedSeconds, 'elapsedSeconds', { min: 0 });
    const p: TimelinePoint = { t: elapsedSeconds, samples: this.samples, kept: this.kept, errors: this.errors, duplicates: this.duplicates };
    this.lastTick = p;
    if (++this.ticksSinceStored < this.tickStride && this.timeline.length > 0) return;
    this.ticksSinceStored = 0;
    this.timeline.push(p);
    if (this.timeline.length >= this.maxTimelinePoints) {
      this.timeline = this.timeline.filter((_, i) => i % 2 === 0);
      this.tickStride *= 2;
    }
  }

  /** Sets (merges) throughput in samples per second by stage name, e.g. { embed: 812.5 }; finite values ≥ 0. */
  setThroughput(perStage: Record<string, number>): void {
    for (const [stage, v] of Object.entries(perStage)) {
      this.throughput[stage] = numberOption(v, `throughput.${stage}`, { min: 0 });
    }
  }

  /**
   * The collected data: `report`, the compact section for stats.json, and `thumbnails`, the
   * payload of thumbnails.json (`items` empty when no row brought a thumbnail). Does not reset
   * the collector; may be called more than once.
   */
  toJSON(): { report: ReportSection; thumbnails: ReportThumbnails } {
    const k = this.k;
    const fb = this.fineBins;
    const fineWidth = DELTA_MAX / fb;
    const hist: ReportHistograms = { fine_width: fineWidth, lo: new Array<number>(k), width: new Array<number>(k), all: new Array<number[]>(k), kept: new Array<number[]>(k) };
    for (let j = 0; j < k; j++) {
      const base = j * fb;
      let first = -1;
      let last = -1;
      for (let b = 0; b < fb; b++) {
        if (this.histAll[base + b] > 0) {
          if (first < 0) first = b;
          last = b;
        }
      }
      if (first < 0) {
        hist.lo[j] = 0;
        hist.width[j] = fineWidth;
        hist.all[j] = [];
        hist.kept[j] = [];
        continue;
      }
      const group = Math.max(1, Math.ceil((last - first + 1) / this.bins));
      const nb = Math.ceil((last - first + 1) / group);
      const all = new Array<number>(nb).fill(0);
      const kept = new Array<number>(nb).fill(0);
      for (let b = first; b <= last; b++) {
        const c = Math.floor((b - first) / group);
        all[c] += this.histAll[base + b];
        kept[c] += this.histKept[base + b];
      }
      hist.lo[j] = first * fineWidth;
      hist.width[j] = group * fineWidth;
      hist.all[j] = all;
      hist.kept[j] = kept;
    }
    const ext = (a: Float64Array): (number | null)[] => Array.from(a, (v) => (Number.isFinite(v) ? v : null));

    const timelinePoints = [...this.timeline];
    if (this.lastTick && timelinePoints[timelinePoints.length - 1] !== this.lastTick) timelinePoints.push(this.lastTick);
    while (timelinePoints.length > this.maxTimelinePoints) timelinePoints.splice(timelinePoints.length - 2, 1);
    const timeline: ReportTimeline = {
      t: timelinePoints.map((p) => p.t),
      samples: timelinePoints.map((p) => p.samples),
      kept: timelinePoints.map((p) => p.kept),
      errors: timelinePoints.map((p) => p.errors),
      duplicates: timelinePoints.map((p) => p.duplicates),
    };

    // Thumbnails: round-robin over clusters and sides until the byte budget is spent.
    const items: ReportThumbnail[] = [];
    let bytes = 0;
    let jpegBytes = 0;
    let held = 0;
    for (const r of this.thumbs) held += r?.length ?? 0;
    let full = false;
    for (let round = 0; round < this.thumbsPerCluster && !full; round++) {
      for (let slot = 0; slot < 2 * k && !full; slot++) {
        const t = this.thumbs[slot]?.[round];
        if (!t) continue;
        const cost = thumbCost(t);
        if (bytes + cost > this.thumbBudgetBytes) {
          full = true;
          break;
        }
        bytes += cost;
        jpegBytes += t.jpeg.length;
        items.push({
          cluster: slot >> 1,
          decision: slot & 1 ? 'drop' : 'keep',
          reason: t.reason,
          key: t.key,
          caption: t.caption,
          distance: t.distance,
          jpeg: t.jpeg.toString('base64'),
        });
      }
    }
    const errors: Record<string, number> = {};
    const reasons: Record<string, number> = {};
    for (const [r, n] of [...this.reasons].sort((a, b) => b[1] - a[1])) {
      reasons[r] = n;
      if (r.startsWith('error:')) errors[r] = n;
    }
    const report: ReportSection = {
      version: 1,
      observed: {
        samples: this.samples,
        kept: this.kept,
        dropped: this.samples - this.kept,
        errors: this.errors,
        duplicates: this.duplicates,
        filtered: this.filtered,
      },
      reasons,
      errors,
      histograms: hist,
      delta: { kept_min: ext(this.keptMin), kept_max: ext(this.keptMax), dropped_min: ext(this.droppedMin), dropped_max: ext(this.droppedMax) },
      timeline,
      throughput: { ...this.throughput },
      thumbnails: {
        per_cluster: this.thumbsPerCluster,
        budget_bytes: this.thumbBudgetBytes,
        offered: this.thumbsOffered,
        included: items.length,
        jpeg_bytes: jpegBytes,
        bytes,
        over_budget: held - items.length,
      },
    };
    return { report, thumbnails: { version: 1, items } };
  }
}

/** What a thumbnail adds to the page: base64 JPEG, caption, key and the markup around them. */
function thumbCost(t: HeldThumb): number {
  return Math.ceil(t.jpeg.length / 3) * 4 + Buffer.byteLength(t.caption ?? '') + t.key.length + 96;
}

/**
 * Writes `<outDir>/thumbnails.json` atomically (or into `outputs`) when `payload` holds any thumbnail; returns its
 * path, or undefined when there was nothing to write (no file is created then).
 */
export async function writeReportThumbnails(outDir: string, payload: ReportThumbnails, outputs?: OutputSet): Promise<string | undefined> {
  if (payload.items.length === 0) return undefined;
  const path = join(outDir, 'thumbnails.json');
  await writeJsonAtomic(path, payload, outputs);
  return path;
}
