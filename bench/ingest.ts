/**
 * Sustained ingestion (embeddings path): `ingest()` over FILES × ROWS synthetic clustered unit
 * embeddings (d = 512, k = 500 centroids): without checkpoints (only the final commit), with the
 * default checkpoints (every 100,000 samples or 30 s; each commit = segment + StreamingDbp
 * snapshot, fsynced), and with a commit every 10,000 samples (a stress setting). Reports
 * samples/s, the overhead ratios, the commits made, and RSS sampled every second (first / last /
 * max, MiB) — it should stay flat.
 *
 *   npx tsx bench/ingest.ts [files=60] [rowsPerFile=10000]
 *
 * Prints ONE JSON object as the last stdout line.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ingest, type IngestResult } from '../pipelines/ingest/index.js';
import { Rng } from '../src/core/rng.js';
import { NpyWriter, writeNpy } from '../src/io/npy.js';

const FILES = Number(process.argv[2] ?? 60);
const ROWS = Number(process.argv[3] ?? 10_000);
const DIM = 512;
const K = 500;

function unit(v: Float32Array, o: number, dim: number): void {
  let s = 0;
  for (let t = 0; t < dim; t++) s += v[o + t] * v[o + t];
  const inv = 1 / Math.sqrt(s);
  for (let t = 0; t < dim; t++) v[o + t] *= inv;
}

async function makeData(dir: string): Promise<{ files: string[]; centroids: string }> {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(11);
  const centres = new Float32Array(K * DIM);
  for (let i = 0; i < centres.length; i++) centres[i] = rng.next() * 2 - 1;
  for (let j = 0; j < K; j++) unit(centres, j * DIM, DIM);
  const centroids = join(dir, 'centroids.npy');
  await writeNpy(centroids, centres, [K, DIM]);
  const files: string[] = [];
  const chunk = 2048;
  for (let f = 0; f < FILES; f++) {
    const path = join(dir, `emb_${String(f).padStart(4, '0')}.npy`);
    const w = await NpyWriter.create(path, 'float32', DIM);
    for (let r = 0; r < ROWS; r += chunk) {
      const n = Math.min(chunk, ROWS - r);
      const x = new Float32Array(n * DIM);
      for (let i = 0; i < n; i++) {
        const j = rng.int(K);
        const spread = 0.3 + (j % 10) * 0.1;
        for (let t = 0; t < DIM; t++) x[i * DIM + t] = centres[j * DIM + t] + spread * (rng.next() * 2 - 1) * 0.1;
        unit(x, i * DIM, DIM);
      }
      await w.write(x);
    }
    await w.close();
    files.push(path);
  }
  return { files, centroids };
}

interface RunOut {
  seconds: number;
  samplesPerSec: number;
  commits: number;
  rssMiB: { first: number; last: number; max: number; samples: number; series: number[] };
  stateBytesPerCommit: number;
  segments: number;
}

async function run(files: string[], centroids: string, dir: string, every: number | undefined): Promise<RunOut> {
  rmSync(dir, { recursive: true, force: true });
  const rss: number[] = [];
  const sample = (): void => void rss.push(process.memoryUsage().rss / 2 ** 20);
  sample();
  const timer = setInterval(sample, 1000);
  const t0 = performance.now();
  let r: IngestResult;
  try {
    r = await ingest({
      state: join(dir, 'state'),
      out: join(dir, 'out'),
      mode: 'embeddings',
      centroids,
      keepRatio: 0.3,
      stdin: Readable.from([`${files.join('\n')}\n`]),
      exitWhenDone: true,
      // undefined: the product defaults (100,000 samples / 30 s); Infinity: only the final commit.
      ...(every === undefined ? {} : every === Infinity ? { checkpointEvery: 1e9, checkpointSecs: 86_400 } : { checkpointEvery: every }),
      warn: () => undefined,
    });
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - t0) / 1000;
  sample();
  const states = join(dir, 'state', 'states');
  const stateFiles = await readdir(states);
  const sizes = await Promise.all(stateFiles.map(async (f) => (await stat(join(states, f))).size));
  return {
    seconds,
    samplesPerSec: r.rows / seconds,
    commits: r.commits,
    rssMiB: { first: Math.round(rss[0]), last: Math.round(rss[rss.length - 1]), max: Math.round(Math.max(...rss)), samples: rss.length, series: rss.map(Math.round) },
    stateBytesPerCommit: Math.round(sizes.reduce((a, b) => a + b, 0) / Math.max(1, sizes.length)),
    segments: (await readdir(join(dir, 'out'))).filter((f) => f.startsWith('part-')).length,
  };
}

const root = join(tmpdir(), `dbprune-bench-ingest-${process.pid}`);
try {
  process.stderr.write(`bench ingest: writing ${FILES} × ${ROWS} × ${DIM} embeddings ...\n`);
  const { files, centroids } = await makeData(join(root, 'data'));
  process.stderr.write('bench ingest: warm-up ...\n');
  await run(files.slice(0, 1), centroids, join(root, 'warm'), undefined);
  process.stderr.write('bench ingest: without checkpoints ...\n');
  const off = await run(files, centroids, join(root, 'off'), Infinity);
  process.stderr.write(`  ${Math.round(off.samplesPerSec)} samples/s\nbench ingest: default checkpoints ...\n`);
  const on = await run(files, centroids, join(root, 'on'), undefined);
  process.stderr.write(`  ${Math.round(on.samplesPerSec)} samples/s, ${on.commits} commits\nbench ingest: a commit every 10,000 samples ...\n`);
  const stress = await run(files, centroids, join(root, 'stress'), 10_000);
  process.stderr.write(`  ${Math.round(stress.samplesPerSec)} samples/s, ${stress.commits} commits\n`);
  const result = {
    bench: 'ingest',
    samples: FILES * ROWS,
    files: FILES,
    dim: DIM,
    k: K,
    withDefaultCheckpoints: on,
    withCheckpointEvery10k: stress,
    withoutCheckpoints: off,
    overheadRatio: Number((off.samplesPerSec / on.samplesPerSec).toFixed(3)),
    overheadRatioEvery10k: Number((off.samplesPerSec / stress.samplesPerSec).toFixed(3)),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
