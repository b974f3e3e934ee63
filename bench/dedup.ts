/**
 * Streaming SemDeDup throughput and memory (src/stages/dedup.ts) against brute force, in one run.
 *
 *   node --import tsx bench/dedup.ts [--n 100000] [--k 500] [--eps 2e-5] [--dup 0.05] [--with-1m]
 *
 * Data: bench/synth.ts `synthEmbeddings(n, 512, k)` with ~5% injected near duplicates (a copy of a
 * random earlier row of the same set plus noise of norm 1e-4, re-normalised). synth's clusters are
 * very tight (1 − cos between two members of a cluster is ~1e-4 … 2.5e-3), so ε must be below
 * ~1e-4 for only the injected copies to count; the default ε = 2e-5 does that.
 * Clusters come from the exact nearest centroid (NearestCentroid). Configurations:
 * - `auto`: the stage's defaults (brute force per cluster up to 512 kept, then HNSW M 16/efC 100/ef 64);
 * - `hnsw`: HNSW from the first kept sample (bruteForceMax 0);
 * - `bruteStage`: the stage with brute-force buffers only (bruteForceMax = maxPerCluster);
 * - `oracle`: `streamingDedupBruteForce` (plain all-pairs loop), the correctness reference;
 * - `proxy1M`: n/5 rows in k/50 clusters, so clusters hold as many samples (2,000) as 1M rows at
 *   k = 500 — the per-cluster index sizes that set the per-sample cost at 1M — with the all-pairs
 *   oracle still affordable (the oracle on the full 1M would take ~20 min on 2 cores).
 * `--with-1m` also streams a 1M-row set through `auto`, time-boxed to 120 s (generation is not
 * timed; it writes a 2 GB .npy under bench/.data).
 * Memory per kept sample: process RSS growth during the run / kept samples (native HNSW memory is
 * outside the JS heap, so RSS is the honest number; it is noisy) and the stage's own estimate.
 * The last stdout line is one JSON object.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NearestCentroid } from '../src/kernels/nearest-centroid.js';
import { Rng } from '../src/core/rng.js';
import type { EmbeddingBatch } from '../src/core/sample.js';
import { streamingDedupBruteForce } from '../src/core/semdedup.js';
import { readNpyFloat32, readNpyRows } from '../src/io/npy.js';
import { dedup, type DedupOptions } from '../src/stages/dedup.js';
import { synthEmbeddings } from './synth.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const N = arg('n', 100_000);
const K = arg('k', 500);
const EPS = arg('eps', 2e-5);
const DUP = arg('dup', 0.05);
const DIM = 512;
const BATCH = 1024;
const log = (...a: unknown[]): void => console.error('[bench:dedup]', ...a);

/** Replaces ~rate of the rows by near copies (noise norm 1e-4) of random earlier rows. */
function injectDuplicates(x: Float32Array, n: number, dim: number, rate: number, seed: number): number {
  const rng = new Rng(seed);
  let injected = 0;
  for (let i = 1; i < n; i++) {
    if (rng.next() >= rate) continue;
    const src = rng.int(i);
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = x[src * dim + t] + (1e-4 / Math.sqrt(dim)) * rng.normal();
      x[i * dim + t] = v;
      s += v * v;
    }
    const inv = 1 / Math.sqrt(s);
    for (let t = 0; t < dim; t++) x[i * dim + t] *= inv;
    injected++;
  }
  return injected;
}

function toBatches(x: Float32Array, cluster: Int32Array, n: number, dim: number, offset = 0): EmbeddingBatch[] {
  const out: EmbeddingBatch[] = [];
  for (let s = 0; s < n; s += BATCH) {
    const e = Math.min(n, s + BATCH);
    out.push({
      rows: Array.from({ length: e - s }, (_, i) => ({ key: String(offset + s + i) })),
      dim,
      embeddings: x.subarray(s * dim, e * dim),
      cluster: cluster.subarray(s, e),
      distance: new Float32Array(e - s),
    });
  }
  return out;
}

interface RunResult {
  samplesPerSec: number;
  seconds: number;
  kept: number;
  duplicates: number;
  hnswClusters: number;
  rssBytesPerKept: number;
  estimateBytesPerKept: number;
  duplicateOf: Int32Array;
}

async function runStage(input: AsyncIterable<EmbeddingBatch> | Iterable<EmbeddingBatch>, n: number, k: number, extra: Partial<DedupOptions>, timeBoxSec = Infinity): Promise<RunResult & { processed: number }> {
  const stage = dedup({ eps: EPS, dim: DIM, k, ...extra });
  const duplicateOf = new Int32Array(n).fill(-1);
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const ac = new AbortController();
  try {
    await pipeline(
      Readable.from(input),
      stage,
      async (src: AsyncIterable<EmbeddingBatch>) => {
        for await (const b of src) {
          b.rows.forEach((r, i) => {
            const d = b.duplicateOf?.[i];
            if (d !== undefined) duplicateOf[Number(r.key)] = Number(d);
          });
          if ((performance.now() - t0) / 1000 > timeBoxSec) ac.abort();
        }
      },
      { signal: ac.signal },
    );
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  }
  const seconds = (performance.now() - t0) / 1000;
  const rss1 = process.memoryUsage().rss;
  const st = stage.stats();
  const kept = st.indexed + st.unindexedKept;
  return {
    samplesPerSec: st.seen / seconds,
    seconds,
    kept,
    duplicates: st.duplicates[0],
    hnswClusters: st.hnswClusters,
    rssBytesPerKept: Math.max(0, rss1 - rss0) / Math.max(1, kept),
    estimateBytesPerKept: st.indexBytesEstimate / Math.max(1, kept),
    duplicateOf,
    processed: st.seen,
  };
}

function agreement(a: Int32Array, b: Int32Array, n: number): number {
  let same = 0;
  for (let i = 0; i < n; i++) if (a[i] >= 0 === b[i] >= 0) same++;
  return same / n;
}

function summary(r: RunResult, oracle: Int32Array, n: number): Record<string, number> {
  return {
    samplesPerSec: Math.round(r.samplesPerSec),
    seconds: +r.seconds.toFixed(2),
    kept: r.kept,
    duplicates: r.duplicates,
    hnswClusters: r.hnswClusters,
    rssBytesPerKept: Math.round(r.rssBytesPerKept),
    estimateBytesPerKept: Math.round(r.estimateBytesPerKept),
    decisionAgreement: +agreement(r.duplicateOf, oracle, n).toFixed(6),
  };
}

async function caseAt(n: number, k: number): Promise<Record<string, unknown>> {
  const set = await synthEmbeddings(n, DIM, k);
  const e = await readNpyFloat32(set.embeddings);
  const c = await readNpyFloat32(set.centroids);
  const injected = injectDuplicates(e.data, n, DIM, DUP, 7);
  const nc = await NearestCentroid.create(c.data, k, DIM);
  const { cluster } = await nc.assign(e.data, n);
  await nc.dispose();
  log(`n=${n} k=${k}: ${injected} injected duplicates; oracle…`);
  let t = performance.now();
  const oracle = streamingDedupBruteForce(e.data, cluster, n, DIM, EPS);
  const oracleSec = (performance.now() - t) / 1000;
  const oracleDups = oracle.duplicateOf.reduce((a, d) => a + (d >= 0 ? 1 : 0), 0);
  const out: Record<string, unknown> = {
    n,
    k,
    meanClusterSize: n / k,
    injected,
    oracle: { samplesPerSec: Math.round(n / oracleSec), seconds: +oracleSec.toFixed(2), duplicates: oracleDups },
  };
  for (const [name, extra] of [
    ['auto', {}],
    ['hnsw', { bruteForceMax: 0 }],
    ['bruteStage', { bruteForceMax: 100_000 }],
  ] as [string, Partial<DedupOptions>][]) {
    log(`n=${n} k=${k}: ${name}…`);
    t = performance.now();
    out[name] = summary(await runStage(toBatches(e.data, cluster, n, DIM), n, k, extra), oracle.duplicateOf, n);
  }
  return out;
}

async function* npyBatches(path: string, nc: NearestCentroid): AsyncGenerator<EmbeddingBatch> {
  for await (const chunk of readNpyRows(path, { batchRows: BATCH })) {
    const { cluster } = await nc.assign(chunk.data, chunk.rows);
    yield {
      rows: Array.from({ length: chunk.rows }, (_, i) => ({ key: String(chunk.start + i) })),
      dim: DIM,
      embeddings: chunk.data,
      cluster,
      distance: new Float32Array(chunk.rows),
    };
  }
}

const result: Record<string, unknown> = { bench: 'dedup', dim: DIM, eps: EPS, dupRate: DUP, batch: BATCH, node: process.version };
result.at100k = await caseAt(N, K);
result.proxy1M = await caseAt(Math.round(N / 5), Math.max(1, Math.round(K / 50)));
if (process.argv.includes('--with-1m')) {
  const n = 1_000_000;
  log('generating 1M set (not timed)…');
  const set = await synthEmbeddings(n, DIM, K);
  const c = await readNpyFloat32(set.centroids);
  const nc = await NearestCentroid.create(c.data, K, DIM);
  const r = await runStage(npyBatches(set.embeddings, nc), n, K, {}, 120);
  await nc.dispose();
  result.at1M = {
    timeBoxedSec: 120,
    processed: r.processed,
    samplesPerSecIncludingReadAndAssign: Math.round(r.samplesPerSec),
    kept: r.kept,
    hnswClusters: r.hnswClusters,
    rssBytesPerKept: Math.round(r.rssBytesPerKept),
    estimateBytesPerKept: Math.round(r.estimateBytesPerKept),
    note: 'no injected duplicates (streamed from disk); brute force not run at 1M',
  };
} else {
  result.at1M = 'skipped (pass --with-1m; see proxy1M for 1M-sized clusters)';
}
console.log(JSON.stringify(result));
