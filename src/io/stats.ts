/**
 * `stats.json`: the per-cluster figures of a run, one schema for exact and streaming mode, read by
 * the report and by users (pandas: `pd.DataFrame(stats["clusters"])`).
 */
import { writeFileAtomic, type OutputSet } from './output-set.js';

/**
 * Every file `prune`/`run` may write into their `--out` folder. A run replaces them as one set:
 * the ones it does not write this time are removed when it commits (src/io/output-set.ts).
 */
export const RUN_OUTPUT_FILES = ['manifest.parquet', 'manifest.arrow', 'manifest.jsonl', 'kept.txt', 'kept_uids.npy', 'stats.json', 'thumbnails.json', 'report.html'] as const;

export interface ClusterStatsColumns {
  n: number[];
  d_intra: number[];
  d_inter: number[];
  complexity: number[];
  p: number[];
  /** Integer quota (exact mode) or the last planned real quota scaled to the stream (streaming). */
  quota: number[];
  quota_real: number[];
  lb: number[];
  ub: number[];
  kept: number[];
  /** Streaming mode: the last keep threshold on δ per cluster (null in exact mode). */
  threshold?: (number | null)[];
}

export interface RunStats {
  version: 1;
  mode: 'exact' | 'streaming';
  method: string;
  params: Record<string, unknown>;
  totals: {
    samples: number;
    valid: number;
    n_target: number;
    kept: number;
    dropped: number;
    keep_ratio: number;
    errors: Record<string, number>;
    duplicates: number;
    renormalized: number;
    k: number;
    min_samples: number;
    lambda: number;
    seconds: number;
    samples_per_sec: number;
  };
  clusters: ClusterStatsColumns;
  /** Optional extra sections (dedup eps table, stream progress, throughput by stage, ...). */
  [section: string]: unknown;
}

/** stats.json text: floats to 9 significant digits, NaN/Inf as null. */
export function statsJson(value: unknown): string {
  return `${JSON.stringify(value, roundReplacer, 1)}\n`;
}

/**
 * Writes JSON atomically (temp file + rename) so a reader never sees half a file; with `outputs`,
 * into that set instead (renamed into place when the caller commits it).
 */
export async function writeJsonAtomic(path: string, value: unknown, outputs?: OutputSet): Promise<void> {
  if (outputs) await outputs.writeFile(path, statsJson(value));
  else await writeFileAtomic(path, statsJson(value));
}

/** Keeps stats.json readable: floats to 9 significant digits, NaN/Inf as null. */
function roundReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null;
    if (Number.isInteger(value)) return value;
    return Number(value.toPrecision(9));
  }
  return value;
}
