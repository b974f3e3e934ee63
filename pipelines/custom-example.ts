/**
 * Using dbprune's stages in your own pipeline — the two patterns of the README's
 * "Use the stages in your own pipeline":
 *
 * 1. Your own Transform between dbprune stages: a caption-length filter. It does not drop the
 *    samples it rejects; it marks them (`error.reason = 'filter:caption-length'`), every later stage
 *    passes marked samples through, and they reach the manifest as rows with that reason.
 * 2. dbprune's `decide` stage fed by embeddings you computed elsewhere (your own model, another
 *    process, a feature store): wrap them in `EmbeddingBatch`es and pipe them through
 *    normalize → assign → decide → manifestSink.
 *
 * Run it: `npx tsx pipelines/custom-example.ts [outDir]` (or, installed: `import { runCustomExample }
 * from 'dbprune/examples/custom'`). Outside this repository, import the same names from 'dbprune'.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import {
  assign,
  createKeptKeysWriter,
  createManifestWriter,
  decide,
  decode,
  embed,
  interClusterDistance,
  loadCalibration,
  manifestSink,
  normalize,
  normalizedCopy,
  readNpyFloat32,
  resolveModel,
  shardsToSamples,
  shardSource,
  StreamingDbp,
  type EmbeddingBatch,
  type ImageSample,
  type ManifestRow,
} from '../src/index.js';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
/** The bundled data-samples, found from this file in the repo (pipelines/) and in the package (dist/pipelines/). */
function samplesDir(): string {
  const fromRepo = join(root, 'data-samples');
  return root.endsWith('dist') ? join(root, '..', 'data-samples') : fromRepo;
}

/**
 * A user-defined stage: marks samples whose caption is shorter than `minChars` (or missing) as
 * rejected with reason `filter:caption-length`. Marked samples keep flowing, so the manifest
 * still has exactly one row for each of them.
 */
export function captionLengthFilter(minChars: number): Transform {
  return new Transform({
    objectMode: true,
    transform(s: ImageSample, _enc, cb) {
      const len = s.caption?.trim().length ?? 0;
      if (!s.error && len < minChars) {
        s.error = { reason: 'filter:caption-length', message: `caption has ${len} characters, fewer than ${minChars}` };
      }
      cb(null, s);
    },
  });
}

export interface ExampleResult {
  rows: number;
  kept: number;
  byReason: Record<string, number>;
  manifest: string;
}

function countReasons(rows: ManifestRow[], into: Record<string, number>): void {
  for (const r of rows) into[r.reason] = (into[r.reason] ?? 0) + 1;
}

/** Pattern 1: shards → your filter → decode → embed → assign → decide → manifest. */
export async function captionFilterPipeline(opts: { out: string; minChars?: number; shards?: string }): Promise<ExampleResult> {
  const dir = samplesDir();
  const model = await resolveModel(join(dir, 'model'));
  const centroidsPath = join(dir, 'centroids', 'centroids.npy');
  const c = await readNpyFloat32(centroidsPath);
  const calibration = await loadCalibration(join(dir, 'centroids'), centroidsPath);
  const dbp = new StreamingDbp({ k: c.rows, params: { keepRatio: 0.3 }, calibration });
  await mkdir(opts.out, { recursive: true });
  const manifestPath = join(opts.out, 'manifest.jsonl');
  const byReason: Record<string, number> = {};
  const sink = manifestSink({ manifest: createManifestWriter(manifestPath, 'jsonl'), kept: createKeptKeysWriter(join(opts.out, 'kept.txt')), onRows: (rows) => countReasons(rows, byReason) });
  await pipeline(
    shardSource({ inputs: opts.shards ?? join(dir, 'shards') }),
    shardsToSamples(),
    captionLengthFilter(opts.minChars ?? 15),
    decode({ ...model.preprocessing }),
    embed({ model: model.onnxPath, batchSize: 64 }),
    assign({ centroids: c.data, k: c.rows, dim: c.cols }),
    decide({ dbp }),
    sink,
  );
  return { rows: sink.rows, kept: sink.keptRows, byReason, manifest: manifestPath };
}

/**
 * Pattern 2: your own embeddings (here: any Float32Array of n×d rows with your keys) → dbprune's
 * decisions. Without calibration the decider starts cold; pass `calibration` from `dbprune fit`
 * (as pattern 1 does) when you have it.
 */
export async function decideOwnEmbeddings(opts: {
  out: string;
  keys: string[];
  embeddings: Float32Array;
  dim: number;
  centroids: Float32Array;
  k: number;
  keepRatio?: number;
}): Promise<ExampleResult> {
  const { keys, embeddings, dim, centroids, k } = opts;
  const batchRows = 256;
  function* batches(): Generator<EmbeddingBatch> {
    for (let start = 0; start < keys.length; start += batchRows) {
      const end = Math.min(keys.length, start + batchRows);
      yield {
        rows: keys.slice(start, end).map((key) => ({ key })),
        dim,
        embeddings: embeddings.slice(start * dim, end * dim),
      };
    }
  }
  const dInter = interClusterDistance(normalizedCopy(centroids, k, dim), k, dim, 20);
  await mkdir(opts.out, { recursive: true });
  const manifestPath = join(opts.out, 'manifest.jsonl');
  const byReason: Record<string, number> = {};
  const sink = manifestSink({ manifest: createManifestWriter(manifestPath, 'jsonl'), onRows: (rows) => countReasons(rows, byReason) });
  await pipeline(
    Readable.from(batches(), { objectMode: true }),
    normalize({ expectedDim: dim }),
    assign({ centroids, k, dim }),
    decide({ dbp: { k, params: { keepRatio: opts.keepRatio ?? 0.3 }, dInter } }),
    sink,
  );
  return { rows: sink.rows, kept: sink.keptRows, byReason, manifest: manifestPath };
}

/** Runs both patterns on the bundled data-samples; pattern 2 uses embeddings made by pattern-1-style stages. */
export async function runCustomExample(out: string): Promise<{ filter: ExampleResult; own: ExampleResult }> {
  const filter = await captionFilterPipeline({ out: join(out, 'caption-filter') });
  // "Computed elsewhere": any producer of n×d float32 rows will do. Here: the bundled encoder.
  const dir = samplesDir();
  const model = await resolveModel(join(dir, 'model'));
  const keys: string[] = [];
  const chunks: Float32Array[] = [];
  let dim = 0;
  await pipeline(shardSource({ inputs: join(dir, 'shards', '00000.tar') }), shardsToSamples(), decode({ ...model.preprocessing }), embed({ model: model.onnxPath }), async (source: AsyncIterable<EmbeddingBatch>) => {
    for await (const b of source) {
      dim = b.dim;
      keys.push(...b.rows.map((r) => r.key));
      chunks.push(b.embeddings);
    }
  });
  const embeddings = new Float32Array(keys.length * dim);
  let o = 0;
  for (const ch of chunks) {
    embeddings.set(ch, o);
    o += ch.length;
  }
  const c = await readNpyFloat32(join(dir, 'centroids', 'centroids.npy'));
  const own = await decideOwnEmbeddings({ out: join(out, 'own-embeddings'), keys, embeddings, dim, centroids: c.data, k: c.rows });
  return { filter, own };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = process.argv[2] ?? join(process.cwd(), 'out', 'custom-example');
  const r = await runCustomExample(out);
  process.stdout.write(`${JSON.stringify(r, null, 1)}\n`);
}
