/**
 * The main job: img2dataset-style shards in, a pruned manifest out, without materialising the
 * dataset. Composed only from public stages:
 *
 *   shardSource → shardsToSamples (fetch + untar) → decode → embed → assign → decide → manifestSink
 */
import { pipeline } from 'node:stream/promises';
import { resolveModel } from '../src/io/model-config.js';
import { shardsToSamples, type ShardsToSamplesOptions } from '../src/stages/fetch-shard.js';
import { shardSource } from '../src/stages/shard-source.js';
import { tap } from '../src/stages/tap.js';
import { encoderStages, openDecisionTail, type DecisionTail, type DecisionTailOptions, type ImageEncoderOptions, type StreamingResult } from './decision-tail.js';

/** Options of {@link shardsToManifest}: shard inputs (paths, URLs, brace ranges, globs, folders or a stream of them), fetch options, encoder and the decision tail's options. */
export interface ShardsToManifestOptions extends DecisionTailOptions, ImageEncoderOptions {
  /** Shard paths/URLs/brace ranges/globs/directories, or a stream of them one per line (stdin). */
  inputs: string | string[] | NodeJS.ReadableStream;
  /** Fetch options (concurrency, timeouts, retries). */
  fetch?: Omit<ShardsToSamplesOptions, 'signal'>;
  /** Called with the tail once it is open (e.g. to attach a report collector or progress). */
  onTail?: (tail: DecisionTail) => void;
}

/** The main job: webdataset shards in, a pruned manifest out (shardSource → shardsToSamples → decode → embed → assign → decide → manifestSink). */
export async function shardsToManifest(opts: ShardsToManifestOptions): Promise<StreamingResult> {
  const { signal } = opts;
  const model = await resolveModel(opts.model);
  const tail = await openDecisionTail(opts);
  opts.onTail?.(tail);
  let samplesIn = 0;
  try {
    await pipeline(
      shardSource({ inputs: opts.inputs, signal }),
      shardsToSamples({ ...opts.fetch, signal }),
      tap(() => samplesIn++),
      ...encoderStages(model, tail, opts),
      ...tail.stages,
      tail.sink,
      { signal },
    );
    return await tail.finish(samplesIn, { params: { model: opts.model } });
  } catch (e) {
    return tail.fail(e);
  }
}
