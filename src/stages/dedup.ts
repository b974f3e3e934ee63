/**
 * `dedup`: streaming SemDeDup between `assign` and `decide`. Within each cluster, a sample whose
 * cosine similarity to an earlier KEPT sample of that cluster is ≥ 1 − ε is a duplicate: the stage
 * sets `batch.duplicateOf[i]` to that sample's key (the most similar kept sample found) and `decide`
 * drops it with reason `duplicate` without counting it. The first arrival is kept.
 *
 * Per cluster the kept embeddings live first in a brute-force buffer (exact float64 scan; faster
 * than HNSW while small, see {@link DEFAULT_BRUTE_FORCE_MAX}), then, once the cluster has more kept
 * samples than that, in an hnswlib-node HNSW index ('ip' space: distance = 1 − ⟨x, y⟩ on unit
 * vectors) that doubles its capacity with `resizeIndex` as it grows. A top-1 HNSW similarity within
 * 1e-5 of any threshold is re-computed in float64 from the stored point.
 *
 * Difference from exact mode (src/core/semdedup.ts): exact SemDeDup orders a cluster by distance
 * to the centroid and compares with ALL earlier items (removed or not, `> 1 − ε`); streaming uses
 * arrival order and compares with KEPT items only (`≥ 1 − ε`). Decisions are irrevocable.
 *
 * Memory bound: at most `maxPerCluster` kept samples are indexed per cluster, so the stage holds
 * ≤ k × maxPerCluster × (dim × 4 + 2·M × 4 + ~60 + key) bytes. When a cluster reaches the cap it is
 * "capped": later samples are still checked against the indexed ones (so duplicates of those are
 * still found), but new kept samples are no longer inserted — a later duplicate of such an
 * unindexed kept sample is missed (kept). `stats()` reports capped clusters and unindexed kept rows.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import hnswlib from 'hnswlib-node';
import { checkOption, DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { BATCH_HIGH_WATER_MARK, type EmbeddingBatch } from '../core/sample.js';
import { nearestByDot, parseEpsList } from '../core/semdedup.js';
import { destroyOnAbort } from './generator-stage.js';

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

/**
 * Clusters with at most this many kept samples are searched by brute force. Measured on the shared
 * 2-core box at d = 512 (bench/dedup.ts, synthetic clusters of high intrinsic dimension — HNSW's
 * worst case): the float64 JS scan costs ~0.5 µs per kept sample, an HNSW query (ef 64) + insert
 * (efConstruction 100) ~350–450 µs, so they break even near 700–1,000 kept; 512 is conservative.
 */
export const DEFAULT_BRUTE_FORCE_MAX = 512;

/** Options of {@link dedup}. */
export interface DedupOptions {
  /** ε: a number, a list or a comma-separated string, each in (0, 1), 1..32 values; the first decides. Required. */
  eps: number | readonly number[] | string;
  /** Embedding dimension ≥ 1. Required. */
  dim: number;
  /** Number of clusters ≥ 1 (cluster ids are 0..k−1). Required. */
  k: number;
  /** HNSW graph degree; default 16, limits 2..100. */
  M?: number;
  /** HNSW build breadth; default 100, limits 1..4096. */
  efConstruction?: number;
  /** HNSW search breadth; default 64, limits 1..4096. */
  efSearch?: number;
  /** Kept samples indexed per cluster (the memory bound); default 100,000, limits 1..2^31−1. */
  maxPerCluster?: number;
  /** Kept samples per cluster searched by brute force before moving to HNSW; default 512, 0..maxPerCluster. */
  bruteForceMax?: number;
  /** HNSW random seed; default 100. */
  seed?: number;
  /** Restores the state written by `DedupStream.snapshot()` ({@link DedupStream}) to this folder before the first batch. */
  restoreFrom?: string;
  signal?: AbortSignal;
}

/** Running statistics of the stage. */
export interface DedupStats {
  /** The ε values; eps[0] decides. */
  eps: number[];
  /**
   * Per ε: samples whose best similarity to the kept samples (kept under eps[0]) is ≥ 1 − ε. Exact
   * for eps[0]; for the others an estimate, since with that ε a different set would have been kept.
   */
  duplicates: number[];
  /** Per ε: (seen − duplicates) / seen (1 when seen = 0). */
  keptFraction: number[];
  /** Rows checked (valid rows with a cluster); error rows are not counted. */
  seen: number;
  /** Rows passed through untouched (errors or cluster −1). */
  skipped: number;
  /** Kept samples held (indexed or buffered). */
  indexed: number;
  /** Kept samples not indexed because their cluster was capped. */
  unindexedKept: number;
  /** Clusters that reached maxPerCluster. */
  cappedClusters: number;
  /** Clusters that moved to HNSW. */
  hnswClusters: number;
  /** Estimated bytes held by buffers, indexes and keys. */
  indexBytesEstimate: number;
}

/** What `DedupStream.snapshot()` ({@link DedupStream}) wrote. */
export interface DedupSnapshotInfo {
  dir: string;
  files: string[];
  stats: DedupStats;
}

/** The stage: an objectMode Transform plus statistics and checkpoints. */
export type DedupStream = Transform & {
  /** Current statistics (cheap). */
  stats(): DedupStats;
  /**
   * Writes the whole state (per-cluster buffers as raw float32, HNSW indexes with `writeIndex`,
   * kept keys and counters as `dedup-state.json`) into `dir` (created if missing). Batches wait
   * while it runs, so the state is consistent with the batches emitted so far.
   */
  snapshot(dir: string): Promise<DedupSnapshotInfo>;
};

interface Validated {
  eps: number[];
  dim: number;
  k: number;
  M: number;
  efConstruction: number;
  efSearch: number;
  maxPerCluster: number;
  bruteForceMax: number;
  seed: number;
}

function validate(o: DedupOptions): Validated {
  checkOption(o !== null && typeof o === 'object', 'options', 'an object', o);
  const eps = parseEpsList(o.eps);
  checkOption(Number.isInteger(o.dim) && o.dim >= 1, 'dim', 'an integer ≥ 1', o.dim);
  checkOption(Number.isInteger(o.k) && o.k >= 1, 'k', 'an integer ≥ 1', o.k);
  const M = o.M ?? 16;
  checkOption(Number.isInteger(M) && M >= 2 && M <= 100, 'M', 'an integer in 2..100', M);
  const efConstruction = o.efConstruction ?? 100;
  checkOption(Number.isInteger(efConstruction) && efConstruction >= 1 && efConstruction <= 4096, 'efConstruction', 'an integer in 1..4096', efConstruction);
  const efSearch = o.efSearch ?? 64;
  checkOption(Number.isInteger(efSearch) && efSearch >= 1 && efSearch <= 4096, 'efSearch', 'an integer in 1..4096', efSearch);
  const maxPerCluster = o.maxPerCluster ?? 100_000;
  checkOption(Number.isInteger(maxPerCluster) && maxPerCluster >= 1 && maxPerCluster < 2 ** 31, 'maxPerCluster', 'an integer in 1..2^31−1', maxPerCluster);
  const bruteForceMax = o.bruteForceMax ?? Math.min(DEFAULT_BRUTE_FORCE_MAX, maxPerCluster);
  checkOption(Number.isInteger(bruteForceMax) && bruteForceMax >= 0 && bruteForceMax <= maxPerCluster, 'bruteForceMax', `an integer in 0..maxPerCluster (${maxPerCluster})`, bruteForceMax);
  const seed = o.seed ?? 100;
  checkOption(Number.isInteger(seed) && seed >= 0, 'seed', 'an integer ≥ 0', seed);
  checkOption(o.restoreFrom === undefined || typeof o.restoreFrom === 'string', 'restoreFrom', 'a folder path', o.restoreFrom);
  return { eps, dim: o.dim, k: o.k, M, efConstruction, efSearch, maxPerCluster, bruteForceMax, seed };
}

/** Kept samples of one cluster: a buffer while small, an HNSW index after. Labels = insertion order. */
class ClusterIndex {
  keys: string[] = [];
  buf: Float32Array | null;
  hnsw: Hnsw | null = null;
  capped = false;

  constructor(
    private readonly v: Validated,
    initial: number,
  ) {
    this.buf = new Float32Array(Math.max(1, initial) * v.dim);
  }

  get count(): number {
    return this.keys.length;
  }

  /** Best kept match of q: similarity (float64 when near a threshold) and label; −Infinity/−1 when empty. */
  nearest(q: Float64Array, qa: number[], thresholds: number[], out: { sim: number; label: number }): void {
    out.sim = -Infinity;
    out.label = -1;
    if (this.count === 0) return;
    const { dim } = this.v;
    if (this.buf) {
      const r = nearestByDot(q, this.buf, this.count, dim);
      out.sim = r.best;
      out.label = r.arg;
      return;
    }
    const h = this.hnsw as Hnsw;
    const res = h.searchKnn(qa, 1);
    const label = res.neighbors[0];
    let sim = 1 - res.distances[0];
    if (thresholds.some((t) => Math.abs(sim - t) < 1e-5)) {
      const p = h.getPoint(label);
      let s = 0;
      for (let t = 0; t < dim; t++) s += q[t] * p[t];
      sim = s;
    }
    out.sim = sim;
    out.label = label;
  }

  /** Inserts a kept sample; returns false (and marks the cluster capped) when the cap is reached. */
  add(q: Float32Array, qo: number, qa: number[], key: string): boolean {
    const { dim, maxPerCluster, bruteForceMax } = this.v;
    if (this.count >= maxPerCluster) {
      this.capped = true;
      return false;
    }
    const label = this.count;
    if (this.buf && label >= bruteForceMax) this.toHnsw();
    if (this.buf) {
      if ((label + 1) * dim > this.buf.length) {
        const grown = new Float32Array(Math.min(Math.max(bruteForceMax, 1), Math.max(1, label) * 2) * dim);
        grown.set(this.buf);
        this.buf = grown;
      }
      this.buf.set(q.subarray(qo, qo + dim), label * dim);
    } else {
      const h = this.hnsw as Hnsw;
      if (label >= h.getMaxElements()) h.resizeIndex(Math.min(maxPerCluster, h.getMaxElements() * 2));
      h.addPoint(qa, label);
    }
    this.keys.push(key);
    return true;
  }

  private toHnsw(): void {
    const { dim, M, efConstruction, efSearch, seed, maxPerCluster } = this.v;
    const h = new HierarchicalNSW('ip', dim);
    h.initIndex(Math.min(maxPerCluster, Math.max(256, this.count * 2)), M, efConstruction, seed);
    h.setEf(efSearch);
    const buf = this.buf as Float32Array;
    const v = new Array<number>(dim).fill(0);
    for (let l = 0; l < this.count; l++) {
      for (let t = 0; t < dim; t++) v[t] = buf[l * dim + t];
      h.addPoint(v, l);
    }
    this.hnsw = h;
    this.buf = null;
  }

  bytes(): number {
    const { dim, M } = this.v;
    let keyBytes = 0;
    for (const key of this.keys) keyBytes += 32 + key.length;
    if (this.buf) return this.buf.byteLength + keyBytes;
    const h = this.hnsw as Hnsw;
    // hnswlib level 0: data + 2M links + count + label; upper levels: ~1/(M−1) lists of M links.
    const perElement = dim * 4 + 2 * M * 4 + 4 + 8 + (M * 4 + 4) / (M - 1) + 16;
    return h.getMaxElements() * perElement + keyBytes;
  }
}

interface SnapshotState {
  version: 1;
  dim: number;
  k: number;
  eps: number[];
  seen: number;
  skipped: number;
  duplicates: number[];
  unindexedKept: number;
  clusters: { j: number; mode: 'buffer' | 'hnsw'; count: number; capped: boolean; keys: string[]; file: string }[];
}

/**
 * Stage: consumes {@link EmbeddingBatch}es with `cluster` set (by `assign`) and emits each same
 * batch object with `duplicateOf` filled (one entry per row: the key of the kept sample it
 * duplicates, or undefined). Rows with `errors[i]` or cluster −1 pass untouched and unchecked.
 * Rows are processed in order, so a duplicate inside one batch of an earlier row is found. One
 * batch out per batch in; rows in = rows out.
 *
 * Options ({@link DedupOptions}): eps (required; first decides), dim, k (required); M 16 (2..100);
 * efConstruction 100 (1..4096); efSearch 64 (1..4096); maxPerCluster 100,000 (memory bound, see
 * the module comment); bruteForceMax 512; seed 100; restoreFrom; signal.
 *
 * Errors: ERR_DBPRUNE_INVALID_OPTION (construction); ERR_DBPRUNE_INTERNAL when a batch lacks
 * `cluster` (put `assign` first) or is shorter than rows × dim; ERR_DBPRUNE_DIM_MISMATCH when a
 * batch's dim differs; ERR_DBPRUNE_CALIBRATION when `restoreFrom` holds a state for another
 * dim/k/eps or is unreadable; ERR_DBPRUNE_ABORTED.
 */
export function dedup(opts: DedupOptions): DedupStream {
  const v = validate(opts);
  const { dim, k, eps, signal } = { ...v, signal: opts.signal };
  const thresholds = eps.map((e) => 1 - e);
  const clusters: (ClusterIndex | undefined)[] = new Array<ClusterIndex | undefined>(k);
  const counters = { seen: 0, skipped: 0, unindexedKept: 0, duplicates: eps.map(() => 0) };
  let gate: Promise<void> = Promise.resolve();
  const initial = Math.min(64, Math.max(1, v.bruteForceMax));

  const ready: Promise<void> = opts.restoreFrom ? restore(opts.restoreFrom) : Promise.resolve();
  ready.catch(() => undefined);

  async function restore(dir: string): Promise<void> {
    let st: SnapshotState;
    try {
      st = JSON.parse(await readFile(join(dir, 'dedup-state.json'), 'utf8')) as SnapshotState;
    } catch (e) {
      throw new DbpruneError(ErrorCodes.CALIBRATION, `cannot read the dedup state in ${dir}: ${String(e)}`, { file: join(dir, 'dedup-state.json') }, { cause: e });
    }
    if (st.version !== 1 || st.dim !== dim || st.k !== k || st.eps.length !== eps.length || st.eps.some((e, i) => e !== eps[i])) {
      throw new DbpruneError(ErrorCodes.CALIBRATION, `dedup state in ${dir} was written for dim ${st.dim}, k ${st.k}, eps ${st.eps?.join(',')}; this stage has dim ${dim}, k ${k}, eps ${eps.join(',')}`, {
        file: join(dir, 'dedup-state.json'),
      });
    }
    counters.seen = st.seen;
    counters.skipped = st.skipped;
    counters.unindexedKept = st.unindexedKept;
    counters.duplicates = [...st.duplicates];
    for (const c of st.clusters) {
      const ci = new ClusterIndex(v, initial);
      ci.keys = c.keys;
      ci.capped = c.capped;
      const file = join(dir, c.file);
      if (c.mode === 'buffer') {
        const b = await readFile(file);
        ci.buf = new Float32Array(Math.max(c.count, 1) * dim);
        ci.buf.set(new Float32Array(b.buffer, b.byteOffset, c.count * dim));
      } else {
        const h = new HierarchicalNSW('ip', dim);
        await h.readIndex(file);
        h.setEf(v.efSearch);
        ci.hnsw = h;
        ci.buf = null;
      }
      clusters[c.j] = ci;
    }
  }

  function stats(): DedupStats {
    let indexed = 0;
    let capped = 0;
    let hnswClusters = 0;
    let bytes = 0;
    for (const c of clusters) {
      if (!c) continue;
      indexed += c.count;
      if (c.capped) capped++;
      if (c.hnsw) hnswClusters++;
      bytes += c.bytes();
    }
    const { seen } = counters;
    return {
      eps: [...eps],
      duplicates: [...counters.duplicates],
      keptFraction: counters.duplicates.map((d) => (seen === 0 ? 1 : (seen - d) / seen)),
      seen,
      skipped: counters.skipped,
      indexed,
      unindexedKept: counters.unindexedKept,
      cappedClusters: capped,
      hnswClusters,
      indexBytesEstimate: bytes,
    };
  }

  async function snapshot(dir: string): Promise<DedupSnapshotInfo> {
    let release!: () => void;
    const prev = gate;
    gate = new Promise<void>((r) => (release = r));
    try {
      await prev;
      await ready;
      await mkdir(dir, { recursive: true });
      const st: SnapshotState = {
        version: 1,
        dim,
        k,
        eps,
        seen: counters.seen,
        skipped: counters.skipped,
        duplicates: counters.duplicates,
        unindexedKept: counters.unindexedKept,
        clusters: [],
      };
      const files: string[] = [];
      for (let j = 0; j < k; j++) {
        const c = clusters[j];
        if (!c) continue;
        const file = `cluster-${j}.${c.buf ? 'f32' : 'hnsw'}`;
        if (c.buf) {
          const data = c.buf.subarray(0, c.count * dim);
          await writeFile(join(dir, file), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        } else await (c.hnsw as Hnsw).writeIndex(join(dir, file));
        files.push(join(dir, file));
        st.clusters.push({ j, mode: c.buf ? 'buffer' : 'hnsw', count: c.count, capped: c.capped, keys: c.keys, file });
      }
      const stateFile = join(dir, 'dedup-state.json');
      await writeFile(stateFile, JSON.stringify(st));
      files.push(stateFile);
      return { dir, files, stats: stats() };
    } finally {
      release();
    }
  }

  function processBatch(batch: EmbeddingBatch): void {
    const n = batch.rows.length;
    if (batch.dim !== dim) {
      throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `dedup expects dimension ${dim}, batch has ${batch.dim}`, { expected: dim, got: batch.dim, key: batch.rows[0]?.key });
    }
    if (n > 0 && (!batch.cluster || batch.cluster.length < n)) {
      throw new DbpruneError(ErrorCodes.INTERNAL, 'dedup needs batch.cluster: put the assign stage before dedup', { key: batch.rows[0]?.key });
    }
    if (batch.embeddings.length < n * dim) {
      throw new DbpruneError(ErrorCodes.INTERNAL, `batch holds ${batch.embeddings.length} floats for ${n} rows × ${dim}`, { key: batch.rows[0]?.key });
    }
    const dupOf = new Array<string | undefined>(n).fill(undefined);
    const x = batch.embeddings;
    const q = new Float64Array(dim);
    const qa = new Array<number>(dim).fill(0);
    const best = { sim: -Infinity, label: -1 };
    for (let i = 0; i < n; i++) {
      const c = batch.cluster ? batch.cluster[i] : -1;
      if (batch.errors?.[i] || !(c >= 0 && c < k)) {
        counters.skipped++;
        continue;
      }
      counters.seen++;
      const o = i * dim;
      for (let t = 0; t < dim; t++) q[t] = qa[t] = x[o + t];
      let ci = clusters[c];
      if (!ci) clusters[c] = ci = new ClusterIndex(v, initial);
      ci.nearest(q, qa, thresholds, best);
      for (let e = 0; e < thresholds.length; e++) if (best.sim >= thresholds[e]) counters.duplicates[e]++;
      if (best.sim >= thresholds[0]) dupOf[i] = ci.keys[best.label];
      else if (!ci.add(x, o, qa, batch.rows[i].key)) counters.unindexedKept++;
    }
    batch.duplicateOf = dupOf;
  }

  // A Transform rather than Duplex.from(generator): destroying a Duplex.from stream whose generator
  // waits for input can hang on Node 20, and pipelines abort by destroying their streams.
  const stream = new Transform({
    objectMode: true,
    highWaterMark: BATCH_HIGH_WATER_MARK,
    transform(batch: EmbeddingBatch, _enc, cb) {
      (async () => {
        throwIfAborted(signal);
        await ready;
        await gate;
        processBatch(batch);
        return batch;
      })().then((b) => cb(null, b), cb);
    },
  }) as unknown as DedupStream;
  stream.stats = stats;
  stream.snapshot = snapshot;
  return destroyOnAbort(stream, signal);
}
