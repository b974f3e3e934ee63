/**
 * DataComp's filters for exact mode: one pass over the shards' metadata columns (and, when the score
 * column is absent, the npz's image/text embeddings of one tower) before DBP's pass 1.
 *
 *   basic filter (stage helper markBasicFilter) → CLIP score (markClipScore; for `top`, the
 *   reference threshold over the whole pool, computed from the scores kept in memory: 8 B/row)
 *
 * The result is one byte per row: 0 = passes, else an index into `labels` (reason + message), which
 * exact mode turns into a `drop` manifest row and excludes from SemDeDup and the DBP statistics.
 * The CLIP-score fraction is over the whole pool, as DataComp's baselines compute it and then
 * intersect uid sets: `--basic-filter --clip-score-top 0.3` equals DataComp's "basic ∩ CLIP score".
 */
import { clipScoreTopThreshold, TOP_FRACTION } from '../src/core/datacomp-filters.js';
import { DbpruneError, ErrorCodes, UsageError } from '../src/core/errors.js';
import { choiceOption, integerOption, numberOption } from '../src/core/validate.js';
import type { RowError } from '../src/core/sample.js';
import type { DbpPlan } from '../src/core/dbp.js';
import type { RunStats } from '../src/io/stats.js';
import { dataCompColumnBatches, resolveDataCompShards, type ClipScoreSource } from '../src/io/datacomp.js';
import { emptyBasicCounts, loadLanguageDetector, markBasicFilter, type BasicFilterCounts, type LanguageDetector } from '../src/stages/basic-filter.js';
import { markClipScore } from '../src/stages/clip-score-filter.js';

/** DataComp's basic filter, with or without its English test. */
export const BASIC_FILTERS = ['full', 'no-language'] as const;

/** The towers a CLIP score can be computed from (io/datacomp.ts's `ClipScoreSource['from']`). */
const CLIP_SCORE_TOWERS: readonly NonNullable<ClipScoreSource['from']>[] = ['l14', 'b32'];

/** Which DataComp filters to run, and how. */
export interface DataCompFilterOptions {
  /** DataComp's basic filter: `full` (with the English test) or `no-language`. Off when absent. */
  basic?: (typeof BASIC_FILTERS)[number];
  /** CLIP-score filter: keep `score ≥ min`, or the top fraction `top` (exactly one). Off when absent. */
  clipScore?: { min?: number; top?: number } & ClipScoreSource;
  /** Language identifier for `basic: 'full'`; default eld. */
  detect?: LanguageDetector;
}

/** Exact mode's keep target and DataComp input options (ExactPruneOptions extends this). */
export interface KeepAndDataCompOptions {
  /** Keep ratio r: N_target = ⌊r·N⌋ over the valid rows that survive the filters and SemDeDup. */
  keepRatio?: number;
  /** Absolute N_target = min(target, N) instead of `keepRatio` (the paper's kept sizes: 112M of 277M). */
  target?: number;
  /** DataComp shards (folder or globs of NNNNNNNN.parquet + .npz) instead of `embeddings`. */
  datacomp?: string | string[];
  /** npz member read with `datacomp`: l14_img (default) or b32_img. */
  embeddingKey?: string;
  /** DataComp filters (need `datacomp`), basic → CLIP score, before SemDeDup and DBP; outside the DBP statistics. */
  filters?: DataCompFilterOptions;
}

/** Validates filter options once; UsageError (exit 2) on a bad combination. */
export function checkDataCompFilters(f: DataCompFilterOptions | undefined): void {
  if (!f) return;
  if (f.basic !== undefined) choiceOption(f.basic, '--basic-filter', BASIC_FILTERS);
  const c = f.clipScore;
  if (c) {
    if ((c.min === undefined) === (c.top === undefined)) throw new UsageError('give one of --clip-score-min and --clip-score-top', { option: 'clip-score-min' });
    if (c.min !== undefined) numberOption(c.min, '--clip-score-min');
    if (c.top !== undefined) numberOption(c.top, '--clip-score-top', TOP_FRACTION);
    if (c.from !== undefined) choiceOption(c.from, '--clip-score-from', CLIP_SCORE_TOWERS);
  }
}

/** What the filter pass decided. */
export interface DataCompFilterResult {
  /** Per row: 0 = passes, else 1 + index into `labels`. */
  codes: Uint8Array;
  labels: RowError[];
  /** The `filters` section of stats.json. */
  stats: Record<string, unknown>;
  /** Rows dropped per reason (`filter:basic`, `filter:clip-score`). */
  dropped: Record<string, number>;
  /** Set by {@link filterRows}: rows with an unusable embedding that a filter drops (reported as filtered). */
  invalidFiltered?: number;
}

/**
 * Runs the filters over `datacomp` shards holding `total` rows (as planned by the embedding source).
 * @throws ERR_DBPRUNE_INTERNAL when the metadata's row count disagrees with `total`; the codes of
 *   dataCompColumnBatches (row-count mismatches naming the shard, unreadable parquet/npz).
 */
export async function exactDataCompFilters(
  datacomp: string | string[],
  total: number,
  f: DataCompFilterOptions,
  signal?: AbortSignal,
): Promise<DataCompFilterResult> {
  checkDataCompFilters(f);
  const shards = await resolveDataCompShards(datacomp);
  const codes = new Uint8Array(total);
  const labels: RowError[] = [];
  const labelIndex = new Map<string, number>();
  const code = (e: RowError): number => {
    const key = `${e.reason}\u0000${e.message}`;
    let i = labelIndex.get(key);
    if (i === undefined) {
      if (labels.length >= 255) throw new DbpruneError(ErrorCodes.INTERNAL, 'more than 255 distinct filter messages');
      i = labels.length;
      labels.push(e);
      labelIndex.set(key, i);
    }
    return i + 1;
  };
  const detect = f.basic === 'full' ? (f.detect ?? (await loadLanguageDetector())) : undefined;
  const basicCounts: BasicFilterCounts = emptyBasicCounts();
  const clip = f.clipScore;
  const scores = clip ? new Float64Array(total) : undefined;
  let rows = 0;
  for await (const cols of dataCompColumnBatches(shards, { score: clip, signal, basic: f.basic !== undefined })) {
    if (cols.start + cols.rows > total) throw new DbpruneError(ErrorCodes.INTERNAL, `filter pass read more rows than the ${total} planned`, { shard: cols.shard });
    if (scores && cols.score) scores.set(cols.score, cols.start);
    if (f.basic) {
      const errors = new Array<RowError | undefined>(cols.rows).fill(undefined);
      markBasicFilter({ text: cols.text, original_width: cols.width, original_height: cols.height }, cols.rows, errors, detect, basicCounts);
      for (let i = 0; i < cols.rows; i++) {
        const e = errors[i];
        if (e) codes[cols.start + i] = code(e);
      }
    }
    rows = cols.start + cols.rows;
  }
  if (rows !== total) throw new DbpruneError(ErrorCodes.INTERNAL, `filter pass read ${rows} rows, planned ${total}`);
  const stats: Record<string, unknown> = { order: ['basic', 'clip_score', 'semdedup', 'dbp'] };
  const dropped: Record<string, number> = {};
  if (f.basic) {
    const n = Object.values(basicCounts).reduce((a, b) => a + b, 0);
    dropped['filter:basic'] = n;
    stats.basic = { language: f.basic === 'full' ? 'eld (medium); DataComp used fasttext lid.176' : 'off', dropped: n, by_condition: basicCounts };
  }
  if (clip && scores) {
    const top = clip.top !== undefined ? clipScoreTopThreshold(scores, clip.top) : undefined;
    const threshold = top ? top.threshold : (clip.min as number);
    let n = 0;
    const errors: (RowError | undefined)[] = [undefined];
    for (let i = 0; i < total; i++) {
      if (codes[i] !== 0) continue;
      errors[0] = undefined;
      markClipScore(scores.subarray(i, i + 1), 1, errors, threshold);
      const e = errors[0] as RowError | undefined;
      if (e) {
        codes[i] = code(e);
        n++;
      }
    }
    dropped['filter:clip-score'] = n;
    stats.clip_score = {
      mode: 'exact',
      rule: top ? 'n = int(N·f); t = sorted_desc[n]; keep score ≥ t (over the whole pool)' : 'keep score ≥ t',
      fraction: clip.top ?? null,
      n: top?.n ?? null,
      threshold,
      source: clip.force ? `cosine(${clip.from ?? 'l14'}_img, ${clip.from ?? 'l14'}_txt)` : `${clip.column ?? 'clip_l14_similarity_score'} (else cosine of ${clip.from ?? 'l14'} embeddings)`,
      dropped: n,
    };
  }
  return { codes, labels, stats, dropped };
}

// ---------------------------------------------------------------------------------------------
// exact mode's use of the filters and of --target (here so that exact-prune.ts stays small)

/**
 * The keep ratio that makes N_target = ⌊ratio·N⌋ equal min(target, N) for the N valid rows left
 * (after filters and SemDeDup): (target + ½)/N, far from the rounding edges of floor.
 */
export function targetRatio(target: number, cluster: Int32Array): number {
  let n = 0;
  for (let i = 0; i < cluster.length; i++) if (cluster[i] >= 0) n++;
  if (n === 0 || target >= n) return 1;
  return (target + 0.5) / n;
}

/** Exactly one of keepRatio and target; returns the keep ratio to validate (1 while a target waits for N). */
export function checkKeepOrTarget(opts: { keepRatio?: number; target?: number }): number {
  if ((opts.keepRatio === undefined) === (opts.target === undefined)) throw new UsageError('give one of --keep <ratio> and --target <n>', { option: 'keep' });
  if (opts.target !== undefined) integerOption(opts.target, '--target', { min: 1 });
  return opts.keepRatio ?? 1;
}

/** Whether DataComp filters are asked for (validated; they need `datacomp`). */
export function checkFilterOptions(opts: { datacomp?: string | string[]; filters?: DataCompFilterOptions }): boolean {
  const want = opts.filters !== undefined && (opts.filters.basic !== undefined || opts.filters.clipScore !== undefined);
  if (want && opts.datacomp === undefined) throw new UsageError('--basic-filter and --clip-score-* need --datacomp (DataComp metadata)', { option: 'datacomp' });
  checkDataCompFilters(opts.filters);
  return want;
}

/**
 * Runs the DataComp filter pass and takes the filtered rows out of the records (cluster −1).
 * `keyFlags` (non-zero = a key problem, already −1) tell unusable embeddings from key problems, so
 * that `invalidFiltered` counts the unusable embeddings that a filter reports instead.
 */
export async function filterRows(
  opts: { datacomp?: string | string[]; filters?: DataCompFilterOptions; signal?: AbortSignal },
  total: number,
  cluster: Int32Array,
  keyFlags?: Uint8Array | null,
): Promise<DataCompFilterResult> {
  const filtered = await exactDataCompFilters(opts.datacomp as string | string[], total, opts.filters as DataCompFilterOptions, opts.signal);
  let invalidFiltered = 0;
  for (let i = 0; i < total; i++) {
    if (filtered.codes[i] === 0) continue;
    if (cluster[i] === -1 && !keyFlags?.[i]) invalidFiltered++;
    cluster[i] = -1;
  }
  filtered.invalidFiltered = invalidFiltered;
  return filtered;
}

export function addTargetAndFilterStats(stats: RunStats, plan: DbpPlan, target: number | undefined, filtered: DataCompFilterResult | undefined): void {
  if (target !== undefined) {
    stats.params.target = target;
    stats.params.keep_ratio = plan.n > 0 ? plan.nTarget / plan.n : 0;
  }
  if (filtered) {
    stats.filters = filtered.stats;
    Object.assign(stats.totals.errors, filtered.dropped);
  }
}
