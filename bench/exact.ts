/**
 * Issue 2 benchmark: exact mode end to end (read, normalise, assign, stats, quotas, decisions,
 * Parquet manifest, kept keys) on N synthetic 512-d embeddings with k = 500, against a plain
 * JavaScript brute-force assignment measured in the same run (the baseline ratio). The prune runs
 * from dist/ in child processes (3 runs; median and range) so each peak RSS is its own.
 * Prints one JSON object on stdout. Usage: node --import tsx bench/exact.ts [N]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { nearestBruteForceJs } from '../src/core/nearest.js';
import { readNpyFloat32, readNpyRows } from '../src/io/npy.js';
import { dataDir, synthEmbeddings } from './synth.js';
import { median } from './time-v.js';

const dim = 512;
const k = 500;

/**
 * The measured run: the BUILT library (dist/, what `dbprune prune` runs — no TypeScript loader in
 * the process), in a child of its own so its peak RSS (getrusage maxRSS) is its own.
 */
const CHILD = `
const [embeddings, centroids, n, out, mod] = process.argv.slice(1);
const { pruneExact } = await import(mod);
const { rmSync } = await import('node:fs');
const mem = {};
const sample = (phase) => {
  const m = process.memoryUsage();
  const p = (mem[phase] ??= {});
  for (const [key, v] of Object.entries({ rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers })) p[key] = Math.max(p[key] ?? 0, Math.round(v / 2 ** 20));
};
sample('start');
const t1 = performance.now();
const u0 = process.cpuUsage();
const result = await pruneExact({ embeddings, centroids, keepRatio: 0.277, out, onProgress: (p) => sample('pass' + p.pass) });
const seconds = (performance.now() - t1) / 1000;
const u = process.cpuUsage(u0);
sample('end');
rmSync(out, { recursive: true, force: true });
const t = result.stats.timings;
const rate = (s) => Math.round(Number(n) / s);
// Peak RSS of this process's own address space, from the kernel (VmHWM). getrusage's maxRSS is
// kept across execve, so a spawned child would report its parent's peak when that was bigger.
const { readFileSync } = await import('node:fs');
const hwm = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
if (!hwm) throw new Error('no VmHWM in /proc/self/status: peak RSS cannot be measured on this system');
const peakRssMB = Number(hwm[1]) / 1024;
console.log(JSON.stringify({ seconds, samplesPerSec: Number(n) / seconds, peakRssMB, cpuSeconds: (u.user + u.system) / 1e6, timings: t,
  phaseSamplesPerSec: { pass1: rate(t.pass1_assign_s), plan: rate(t.plan_s), pass2: rate(t.pass2_write_s) }, memoryMB: mem, kept: result.stats.totals.kept }));
`;


{
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
  // Build dist/ if needed, then measure three runs of the built library.
  const root = join(import.meta.dirname, '..');
  const mod = join(root, 'dist', 'pipelines', 'exact-prune.js');
  if (!existsSync(mod)) spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  const runs: Record<string, unknown>[] = [];
  for (let i = 0; i < 3; i++) {
    const out = join(dataDir, `exact-out-${process.pid}-${i}`);
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, set.embeddings, set.centroids, String(n), out, pathToFileURL(mod).href], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    runs.push(JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>);
  }
  const rates = runs.map((r) => r.samplesPerSec as number);
  const rss = runs.map((r) => r.peakRssMB as number);
  const best = runs[rates.indexOf(median(rates))];
  console.log(
    JSON.stringify({
      bench: 'exact',
      n,
      dim,
      k,
      runs: runs.length,
      samplesPerSecMedian: median(rates),
      samplesPerSecRange: [Math.min(...rates), Math.max(...rates)],
      peakRssMBMedian: median(rss),
      peakRssMBRange: [Math.min(...rss), Math.max(...rss)],
      baselineJsBruteForcePerSec: baselineRate,
      ratioVsBaseline: median(rates) / baselineRate,
      budgetMB: 300 + (8 * n) / 2 ** 20,
      medianRun: best,
    }),
  );
}
