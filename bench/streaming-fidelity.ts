/**
 * Fidelity of streaming DBP vs exact mode on the golden fixture (../shared/fixtures/dbp-small,
 * 20000×64, k = 50, keep 0.3), in several arrival orders, with the default tuning.
 *
 *     npx tsx bench/streaming-fidelity.ts [--seeds 5] [--keep 0.3] [--cold | --stale | --foreign] [--tuning '{"trustStationary":true}']
 *
 * Prints, per order: realised keep ratio, per-cluster relative L1 error Σ|kept_j − quota_j| / Σ quota_j
 * against exact-mode quotas, and Jaccard of the kept set vs exact mode (mean and worst over the
 * calibration seeds). Calibration: a uniform 5% sample of the rows (seeded), counts, mean δ and δ
 * histograms per cluster; d_inter from the centroids.
 */
import { join } from 'node:path';
import { interClusterDistance } from '../src/core/complexity.js';
import { createDecider, planDbp, type DbpParams } from '../src/core/dbp.js';
import { Rng } from '../src/core/rng.js';
import { ClusterSketches, DEFAULT_BINS, sketchScaleFor } from '../src/core/sketch.js';
import { StreamingDbp, type StreamingCalibration, type StreamingDbpTuning } from '../src/core/streaming-dbp.js';
import { normalizedCopy } from '../src/core/vector.js';
import { readNpyFloat32 } from '../src/io/npy.js';
import { dbpSmallDir } from '../test/helpers/fixture.js';
import { nearestBruteForceJs } from '../src/core/nearest.js';

export interface FixtureRecords {
  cluster: Int32Array;
  distance: Float32Array;
  n: number;
  k: number;
  dInter: Float64Array;
}

/** Exact assignment (float64 loop, lowest index wins ties) of the fixture rows. */
export async function loadFixtureRecords(): Promise<FixtureRecords> {
  const e = await readNpyFloat32(join(dbpSmallDir, 'embeddings.npy'));
  const c = await readNpyFloat32(join(dbpSmallDir, 'centroids.npy'));
  const dim = e.cols;
  const k = c.rows;
  const centroids = normalizedCopy(c.data, k, dim);
  // The plain float64 triple loop (ties to the lowest index), as the golden fixture was computed.
  const { cluster, distance } = nearestBruteForceJs(e.data, e.rows, c.data, k, dim);
  return { cluster, distance, n: e.rows, k, dInter: interClusterDistance(centroids, k, dim, 20) };
}

/** Calibration statistics from a uniform sample of `fraction` of the rows (seeded). */
export function sampleCalibration(r: FixtureRecords, fraction: number, seed: number): StreamingCalibration {
  const rng = new Rng(seed);
  const idx = Int32Array.from({ length: r.n }, (_, i) => i);
  const m = Math.round(fraction * r.n);
  for (let i = 0; i < m; i++) {
    const j = i + rng.int(r.n - i);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  const counts = new Float64Array(r.k);
  const sum = new Float64Array(r.k);
  const picked: [number, number][] = [];
  for (let i = 0; i < m; i++) {
    const row = idx[i];
    counts[r.cluster[row]]++;
    sum[r.cluster[row]] += r.distance[row];
    picked.push([r.cluster[row], r.distance[row]]);
  }
  const dIntra = counts.map((c, j) => (c > 0 ? sum[j] / c : 0));
  return { counts, dIntra, dInter: r.dInter, sketches: sketchesOf(r.k, picked, counts, sum), sampleSize: m };
}

/** The calibration sketches of the picked (cluster, δ) rows, in the layout `fit` would choose for them. */
function sketchesOf(k: number, picked: [number, number][], counts: Float64Array, sum: Float64Array): ClusterSketches {
  const dIntra = counts.map((c, j) => (c > 0 ? sum[j] / c : 0));
  const sketches = new ClusterSketches(k, DEFAULT_BINS, sketchScaleFor(dIntra, counts));
  for (const [j, d] of picked) sketches.add(j, d);
  return sketches;
}

/**
 * A stale (biased) calibration: clusters j < k/2 sampled at 3× the rate of the others (7.5% vs 2.5%),
 * so calibration proportions disagree with the stream.
 */
export function biasedCalibration(r: FixtureRecords, seed: number): StreamingCalibration {
  const rng = new Rng(seed);
  const counts = new Float64Array(r.k);
  const sum = new Float64Array(r.k);
  const picked: [number, number][] = [];
  let m = 0;
  for (let i = 0; i < r.n; i++) {
    const j = r.cluster[i];
    if (rng.next() < (j < r.k / 2 ? 0.075 : 0.025)) {
      counts[j]++;
      sum[j] += r.distance[i];
      picked.push([j, r.distance[i]]);
      m++;
    }
  }
  return { counts, dIntra: counts.map((c, j) => (c > 0 ? sum[j] / c : 0)), dInter: r.dInter, sketches: sketchesOf(r.k, picked, counts, sum), sampleSize: m };
}

/**
 * A calibration fitted on ANOTHER distribution: a 5% sample where the first fifth of the clusters
 * is 100× over-represented (10% vs 0.1% sampling) and δ is 25% smaller (a tighter dataset), so its
 * proportions, sizes and δ quantiles all disagree with the stream (issue 11, item 14).
 */
export function foreignCalibration(r: FixtureRecords, seed: number): StreamingCalibration {
  const rng = new Rng(seed);
  const counts = new Float64Array(r.k);
  const sum = new Float64Array(r.k);
  const picked: [number, number][] = [];
  let m = 0;
  for (let i = 0; i < r.n; i++) {
    const j = r.cluster[i];
    if (rng.next() < (j < r.k / 5 ? 0.1 : 0.001)) {
      const d = 0.75 * r.distance[i];
      counts[j]++;
      sum[j] += d;
      picked.push([j, d]);
      m++;
    }
  }
  return { counts, dIntra: counts.map((c, j) => (c > 0 ? sum[j] / c : 0)), dInter: r.dInter, sketches: sketchesOf(r.k, picked, counts, sum), sampleSize: m };
}

export type OrderName = 'original' | 'shuffled' | 'sorted' | 'reverse-sorted' | 'sorted-shuffled-within' | 'random-runs' | 'interleaved-halves';

/** Row orders: a permutation of 0..n−1. */
export function arrivalOrder(r: FixtureRecords, name: OrderName, seed = 1): Int32Array {
  const rng = new Rng(seed);
  const idx = Int32Array.from({ length: r.n }, (_, i) => i);
  const shuffle = (a: Int32Array, lo = 0, hi = a.length): void => {
    for (let i = hi - 1; i > lo; i--) {
      const j = lo + rng.int(i - lo + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  };
  switch (name) {
    case 'original':
      return idx;
    case 'shuffled':
      shuffle(idx);
      return idx;
    case 'sorted':
      return Int32Array.from(Array.from(idx).sort((a, b) => r.cluster[a] - r.cluster[b] || a - b));
    case 'reverse-sorted':
      return Int32Array.from(Array.from(idx).sort((a, b) => r.cluster[b] - r.cluster[a] || a - b));
    case 'sorted-shuffled-within': {
      shuffle(idx);
      return Int32Array.from(Array.from(idx).sort((a, b) => r.cluster[a] - r.cluster[b]));
    }
    case 'random-runs': {
      // Each cluster's members cut into runs of 20..400 rows; the runs arrive in random order.
      const byCluster: number[][] = Array.from({ length: r.k }, () => []);
      shuffle(idx);
      for (const i of idx) byCluster[r.cluster[i]].push(i);
      const runs: number[][] = [];
      for (const members of byCluster) {
        for (let p = 0; p < members.length; ) {
          const len = 20 + rng.int(381);
          runs.push(members.slice(p, p + len));
          p += len;
        }
      }
      const order = Int32Array.from({ length: runs.length }, (_, i) => i);
      shuffle(order);
      return Int32Array.from(Array.from(order).flatMap((o) => runs[o]));
    }
    case 'interleaved-halves': {
      // Clusters 0..k/2−1 first (shuffled among themselves), then the rest: a mix shift mid-stream.
      const first = Array.from(idx).filter((i) => r.cluster[i] < r.k / 2);
      const second = Array.from(idx).filter((i) => r.cluster[i] >= r.k / 2);
      const a = Int32Array.from(first);
      const b = Int32Array.from(second);
      shuffle(a);
      shuffle(b);
      return Int32Array.from([...a, ...b]);
    }
  }
}

export interface Fidelity {
  keepRatio: number;
  l1: number;
  jaccard: number;
}

/** Runs streaming DBP over `order` and compares with the exact plan. */
export function measure(
  r: FixtureRecords,
  order: Int32Array,
  exactKept: Uint8Array,
  exactQuota: Int32Array,
  params: DbpParams,
  calibration: StreamingCalibration | undefined,
  tuning?: StreamingDbpTuning,
): Fidelity {
  const dbp = new StreamingDbp({ k: r.k, params, dInter: r.dInter, calibration, tuning });
  const keptPer = new Float64Array(r.k);
  let inter = 0;
  let kept = 0;
  let exact = 0;
  for (let i = 0; i < r.n; i++) {
    const row = order[i];
    const keep = dbp.decide(r.cluster[row], r.distance[row]);
    if (keep) {
      kept++;
      keptPer[r.cluster[row]]++;
      if (exactKept[row]) inter++;
    }
    if (exactKept[row]) exact++;
  }
  let l1 = 0;
  let q = 0;
  for (let j = 0; j < r.k; j++) {
    l1 += Math.abs(keptPer[j] - exactQuota[j]);
    q += exactQuota[j];
  }
  return { keepRatio: kept / r.n, l1: l1 / q, jaccard: inter / (kept + exact - inter) };
}

/** Exact-mode kept flags (by row) and quotas. */
export function exactDecisions(r: FixtureRecords, params: DbpParams): { kept: Uint8Array; quota: Int32Array } {
  const plan = planDbp({ cluster: r.cluster, distance: r.distance, n: r.n }, new Float32Array(0), r.k, 0, params, r.dInter);
  const decider = createDecider(plan);
  const kept = new Uint8Array(r.n);
  for (let i = 0; i < r.n; i++) kept[i] = decider.keep(r.cluster[i], r.distance[i], i) ? 1 : 0;
  return { kept, quota: plan.quota.quota };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const seeds = Number(arg('--seeds') ?? 5);
  const keepRatio = Number(arg('--keep') ?? 0.3);
  const cold = args.includes('--cold');
  const stale = args.includes('--stale');
  const foreign = args.includes('--foreign');
  const tuning = arg('--tuning') ? (JSON.parse(arg('--tuning') as string) as StreamingDbpTuning) : undefined;
  const r = await loadFixtureRecords();
  const params: DbpParams = { keepRatio, temperature: 0.5, balance: 0.5, which: 'hard' };
  const ex = exactDecisions(r, params);
  const orders: OrderName[] = ['original', 'shuffled', 'sorted', 'reverse-sorted', 'sorted-shuffled-within', 'random-runs', 'interleaved-halves'];
  console.log(`streaming DBP vs exact, dbp-small (n=${r.n}, k=${r.k}), keep ${keepRatio}, calibration ${cold ? 'none (cold)' : stale ? 'stale (3:1 biased sample)' : foreign ? 'foreign (100:1 biased, δ × 0.75)' : '5% uniform sample'}, ${seeds} seeds`);
  console.log('order                    keep (mean, min..max)        L1 (mean, max)     Jaccard (mean, min)');
  const summary: Record<string, { keepMean: number; keepMin: number; keepMax: number; l1Mean: number; l1Max: number; jaccardMean: number; jaccardMin: number }> = {};
  for (const name of orders) {
    const res: Fidelity[] = [];
    for (let s = 0; s < seeds; s++) {
      const cal = cold ? undefined : stale ? biasedCalibration(r, 100 + s) : foreign ? foreignCalibration(r, 100 + s) : sampleCalibration(r, 0.05, 100 + s);
      res.push(measure(r, arrivalOrder(r, name, 1 + s), ex.kept, ex.quota, params, cal, tuning));
    }
    const mean = (f: (x: Fidelity) => number): number => res.reduce((a, x) => a + f(x), 0) / res.length;
    const min = (f: (x: Fidelity) => number): number => Math.min(...res.map(f));
    const max = (f: (x: Fidelity) => number): number => Math.max(...res.map(f));
    summary[name] = {
      keepMean: mean((x) => x.keepRatio),
      keepMin: min((x) => x.keepRatio),
      keepMax: max((x) => x.keepRatio),
      l1Mean: mean((x) => x.l1),
      l1Max: max((x) => x.l1),
      jaccardMean: mean((x) => x.jaccard),
      jaccardMin: min((x) => x.jaccard),
    };
    console.log(
      `${name.padEnd(24)} ${mean((x) => x.keepRatio).toFixed(4)} (${min((x) => x.keepRatio).toFixed(4)}..${max((x) => x.keepRatio).toFixed(4)})   ` +
        `${mean((x) => x.l1).toFixed(4)}, ${max((x) => x.l1).toFixed(4)}     ${mean((x) => x.jaccard).toFixed(4)}, ${min((x) => x.jaccard).toFixed(4)}`,
    );
  }
  console.log(JSON.stringify({ bench: 'streaming-fidelity', n: r.n, k: r.k, keepRatio, seeds, calibration: cold ? 'none' : stale ? 'stale' : foreign ? 'foreign' : '5% uniform', orders: summary }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
