/**
 * The main job: img2dataset-style shards in, a pruned manifest out, without materialising the
 * dataset. Composed only from public stages:
 *
 *   shardSource → shardsToSamples (fetch + untar) → decode → embed → assign → decide → manifestSink
 */
import { pipeline } from 'node:stream/promises';
import { resolveModel } from '../src/io/model-config.js';
import { decode, type DecodeOptions } from '../src/stages/decode.js';
import { embed } from '../src/stages/embed.js';
import { shardsToSamples, type ShardsToSamplesOptions } from '../src/stages/fetch-shard.js';
import { shardSource } from '../src/stages/shard-source.js';
import { tap } from '../src/stages/tap.js';
import { openDecisionTail, REPORT_THUMBNAIL_PX, type DecisionTail, type DecisionTailOptions, type StreamingResult } from './decision-tail.js';

export interface ShardsToManifestOptions extends DecisionTailOptions {
  /** Shard paths/URLs/brace ranges/globs/directories, or a stream of them one per line (stdin). */
  inputs: string | string[] | NodeJS.ReadableStream;
  /** ONNX image encoder: an `.onnx` file or a transformers.js/optimum folder. */
  model: string;
  /** Fetch options (concurrency, timeouts, retries). */
  fetch?: Omit<ShardsToSamplesOptions, 'signal'>;
  /** Decode overrides; the defaults come from the model's preprocessor_config.json. */
  decode?: Omit<DecodeOptions, 'signal'>;
  /** Embedding micro-batch size (default 64) and ORT threads (default 2). */
  /** Embedding micro-batch size (default 64), ORT threads (default 2), and the model's input/output names when not the defaults. */
  embed?: { batchSize?: number; maxDelayMs?: number; threads?: number; inputName?: string; outputName?: string };
  /** Called with the tail once it is open (e.g. to attach a report collector or progress). */
  onTail?: (tail: DecisionTail) => void;
}

export async function shardsToManifest(opts: ShardsToManifestOptions): Promise<StreamingResult> {
  const { signal } = opts;
  const model = await resolveModel(opts.model);
  const tail = await openDecisionTail(opts);
  opts.onTail?.(tail);
  const pre = model.preprocessing;
  let samplesIn = 0;
  await pipeline(
    shardSource({ inputs: opts.inputs, signal }),
    shardsToSamples({ ...opts.fetch, signal }),
    tap(() => samplesIn++),
    tail.holdImages(),
    decode({ ...pre, ...(tail.wantsThumbnails ? { thumbnail: REPORT_THUMBNAIL_PX } : {}), ...opts.decode, signal }),
    embed({ model: model.onnxPath, ...opts.embed, batchSize: opts.embed?.batchSize ?? 64, imageSize: opts.decode?.size ?? pre?.size, signal }),
    ...tail.stages,
    tail.sink,
    { signal },
  );
  return tail.finish(samplesIn, { params: { model: opts.model } });
}
