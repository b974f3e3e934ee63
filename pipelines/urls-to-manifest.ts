/**
 * URLs in, pruned manifest (and optionally pruned webdataset shards) out — img2dataset's job and
 * DBP in one stream, built from public stages:
 *
 *   urlListSource → download → [hold images] → decode → embed → assign → decide → manifestSink (+ shard writer)
 */
import { pipeline } from 'node:stream/promises';
import { resolveModel } from '../src/io/model-config.js';
import { urlListSource, type UrlListOptions } from '../src/io/url-list.js';
import { download, type DownloadOptions } from '../src/stages/download.js';
import { tap } from '../src/stages/tap.js';
import { encoderStages, openDecisionTail, type DecisionTail, type DecisionTailOptions, type ImageEncoderOptions, type StreamingResult } from './decision-tail.js';

/** Options of {@link urlsToManifest}: URL lists, list reading and download options, encoder, optional shard writing, and the decision tail's options. */
export interface UrlsToManifestOptions extends DecisionTailOptions, ImageEncoderOptions {
  /** URL list(s) (parquet/csv/tsv/json/jsonl/txt, optionally gzipped), a folder, or a Readable with `list.format`. */
  urls: UrlListOptions['input'];
  /** URL-list reading: format, url/caption columns, additional columns, samples per shard. */
  list?: Omit<UrlListOptions, 'input' | 'signal'>;
  /** Download politeness and limits (concurrency, per-host connections, timeouts, SSRF guard, robots). */
  download?: Omit<DownloadOptions, 'signal'>;
  onTail?: (tail: DecisionTail) => void;
}

/** URL lists in, a pruned manifest (and optionally pruned webdataset shards) out: urlListSource → download → decode → embed → assign → decide → manifestSink. */
export async function urlsToManifest(opts: UrlsToManifestOptions): Promise<StreamingResult> {
  const { signal } = opts;
  const model = await resolveModel(opts.model);
  const writeShards = opts.writeShards ? { additionalColumns: opts.list?.saveAdditionalColumns, ...opts.writeShards } : undefined;
  const tail = await openDecisionTail({ ...opts, writeShards });
  opts.onTail?.(tail);
  let rowsIn = 0;
  try {
    await pipeline(
      urlListSource({ ...opts.list, input: opts.urls, signal }),
      tap(() => rowsIn++),
      download({ ...opts.download, signal }),
      ...encoderStages(model, tail, opts),
      ...tail.stages,
      tail.sink,
      { signal },
    );
    return await tail.finish(rowsIn, { params: { model: opts.model } });
  } catch (e) {
    return tail.fail(e);
  }
}
