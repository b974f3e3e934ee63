/**
 * Exact mode over precomputed embeddings: the paper's method, to the sample, in two passes.
 *
 *   pass 1: stream embeddings → L2-normalise → nearest centroid → (cluster, δ) records (8 B/sample);
 *           the main thread reads, worker threads normalise and assign (AssignPool)
 *   plan:   cluster stats → d_inter · d_intra → softmax(C/τ) → quotas (water-filling) → thresholds
 *   pass 2: stream keys/metadata only (never the embeddings again) → keep/drop → manifest, kept keys
 *
 * Memory beyond constants is the records: an Int32Array and a Float32Array of N.
 */
import { joinLocation as join } from '../src/io/storage/index.js';
import { interClusterDistance } from '../src/core/complexity.js';
import { createDecider, planDbp, resolveDbpParams, type DbpParams, type DbpPlan } from '../src/core/dbp.js';
import { DbpruneError, ErrorCodes, throwIfAborted, UsageError } from '../src/core/errors.js';
import { choiceOption, integerOption } from '../src/core/validate.js';
import { AssignPool } from '../src/kernels/assign-pool.js';
import { NearestCentroid, ORT_MIN_WORK } from '../src/kernels/nearest-centroid.js';
import { decisionRow, errorRow, type ManifestRow, type SampleRef } from '../src/core/sample.js';
import { normalizedCopy, normalizeRows } from '../src/core/vector.js';
import { embeddingBatches, keysAreRowIndices, planEmbeddingSource, sampleRefBatches } from '../src/io/embeddings-source.js';
import { createKeptKeysWriter, createManifestWriter, createUidSubsetWriter, MANIFEST_FORMATS, OUTPUT_ROW_GROUP_ROWS, type ManifestFormat } from '../src/io/manifest.js';
import { Float32ArrayPool, readNpyFloat32 } from '../src/io/npy.js';
import { RUN_OUTPUT_FILES, writeJsonAtomic, type RunStats } from '../src/io/stats.js';
import { OutputSet, prepareOutputDir } from '../src/io/output-set.js';
import { exactSemDedupByPasses, parseEpsList, sortClusterMembers, type SemDedupResult } from '../src/core/semdedup.js';
import { ReportCollector } from '../src/report/report-data.js';
import { findKeyProblems, keyProblemRow, KEY_OK } from '../src/io/key-problems.js';
import { writeReport } from '../src/report/report-html.js';
import type { EmbeddingSourceInput as SourceOptions } from '../src/io/embeddings-source.js';
import { BatchTap } from './batch-tap.js';
import { exactStats } from './exact-stats.js';
import { addTargetAndFilterStats, checkFilterOptions, checkKeepOrTarget, filterRows, targetRatio, type DataCompFilterResult, type KeepAndDataCompOptions } from './datacomp-filters.js';


/**
 * Pass 2 batch size: keys/metadata only. The ManifestRow objects of a batch are the JS heap peak of
 * pass 2, and with the Parquet encoder on a worker a batch lives across more waits: 4,096 rows die
 * young where 16,384 were promoted to the old generation (1M×512, k = 500, same-run medians: peak
 * RSS 372 → 334 MB, 7.6 → 7.3 CPU-s; 65,536 → 16,384 had taken it from 389 to 355 MB before).
 */
const PASS2_BATCH_ROWS = 4_096;

export { exactStats };

/** Options of {@link pruneExact}: embeddings (or DataComp shards), keys/metadata, centroids, DBP parameters (keepRatio or target), outputs and batch size (default 4096 rows). */
export interface ExactPruneOptions extends Omit<DbpParams, 'keepRatio'>, KeepAndDataCompOptions {
  /** `.npy` path(s)/glob, or a clip-retrieval folder (img_emb/ + metadata/). Or give `datacomp`. */
  embeddings?: string | string[];
  /** keys.txt aligned with the embedding rows. */
  keys?: string;
  /** Parquet metadata aligned with the embedding files. */
  metadata?: string | string[];
  /** Centroids `.npy` (k×d float32/float16), e.g. from `dbprune fit`, faiss or SemDeDup. */
  centroids: string;
  /** Output folder; created if missing. */
  out: string;
  /** Manifest format, default parquet. */
  format?: ManifestFormat;
  /** Nearest-centroid backend, default auto (ORT MatMul for real sizes). */
  backend?: 'auto' | 'ort' | 'js';
  /**
   * ORT threads in all. Pass 1 normalises and assigns on min(2, cpus) worker threads (each with its
   * own ORT session, 1 intra-op thread by default, ⌊threads / 2⌋ when given), so the main thread
   * only reads; the js backend and tiny problems (k·dim < 2048) stay on the calling thread.
   */
  threads?: number;
  /**
   * Embedding rows per pass-1 batch, default 4096 (1..2^20). Peak RSS grows with it (up to six
   * batches are alive: read-ahead and two queued per assign worker); pass 2 reads no embeddings
   * and uses 16,384-row batches.
   */
  batchRows?: number;
  /**
   * SemDeDup before DBP (the paper's pipeline): ε values, the first decides, every one is reported.
   * Duplicates are dropped with reason `duplicate` and not counted in the DBP statistics.
   */
  dedupEps?: readonly number[];
  /** Write report.html (+ the report section of stats.json). Default true. */
  report?: boolean;
  signal?: AbortSignal;
  /** Called after every batch with running counts (for progress on stderr). */
  onProgress?: (p: { pass: 1 | 2; samples: number; total: number; kept: number; errors: number }) => void;
}

/** What {@link pruneExact} returns: run stats, the DBP plan (quotas, thresholds) and the files written. */
export interface ExactPruneResult {
  stats: RunStats;
  plan: DbpPlan;
  files: { manifest: string; kept: string; stats: string; uids?: string; report?: string };
}

/** Exact mode, the paper's two passes (assign + cluster stats, then per-cluster thresholds). Throws ERR_DBPRUNE_USAGE, _INVALID_OPTION, _DIM_MISMATCH, _INPUT_FORMAT, _ABORTED. */
export async function pruneExact(opts: ExactPruneOptions): Promise<ExactPruneResult> {
  const resolved = resolveDbpParams({ ...opts, keepRatio: checkKeepOrTarget(opts) });
  let params = resolved;
  const wantFilters = checkFilterOptions(opts);
  const format = choiceOption(opts.format, '--format', MANIFEST_FORMATS, 'parquet');
  const batchRows = integerOption(opts.batchRows, 'batchRows', { default: 4096, min: 1, max: 2 ** 20 });
  const { signal } = opts;
  const started = performance.now();

  const source: SourceOptions = { embeddings: opts.embeddings, keys: opts.keys, metadata: opts.metadata, datacomp: opts.datacomp, embeddingKey: opts.embeddingKey, signal };
  const plan0 = await planEmbeddingSource(source);
  const c = await readNpyFloat32(opts.centroids, { signal });
  if (c.cols !== plan0.dim) {
    throw new DbpruneError(
      ErrorCodes.DIM_MISMATCH,
      `embedding dimension ${plan0.dim} (${plan0.parts[0]?.npy}) differs from centroid dimension ${c.cols} (${opts.centroids})`,
      { file: opts.centroids, embeddingDim: plan0.dim, centroidDim: c.cols },
    );
  }
  const k = c.rows;
  const dim = c.cols;
  const total = plan0.totalRows;
  if (k > total) throw new UsageError(`k = ${k} centroids but only ${total} samples`);

  // Pass 1 in its own function: its buffers (read pool, ORT worker and its pool) are unreachable
  // once it returns, so pass 2 does not stack on top of them.
  // Repeated (shard, key) pairs and keys kept.txt cannot hold: error rows, outside the statistics.
  // The check hashes the SampleRefs pass 1 reads anyway, while the workers assign (its rare second
  // read, when hashes repeat, reads the keys again).
  // Row-index keys are distinct by construction: no check, and no 8 bytes per row of hashes
  // (80 MB of peak RSS at 10M rows; issue 16).
  const rowIndexKeys = keysAreRowIndices(plan0);
  const refTap = new BatchTap<SampleRef[]>();
  let tapped = false;
  const keyCheck = rowIndexKeys
    ? Promise.resolve({ flags: undefined, duplicates: 0, unwritable: 0 })
    : findKeyProblems(
        () => {
          if (tapped) return sampleRefBatches({ ...source, batchRows: PASS2_BATCH_ROWS });
          tapped = true;
          return refTap;
        },
        total,
        signal,
      );
  if (rowIndexKeys) refTap.end(); // pass 1's pushes are dropped
  keyCheck.catch(() => undefined); // awaited below; pass 1's own failure comes first
  let pass1: Awaited<ReturnType<typeof assignPass>>;
  try {
    pass1 = await assignPass({ source, c, k, dim, total, batchRows, opts, numNNs: resolved.numNNs, onRefs: (refs) => refTap.push(refs) });
    refTap.end();
  } catch (e) {
    refTap.fail(e);
    throw e;
  }
  const { cluster, distance, centroids, dInter, renormalized, invalid } = pass1;
  const keyProblems = await keyCheck;
  throwIfAborted(signal);
  const keyFlags = keyProblems.flags;
  if (keyFlags) for (let r = 0; r < total; r++) if (keyFlags[r] !== KEY_OK) cluster[r] = -1;
  // DataComp filters (basic → CLIP score), before SemDeDup and DBP: filtered rows leave the records.
  const filtered = wantFilters ? await filterRows(opts, total, cluster, keyFlags) : undefined;
  throwIfAborted(signal);

  // SemDeDup (the reference rule, cluster by cluster, embeddings re-read in bounded groups).
  // A duplicate's cluster c is stored as −2 − c: negative, so planning and selection skip it.
  let dd: (SemDedupResult & { passes: number }) | undefined;
  if (opts.dedupEps && opts.dedupEps.length > 0) {
    let eps: number[];
    try {
      eps = parseEpsList(opts.dedupEps);
    } catch (e) {
      throw new UsageError(`--dedup-eps: ${(e as Error).message}`, { option: 'dedup-eps' });
    }
    const members = sortClusterMembers({ cluster, distance, n: total }, k, params.which, params.seed);
    dd = await exactSemDedupByPasses({ members, dim, eps, signal, readRows: () => normalizedRows(source, dim, batchRows) });
    for (let i = 0; i < total; i++) if (dd.duplicateOf[i] >= 0) cluster[i] = -2 - cluster[i];
  }
  const pass1End = performance.now();
  if (opts.target !== undefined) params = { ...resolved, keepRatio: targetRatio(opts.target, cluster) };
  const plan = planDbp({ cluster, distance, n: total }, centroids, k, dim, params, dInter);
  const planEnd = performance.now();
  if (plan.n === 0) throw new DbpruneError(ErrorCodes.INPUT_FORMAT, 'no valid embedding rows: every row holds NaN/Inf or zeros');

  // Pass 2: decide and write. Only keys/metadata are read. Every file goes to a temporary name and
  // is renamed into place only when the run succeeds (src/io/output-set.ts).
  await prepareOutputDir(opts.out);
  const outputs = new OutputSet();
  try {
    const pass1 = { opts, format, params, source, plan0, plan, k, total, cluster, distance, dd, keyProblems, filtered, invalid, renormalized, started, pass1End, planEnd };
    const result = await writeDecisions(pass1, outputs);
    await outputs.commit();
    return result;
  } catch (e) {
    await outputs.abort();
    if (signal?.aborted) {
      const why = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
      throw new DbpruneError(ErrorCodes.ABORTED, `stopped (${why}): nothing written; ${opts.out} keeps its previous files`, { file: opts.out, stopped: true }, { cause: e });
    }
    throw e;
  }
}

/** What pass 2 needs from pass 1 and the plan. */
interface Pass2Input {
  opts: ExactPruneOptions;
  format: ManifestFormat;
  params: ReturnType<typeof resolveDbpParams>;
  source: SourceOptions;
  plan0: Awaited<ReturnType<typeof planEmbeddingSource>>;
  plan: DbpPlan;
  k: number;
  total: number;
  cluster: Int32Array;
  distance: Float32Array;
  dd: (SemDedupResult & { passes: number }) | undefined;
  keyProblems: Awaited<ReturnType<typeof findKeyProblems>>;
  filtered: DataCompFilterResult | undefined;
  invalid: number;
  renormalized: number;
  started: number;
  pass1End: number;
  planEnd: number;
}

/** Pass 2: decide and write every output into `outputs` (the caller commits or aborts them). */
async function writeDecisions(input: Pass2Input, outputs: OutputSet): Promise<ExactPruneResult> {
  const { opts, format, params, source, plan0, plan, k, total, cluster, distance, dd, keyProblems, filtered, invalid, renormalized, started, pass1End, planEnd } = input;
  const keyFlags = keyProblems.flags;
  const { signal } = opts;
  for (const name of RUN_OUTPUT_FILES) outputs.replaces(join(opts.out, name));
  const files = {
    manifest: join(opts.out, `manifest.${format === 'arrow' ? 'arrow' : format}`),
    kept: join(opts.out, 'kept.txt'),
    stats: join(opts.out, 'stats.json'),
  } as ExactPruneResult['files'];
  // Parquet is encoded on a worker thread: pass 2's main thread reads, decides and builds the columns.
  const manifest = createManifestWriter(outputs.file(files.manifest), format, { rowGroupRows: OUTPUT_ROW_GROUP_ROWS, encodeOnWorker: true });
  const keptWriter = createKeptKeysWriter(outputs.file(files.kept));
  const uidsPath = join(opts.out, 'kept_uids.npy');
  const uidWriter = plan0.parts.some((p) => p.metadata?.columns.uid) ? createUidSubsetWriter(outputs.file(uidsPath)) : undefined;
  const decider = createDecider(plan);
  const targetKeys = dd ? await duplicateTargetKeys(dd.duplicateOf, { ...source, batchRows: PASS2_BATCH_ROWS }) : undefined;
  const collector = opts.report !== false ? new ReportCollector({ k, seed: params.seed }) : undefined;
  let duplicates = 0;
  const keptPerCluster = new Float64Array(k);
  let kept = 0;
  let i = 0;
  try {
    for await (const refs of sampleRefBatches({ ...source, batchRows: PASS2_BATCH_ROWS })) {
      const rows = new Array<ManifestRow>(refs.length);
      const keptKeys: string[] = [];
      const keptUids: string[] = [];
      for (let t = 0; t < refs.length; t++, i++) {
        const ref = refs[t];
        const j = cluster[i];
        const flag = keyFlags?.[i] ?? KEY_OK;
        if (flag !== KEY_OK) {
          rows[t] = keyProblemRow(ref, flag);
          continue;
        }
        const fc = filtered?.codes[i] ?? 0;
        if (fc !== 0) {
          rows[t] = errorRow(ref, (filtered as DataCompFilterResult).labels[fc - 1]);
          continue;
        }
        if (j === -1) {
          rows[t] = errorRow(ref, { reason: 'error:embedding', message: 'embedding holds NaN/Inf or is all zeros', code: ErrorCodes.EMBEDDING });
          continue;
        }
        if (j < -1) {
          duplicates++;
          rows[t] = decisionRow(ref, 'drop', 'duplicate', -2 - j, distance[i], targetKeys?.get((dd as SemDedupResult).duplicateOf[i]) ?? null);
          continue;
        }
        const keep = decider.keep(j, distance[i], i);
        if (keep) {
          kept++;
          keptPerCluster[j]++;
          keptKeys.push(ref.key);
          if (ref.uid) keptUids.push(ref.uid);
        }
        rows[t] = decisionRow(ref, keep ? 'keep' : 'drop', 'dbp', j, distance[i]);
      }
      await manifest.write(rows);
      await keptWriter.write(keptKeys);
      collector?.observe(rows);
      collector?.tick((performance.now() - started) / 1000);
      if (uidWriter && keptUids.length > 0) await uidWriter.write(keptUids);
      opts.onProgress?.({ pass: 2, samples: i, total, kept, errors: invalid });
    }
  } finally {
    await manifest.close();
    await keptWriter.close();
    if (uidWriter) {
      await uidWriter.close();
      files.uids = uidsPath;
    }
  }
  if (i !== total) throw new DbpruneError(ErrorCodes.INTERNAL, `pass 2 wrote ${i} rows, expected ${total}`);
  if (kept !== plan.nTarget) throw new DbpruneError(ErrorCodes.INTERNAL, `kept ${kept} samples, planned ${plan.nTarget}`);

  const seconds = (performance.now() - started) / 1000;
  const stats = exactStats(plan, keptPerCluster, { total, kept, invalid: invalid - (filtered?.invalidFiltered ?? 0), renormalized, seconds, duplicates, keys: keyProblems });
  addTargetAndFilterStats(stats, plan, opts.target, filtered);
  if (dd) {
    stats.params.dedup_eps = dd.eps;
    stats.dedup = {
      mode: 'exact',
      eps: dd.eps,
      deciding_eps: dd.eps[0],
      removed: dd.removed,
      kept_fraction: dd.keptFraction,
      members: dd.members,
      passes: dd.passes,
      largest_cluster: dd.largestCluster,
    };
  }
  stats.timings = {
    pass1_assign_s: (pass1End - started) / 1000,
    plan_s: (planEnd - pass1End) / 1000,
    pass2_write_s: (performance.now() - planEnd) / 1000,
  };
  if (collector) {
    collector.setThroughput({ 'pass 1 (read+assign)': total / Math.max(1e-9, (pass1End - started) / 1000), 'end to end': total / Math.max(1e-9, seconds) });
    stats.report = collector.toJSON().report;
  }
  await writeJsonAtomic(files.stats, stats, outputs);
  if (collector) files.report = await writeReport(opts.out, { statsPath: outputs.file(files.stats), thumbnailsPath: null, outputs, signal });
  throwIfAborted(signal);
  return { stats, plan, files };
}

/** Re-reads the embeddings for SemDeDup, normalised exactly as pass 1 did, with running row numbers. */
async function* normalizedRows(
  source: SourceOptions,
  dim: number,
  batchRows: number,
): AsyncGenerator<{ start: number; rows: number; data: Float32Array }> {
  let start = 0;
  for await (const b of embeddingBatches({ ...source, batchRows })) {
    const n = b.rows.length;
    normalizeRows(b.embeddings, n, dim);
    yield { start, rows: n, data: b.embeddings };
    start += n;
  }
}

/** Keys of the rows that duplicates point to (one keys-only pass; at most one entry per duplicate). */
async function duplicateTargetKeys(
  duplicateOf: Int32Array,
  source: SourceOptions & { batchRows: number },
): Promise<Map<number, string>> {
  const wanted = new Set<number>();
  for (let i = 0; i < duplicateOf.length; i++) if (duplicateOf[i] >= 0) wanted.add(duplicateOf[i]);
  const out = new Map<number, string>();
  let row = 0;
  for await (const refs of sampleRefBatches(source)) {
    for (const ref of refs) {
      if (wanted.has(row)) out.set(row, ref.key);
      row++;
    }
  }
  return out;
}

/** Pass 1: stream, normalise and assign every row; returns the 8-bytes-per-sample records. */
async function assignPass(a: {
  source: SourceOptions;
  c: { data: Float32Array };
  k: number;
  dim: number;
  total: number;
  batchRows: number;
  opts: ExactPruneOptions;
  /** numNNs of d_inter, computed here while the assign workers start. */
  numNNs: number;
  /** Each batch's SampleRefs, in row order (pass 1 waits on the returned promise). */
  onRefs: (refs: SampleRef[]) => Promise<void>;
}): Promise<{ cluster: Int32Array; distance: Float32Array; centroids: Float32Array; dInter: Float64Array; renormalized: number; invalid: number }> {
  const { source, c, k, dim, total, batchRows, opts, onRefs } = a;
  const centroids = normalizedCopy(c.data, k, dim);
  let dInter: Float64Array;
  const cluster = new Int32Array(total);
  const distance = new Float32Array(total);
  let row = 0;
  let done = 0;
  let renormalized = 0;
  let invalid = 0;
  // Batch buffers go round: read-ahead + one queued and one being assigned per worker.
  const pool = new Float32ArrayPool(6);
  if ((opts.backend ?? 'auto') === 'js' || k < 2 || k * dim < ORT_MIN_WORK) {
    // Small problems (and the js backend): one in-thread NearestCentroid, no workers to start.
    dInter = interClusterDistance(centroids, k, dim, a.numNNs);
    const nearest = await NearestCentroid.create(c.data, k, dim, { backend: opts.backend ?? 'auto', threads: opts.threads, batchRows });
    try {
      for await (const b of embeddingBatches({ ...source, batchRows, pool })) {
        const n = b.rows.length;
        await onRefs(b.rows);
        const norm = normalizeRows(b.embeddings, n, dim);
        renormalized += norm.renormalized;
        invalid += norm.invalidCount;
        const out = { cluster: cluster.subarray(row, row + n), distance: distance.subarray(row, row + n) };
        await nearest.assign(b.embeddings, n, out);
        for (let i = 0; norm.invalid && i < n; i++) {
          if (!norm.invalid[i]) continue;
          out.cluster[i] = -1;
          out.distance[i] = NaN;
        }
        pool.release(b.embeddings);
        row += n;
        opts.onProgress?.({ pass: 1, samples: row, total, kept: 0, errors: invalid });
      }
    } finally {
      await nearest.dispose();
    }
  } else {
    // The main thread reads; the workers normalise and assign (two batches queued per worker).
    const starting = AssignPool.create(c.data, k, dim, { threads: opts.threads === undefined ? undefined : Math.max(1, Math.floor(opts.threads / 2)) });
    // d_inter needs only the centroids: computed while the workers start (it was serial in the plan).
    try {
      dInter = interClusterDistance(centroids, k, dim, a.numNNs);
    } catch (e) {
      await starting.then((w) => w.dispose(), () => undefined);
      throw e;
    }
    const workers = await starting;
    const inflight: Promise<void>[] = [];
    const assignBatch = async (x: Float32Array, start: number, n: number): Promise<void> => {
      const r = await workers.assign(x, n, { normalize: 1e-4 });
      cluster.set(r.cluster, start);
      distance.set(r.distance, start);
      renormalized += r.renormalized;
      if (r.invalid) for (let i = 0; i < n; i++) invalid += r.invalid[i];
      pool.release(r.x);
      done += n;
      opts.onProgress?.({ pass: 1, samples: done, total, kept: 0, errors: invalid });
    };
    try {
      for await (const b of embeddingBatches({ ...source, batchRows, pool })) {
        const n = b.rows.length;
        inflight.push(assignBatch(b.embeddings, row, n));
        await onRefs(b.rows);
        row += n;
        if (inflight.length >= 2 * workers.size) await inflight.shift();
      }
      while (inflight.length > 0) await inflight.shift();
    } finally {
      await Promise.allSettled(inflight);
      await workers.dispose();
    }
  }
  if (row !== total) throw new DbpruneError(ErrorCodes.INTERNAL, `pass 1 read ${row} rows, expected ${total}`);
  return { cluster, distance, centroids, dInter, renormalized, invalid };
}
