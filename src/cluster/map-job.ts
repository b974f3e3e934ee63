/**
 * The map job of a distributed exact run: one embeddings part → L2-normalise → nearest centroid →
 * the part's records (cluster, δ: 8 bytes a row) and summary (per-cluster n and exact Σδ), written
 * atomically with a checksum marker last. Re-running it (a stalled or retried job) rewrites the same
 * bytes; a part whose marker verifies is not recomputed.
 */
import { ClusterAccumulator } from '../core/complexity.js';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import type { ClusterRecords } from '../core/select.js';
import { normalizeRows } from '../core/vector.js';
import { readNpyRows } from '../io/npy.js';
import type { SampleRef } from '../core/sample.js';
import { partRefBatches, type EmbeddingSourcePlan } from '../io/embeddings-source.js';
import { findKeyProblems, KEY_OK } from '../io/key-problems.js';
import type { RunContext } from './run-context.js';
import { DECIDE_BATCH_ROWS, layout, readPartFiles, writePartFiles } from './run-spec.js';

/** A map part's summary: what the plan merges (sparse over the clusters the part holds). */
export interface MapSummary {
  part: number;
  /** Samples of the part (every one leaves as a manifest row). */
  rows: number;
  /** Samples with an embedding (the records; error rows of an image shard have none). */
  recordRows: number;
  /** Samples that failed before assign (download, untar, decode, embedding errors). */
  errorRows: number;
  /** Record rows whose (shard, key) repeats or whose key holds a line break: [record row, flag] (src/io/key-problems.ts). */
  keyFlags?: [number, number][];
  keyDuplicates?: number;
  keyUnwritable?: number;
  /** Rows whose embedding is NaN/Inf or zero (cluster −1). */
  invalid: number;
  renormalized: number;
  clusters: number[];
  n: number[];
  /** {@link ExactSums} slots of Σδ, `clusters.length` × slots, flattened. */
  sums: number[];
}

/** Records as bytes: n int32 clusters, then n float32 δ (little-endian, as the machine writes them). */
export function encodeRecords(cluster: Int32Array, distance: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(cluster.length * 8);
  Buffer.from(cluster.buffer, cluster.byteOffset, cluster.byteLength).copy(out, 0);
  Buffer.from(distance.buffer, distance.byteOffset, distance.byteLength).copy(out, cluster.byteLength);
  return out;
}

export function decodeRecords(buf: Buffer, rows: number): ClusterRecords {
  if (buf.length !== rows * 8) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `records hold ${buf.length} bytes, expected ${rows * 8}`);
  const copy = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  return { cluster: new Int32Array(copy, 0, rows), distance: new Float32Array(copy, rows * 4, rows), n: rows };
}

/**
 * Repeated (shard, key) pairs and unwritable keys among a part's record rows, as exact mode finds
 * them: flagged rows leave the statistics (cluster −1 here) and become error rows in decide.
 */
export async function flagKeys(
  cluster: Int32Array,
  refs: () => AsyncIterable<SampleRef[]>,
  rows: number,
  signal?: AbortSignal,
): Promise<Pick<MapSummary, 'keyFlags' | 'keyDuplicates' | 'keyUnwritable'>> {
  const kp = await findKeyProblems(refs, rows, signal);
  if (!kp.flags) return {};
  const keyFlags: [number, number][] = [];
  for (let r = 0; r < rows; r++) {
    if (kp.flags[r] !== KEY_OK) {
      keyFlags.push([r, kp.flags[r]]);
      cluster[r] = -1;
    }
  }
  return { keyFlags, keyDuplicates: kp.duplicates, keyUnwritable: kp.unwritable };
}

/** The summary of a part's records: per-cluster n and exact Σδ (sparse). */
export function summarize(k: number, cluster: Int32Array, distance: Float32Array, counts: Omit<MapSummary, 'clusters' | 'n' | 'sums'>): MapSummary {
  const acc = new ClusterAccumulator(k);
  acc.add(cluster, distance, counts.recordRows);
  const summary: MapSummary = { ...counts, clusters: [], n: [], sums: [] };
  for (let j = 0; j < k; j++) {
    if (acc.size[j] === 0) continue;
    summary.clusters.push(j);
    summary.n.push(acc.size[j]);
    summary.sums.push(...acc.sums.slotsOf(j));
  }
  return summary;
}

/** Runs (or skips, when already done) the map job of embeddings part `p`. Returns whether it computed. */
export async function mapPart(ctx: RunContext, p: number, signal?: AbortSignal, onRows?: (rows: number) => void): Promise<boolean> {
  const { store, spec } = ctx;
  if (await readPartFiles(store, layout.mapDone(spec.runId, p))) return false; // done and every checksum verifies
  const part = spec.parts[p];
  const nearest = await ctx.nearest();
  const cluster = new Int32Array(part.rows);
  const distance = new Float32Array(part.rows);
  let invalid = 0;
  let renormalized = 0;
  let row = 0;
  for await (const b of readNpyRows(part.input, { batchRows: spec.batchRows, signal })) {
    throwIfAborted(signal);
    const norm = normalizeRows(b.data, b.rows, spec.dim);
    renormalized += norm.renormalized;
    invalid += norm.invalidCount;
    const out = { cluster: cluster.subarray(b.start, b.start + b.rows), distance: distance.subarray(b.start, b.start + b.rows) };
    await nearest.assign(b.data, b.rows, out);
    if (norm.invalid) {
      for (let i = 0; i < b.rows; i++) {
        if (norm.invalid[i]) {
          out.cluster[i] = -1;
          out.distance[i] = NaN;
        }
      }
    }
    row += b.rows;
    onRows?.(row);
  }
  if (row !== part.rows) throw new DbpruneError(ErrorCodes.INTERNAL, `${part.input}: read ${row} rows, expected ${part.rows}`, { file: part.input });
  const keys = await flagKeys(cluster, () => partRefBatches(ctx.source as EmbeddingSourcePlan, p, { batchRows: DECIDE_BATCH_ROWS, signal }), part.rows, signal);
  const summary = summarize(spec.k, cluster, distance, { part: p, rows: part.rows, recordRows: part.rows, errorRows: 0, invalid, renormalized, ...keys });
  await writePartFiles(
    store,
    { [layout.mapRecords(spec.runId, p)]: encodeRecords(cluster, distance), [layout.mapSummary(spec.runId, p)]: JSON.stringify(summary) },
    layout.mapDone(spec.runId, p),
  );
  return true;
}

/** A done part's records and summary (checksums verified), or undefined when it is not done. */
export async function readMapPart(ctx: Pick<RunContext, 'store' | 'spec'>, p: number): Promise<{ records: ClusterRecords; summary: MapSummary } | undefined> {
  const { store, spec } = ctx;
  const files = await readPartFiles(store, layout.mapDone(spec.runId, p));
  if (!files) return undefined;
  const summary = JSON.parse((files.get(layout.mapSummary(spec.runId, p)) as Buffer).toString('utf8')) as MapSummary;
  const records = decodeRecords(files.get(layout.mapRecords(spec.runId, p)) as Buffer, summary.recordRows);
  return { records, summary };
}

/** A done part's summary alone (its checksum verified; the records are not read), or undefined. */
export async function readMapSummary(ctx: Pick<RunContext, 'store' | 'spec'>, p: number): Promise<MapSummary | undefined> {
  const { store, spec } = ctx;
  const path = layout.mapSummary(spec.runId, p);
  const files = await readPartFiles(store, layout.mapDone(spec.runId, p), [path]);
  return files ? (JSON.parse((files.get(path) as Buffer).toString('utf8')) as MapSummary) : undefined;
}

/** Adds a part summary into running totals (exact: any order gives the same bits). */
export function addSummary(acc: ClusterAccumulator, s: MapSummary): void {
  const slots = s.sums.length / Math.max(1, s.clusters.length);
  for (let t = 0; t < s.clusters.length; t++) {
    acc.size[s.clusters[t]] += s.n[t];
    acc.sums.addSlots(s.clusters[t], s.sums.slice(t * slots, (t + 1) * slots));
  }
}
