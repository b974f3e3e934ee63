/**
 * Shards → embeddings on disk, for `fit` and exact `prune` over image shards:
 *
 *   shardSource → shardsToSamples → decode → embed → embeddings.npy + keys.txt (+ errors.jsonl)
 *
 * Rows that failed (download/untar/decode/embedding errors) are not written to the .npy; each is
 * listed in errors.jsonl with its reason, so every input sample is accounted for.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DbpruneError, ErrorCodes } from '../src/core/errors.js';
import type { EmbeddingBatch } from '../src/core/sample.js';
import { createKeptKeysWriter } from '../src/io/manifest.js';
import { resolveModel } from '../src/io/model-config.js';
import { NpyWriter } from '../src/io/npy.js';
import type { ShardsToSamplesOptions } from '../src/stages/fetch-shard.js';
import { tap } from '../src/stages/tap.js';
import { decodeEmbedStages, imageSampleStages } from './images-to-embeddings.js';

/** Options of {@link shardsToEmbeddings}: shard inputs, ONNX model, output folder, batch size and fetch options. */
export interface ShardsToEmbeddingsOptions {
  inputs: string | string[] | NodeJS.ReadableStream;
  model: string;
  out: string;
  batchSize?: number;
  /** Fetch options (concurrency, timeouts, retries, SSRF guard: loopback/private shard URLs need `allowPrivate`). */
  fetch?: Omit<ShardsToSamplesOptions, 'signal'>;
  signal?: AbortSignal;
}

/** What {@link shardsToEmbeddings} returns: sample counts, embedding width and the paths of embeddings.npy, keys.txt and errors.jsonl. */
export interface ShardsToEmbeddingsResult {
  samples: number;
  embedded: number;
  errors: number;
  dim: number;
  files: { embeddings: string; keys: string; errors: string };
}

/** Shards → embeddings.npy + keys.txt (+ errors.jsonl listing every failed sample with its reason), for `fit` and exact prune over images. */
export async function shardsToEmbeddings(opts: ShardsToEmbeddingsOptions): Promise<ShardsToEmbeddingsResult> {
  const { signal } = opts;
  const model = await resolveModel(opts.model);
  await mkdir(opts.out, { recursive: true });
  const files = { embeddings: join(opts.out, 'embeddings.npy'), keys: join(opts.out, 'keys.txt'), errors: join(opts.out, 'errors.jsonl') };
  let npy: NpyWriter | undefined;
  const keys = createKeptKeysWriter(files.keys);
  const errorsOut = createWriteStream(files.errors);
  let samples = 0;
  let embedded = 0;
  let errors = 0;
  let dim = 0;
  const sink = new Writable({
    objectMode: true,
    write(b: EmbeddingBatch, _enc, cb) {
      (async () => {
        npy ??= await NpyWriter.create(files.embeddings, 'float32', b.dim);
        dim = b.dim;
        const good: number[] = [];
        for (let i = 0; i < b.rows.length; i++) {
          const e = b.errors?.[i];
          if (e) {
            errors++;
            errorsOut.write(`${JSON.stringify({ key: b.rows[i].key, shard: b.rows[i].shard ?? null, reason: e.reason, error: e.message })}\n`);
          } else good.push(i);
        }
        const data = new Float32Array(good.length * b.dim);
        good.forEach((i, t) => data.set(b.embeddings.subarray(i * b.dim, (i + 1) * b.dim), t * b.dim));
        if (good.length > 0) await npy.write(data);
        await keys.write(good.map((i) => b.rows[i].key));
        embedded += good.length;
      })().then(() => cb(), cb);
    },
  });
  await pipeline(
    [...imageSampleStages({ inputs: opts.inputs, fetch: opts.fetch }, tap(() => samples++), signal), ...decodeEmbedStages(model, { embed: { batchSize: opts.batchSize } }, signal), sink],
    { signal },
  );
  await keys.close();
  await new Promise<void>((r) => errorsOut.end(r));
  if (!npy) throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, 'no samples in the given shards');
  await npy.close();
  if (embedded + errors !== samples) throw new DbpruneError(ErrorCodes.INTERNAL, `rows in (${samples}) != embedded (${embedded}) + errors (${errors})`);
  return { samples, embedded, errors, dim, files };
}
