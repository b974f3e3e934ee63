/**
 * `stats.json`: the per-cluster figures of a run, one schema for exact and streaming mode, read by
 * the report and by users (pandas: `pd.DataFrame(stats["clusters"])`).
 */
import { writeFile, rename } from 'node:fs/promises';

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

/** Writes JSON atomically (temp file + rename) so a reader never sees half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, roundReplacer, 1)}\n`);
  await rename(tmp, path);
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
