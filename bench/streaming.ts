/**
 * Issue 3 benchmarks, one JSON object on the last stdout line.
 *
 * A. Images end to end (shards → decode → embed → assign → decide → manifest) against model-only
 *    onnxruntime throughput of the same model and batch size, measured in the same run:
 *    - the bundled tiny encoder on ≥ 20,000 images (the bundled shards, repeated), and
 *    - conv encoders of realistic cost at 224 px (scripts/make-model.ts `buildConvEncoder`):
 *      ≈ 1.2 GFLOP/image and ≈ 4.4 GFLOP/image (CLIP ViT-B/32's cost), on 1,200–2,400 images.
 * B. assign + decide on N synthetic 512-d embeddings at k = 500 (default path), and at k = 20,000
 *    both paths (exact ORT and HNSW) with HNSW's recall against exact.
 * C. Peak RSS of B at 100,000 vs 1,000,000 samples (each in its own child process).
 *
 * Usage: node --import tsx bench/streaming.ts [--quick] [--only images|embeddings]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { DEFAULT_EMBEDDING_BATCH_ROWS } from '../pipelines/embeddings-to-manifest.js';
import { shardsToManifest } from '../pipelines/shards-to-manifest.js';
import { buildConvEncoder, writeModelDir } from '../scripts/make-model.js';
import { interClusterDistance } from '../src/core/complexity.js';
import { NearestCentroid } from '../src/kernels/nearest-centroid.js';
import { Rng } from '../src/core/rng.js';
import { normalizedCopy } from '../src/core/vector.js';
import { embeddingBatches } from '../src/io/embeddings-source.js';
import { readNpyFloat32, readNpyRows, writeNpy } from '../src/io/npy.js';
import { assign, buildCentroidIndex } from '../src/stages/assign.js';
import { decide } from '../src/stages/decide.js';
import { normalize } from '../src/stages/normalize.js';
import { synthEmbeddings } from './synth.js';
import { peakRssMB } from './peak-rss.js';

const root = join(import.meta.dirname, '..');
const quick = process.argv.includes('--quick');
/** `--only images` or `--only embeddings` runs one half. */
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;

/** Model-only throughput: ORT on ready tensors of the model's input size, same batch size. */
async function modelOnly(onnxPath: string, size: number, batch: number, seconds: number): Promise<number> {
  const session = await InferenceSession.create(onnxPath, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  const x = new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i) * 0.5);
  const feeds = { pixel_values: new Tensor('float32', x, [batch, 3, size, size]) };
  await session.run(feeds);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await session.run(feeds);
    n += batch;
  }
  const rate = n / ((performance.now() - t0) / 1000);
  await session.release();
  return rate;
}

async function imagesEndToEnd(model: string, repeats: number, batch: number, centroids: string): Promise<{ samples: number; seconds: number; perSec: number }> {
  const shards = Array.from({ length: repeats }, () => Array.from({ length: 6 }, (_, i) => join(root, 'data-samples', 'shards', `0000${i}.tar`))).flat();
  const out = mkdtempSync(join(tmpdir(), 'dbprune-bench-e2e-'));
  const t0 = performance.now();
  const r = await shardsToManifest({ inputs: shards, model, centroids, keepRatio: 0.3, out, format: 'parquet', report: false, embed: { batchSize: batch } });
  const seconds = (performance.now() - t0) / 1000;
  rmSync(out, { recursive: true, force: true });
  return { samples: r.stats.totals.samples, seconds, perSec: r.stats.totals.samples / seconds };
}

/** B: embeddings → normalize → assign → decide → (discard), in this process. */
async function assignDecide(embeddings: string, centroidsPath: string, mode: 'auto' | 'exact' | 'hnsw' = 'auto'): Promise<{ n: number; seconds: number; perSec: number; path: string }> {
  const c = await readNpyFloat32(centroidsPath);
  const dInter = interClusterDistance(normalizedCopy(c.data, c.rows, c.cols), c.rows, c.cols, 20);
  let n = 0;
  const a = assign({ centroids: c.data, k: c.rows, dim: c.cols, mode });
  const t0 = performance.now();
  await pipeline(
    Readable.from(embeddingBatches({ embeddings, batchRows: DEFAULT_EMBEDDING_BATCH_ROWS }), { objectMode: true, highWaterMark: 2 }),
    normalize({ expectedDim: c.cols }),
    a,
    decide({ dbp: { k: c.rows, params: { keepRatio: 0.3 }, dInter } }),
    new Writable({
      objectMode: true,
      write(rows: unknown[], _e, cb) {
        n += rows.length;
        cb();
      },
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { n, seconds, perSec: n / seconds, path: (a as unknown as { mode: string }).mode };
}

if (process.argv[2] === '--child-assign-decide') {
  const r = await assignDecide(process.argv[3], process.argv[4]);
  console.log(JSON.stringify({ ...r, peakRssMB: peakRssMB() }));
  process.exit(0);
}

function child(args: string[]): Record<string, number> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, number>;
}

const result: Record<string, unknown> = { bench: 'streaming' };

// A. images
if (only !== 'embeddings') {
  const bundled = join(root, 'data-samples', 'model');
  const tinyRepeats = quick ? 2 : 17; // 17 × 1,200 = 20,400 images
  const e2e = await imagesEndToEnd(bundled, tinyRepeats, 64, join(root, 'data-samples', 'centroids', 'centroids.npy'));
  const model = await modelOnly(join(bundled, 'onnx', 'vision_model.onnx'), 32, 64, 5);
  result.tinyModel = { images: e2e.samples, endToEndPerSec: e2e.perSec, modelOnlyPerSec: model, ratio: e2e.perSec / model, batch: 64 };

  for (const cost of ['small', 'clip'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'dbprune-bench-conv-'));
    writeModelDir(dir, buildConvEncoder({ size: 224, dim: 512, cost }), 224);
    const rng = new Rng(1);
    const cent = new Float32Array(16 * 512).map(() => rng.normal());
    await writeNpy(join(dir, 'centroids.npy'), cent, [16, 512]);
    const e2e = await imagesEndToEnd(dir, quick || cost === 'clip' ? 1 : 2, 32, join(dir, 'centroids.npy'));
    const model = await modelOnly(join(dir, 'onnx', 'vision_model.onnx'), 224, 32, 20);
    result[`convEncoder224_${cost}`] = { gflopPerImage: cost === 'clip' ? 4.4 : 1.2, images: e2e.samples, endToEndPerSec: e2e.perSec, modelOnlyPerSec: model, ratio: e2e.perSec / model, batch: 32 };
    rmSync(dir, { recursive: true, force: true });
  }
  process.stderr.write(`A: ${JSON.stringify({ tiny: result.tinyModel, small: result.convEncoder224_small, clip: result.convEncoder224_clip })}\n`);
}

// B + C. embeddings
if (only !== 'images') {
  const big = await synthEmbeddings(1_000_000, 512, 500, 1);
  const small = await synthEmbeddings(100_000, 512, 500, 1);
  const b1m = child(['--child-assign-decide', big.embeddings, big.centroids]);
  const b100k = child(['--child-assign-decide', small.embeddings, small.centroids]);
  result.assignDecideK500 = { n: b1m.n, perSec: b1m.perSec, path: b1m.path };
  result.peakRss = { at100kMB: b100k.peakRssMB, at1mMB: b1m.peakRssMB, ratio: b1m.peakRssMB / b100k.peakRssMB };
  process.stderr.write(`B/C: ${JSON.stringify({ k500: result.assignDecideK500, rss: result.peakRss })}\n`);

  // k = 20,000: centroids = 20,000 rows of the data; queries = 20,000 other rows.
  const k = 20_000;
  const nq = quick ? 5_000 : 20_000;
  const rows: Float32Array[] = [];
  let have = 0;
  for await (const b of readNpyRows(big.embeddings, { batchRows: 8192 })) {
    rows.push(b.data);
    have += b.rows;
    if (have >= k + nq) break;
  }
  const all = new Float32Array(have * 512);
  let o = 0;
  for (const r of rows) {
    all.set(r, o);
    o += r.length;
  }
  const centroids = all.slice(0, k * 512);
  const queries = all.slice(k * 512, (k + nq) * 512);
  const nearest = await NearestCentroid.create(centroids, k, 512, { backend: 'ort' });
  let t0 = performance.now();
  const exact = await nearest.assign(queries, nq);
  const exactPerSec = nq / ((performance.now() - t0) / 1000);
  await nearest.dispose();
  t0 = performance.now();
  const index = buildCentroidIndex(normalizedCopy(centroids, k, 512), k, 512, { M: 16, efConstruction: 200, ef: 64 });
  const buildSeconds = (performance.now() - t0) / 1000;
  let agree = 0;
  t0 = performance.now();
  const q = new Array<number>(512);
  for (let i = 0; i < nq; i++) {
    for (let t = 0; t < 512; t++) q[t] = queries[i * 512 + t];
    const r = index.searchKnn(q, 1);
    if (r.neighbors[0] === exact.cluster[i]) agree++;
  }
  const hnswPerSec = nq / ((performance.now() - t0) / 1000);
  result.k20000 = { queries: nq, exactOrtPerSec: exactPerSec, hnswPerSec, hnswRecallAt1: agree / nq, hnswBuildSeconds: buildSeconds, ef: 64, M: 16 };
  process.stderr.write(`k=20000: ${JSON.stringify(result.k20000)}\n`);
}

console.log(JSON.stringify(result));
