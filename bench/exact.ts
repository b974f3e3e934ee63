/**
 * Issue 2 benchmark: exact mode end to end (read, normalise, assign, stats, quotas, decisions,
 * Parquet manifest, kept keys) on N synthetic 512-d embeddings with k = 500, against a plain
 * JavaScript brute-force assignment measured in the same run (the baseline ratio). The prune runs
 * in a child process so its peak RSS is its own. Prints one JSON object on stdout.
 * Usage: node --import tsx bench/exact.ts [N]
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { nearestBruteForceJs } from '../src/core/nearest.js';
import { readNpyFloat32, readNpyRows } from '../src/io/npy.js';
import { pruneExact } from '../pipelines/exact-prune.js';
import { dataDir, synthEmbeddings } from './synth.js';

const dim = 512;
const k = 500;

if (process.argv[2] === '--child') {
  const [, , , embeddings, centroids, n] = process.argv;
  const out = join(dataDir, `exact-out-${process.pid}`);
  const t1 = performance.now();
  const result = await pruneExact({ embeddings, centroids, keepRatio: 0.277, out });
  const seconds = (performance.now() - t1) / 1000;
  rmSync(out, { recursive: true, force: true });
  console.log(JSON.stringify({ seconds, samplesPerSec: Number(n) / seconds, peakRssMB: process.resourceUsage().maxRSS / 1024, timings: result.stats.timings, kept: result.stats.totals.kept }));
} else {
  const n = Number(process.argv[2] ?? 1_000_000);
  const set = await synthEmbeddings(n, dim, k, 1);
  // Baseline: plain JS brute force on the first 4,096 rows.
  const c = await readNpyFloat32(set.centroids);
  let sample: Float32Array | undefined;
  for await (const b of readNpyRows(set.embeddings, { batchRows: 4096 })) {
    sample = b.data;
    break;
  }
  const t0 = performance.now();
  nearestBruteForceJs(sample as Float32Array, 4096, c.data, k, dim);
  const baselineRate = 4096 / ((performance.now() - t0) / 1000);
  // Warm the page cache so the run reads from memory, as the numpy figure in facts.md did.
  for await (const _ of readNpyRows(set.embeddings, { batchRows: 65536 })) void _;
  const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', set.embeddings, set.centroids, String(n)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const child = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
  console.log(
    JSON.stringify({
      bench: 'exact',
      n,
      dim,
      k,
      ...child,
      baselineJsBruteForcePerSec: baselineRate,
      ratioVsBaseline: child.samplesPerSec / baselineRate,
      budgetMB: 300 + (8 * n) / 2 ** 20,
    }),
  );
}
