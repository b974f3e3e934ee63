/**
 * URLs in, pruned manifest (and optionally pruned webdataset shards) out — img2dataset's job and
 * DBP in one stream, built from public stages:
 *
 *   urlListSource → download → [hold images] → decode → embed → assign → decide → manifestSink (+ shard writer)
 */
import { pipeline } from 'node:stream/promises';
import { resolveModel } from '../src/io/model-config.js';
import { urlListSource, type UrlListOptions } from '../src/io/url-list.js';
import { decode, type DecodeOptions } from '../src/stages/decode.js';
import { download, type DownloadOptions } from '../src/stages/download.js';
import { embed } from '../src/stages/embed.js';
import { tap } from '../src/stages/tap.js';
import { openDecisionTail, REPORT_THUMBNAIL_PX, type DecisionTail, type DecisionTailOptions, type StreamingResult } from './decision-tail.js';

export interface UrlsToManifestOptions extends DecisionTailOptions {
  /** URL list(s) (parquet/csv/tsv/json/jsonl/txt, optionally gzipped), a folder, or a Readable with `list.format`. */
  urls: UrlListOptions['input'];
  /** URL-list reading: format, url/caption columns, additional columns, samples per shard. */
  list?: Omit<UrlListOptions, 'input' | 'signal'>;
  /** Download politeness and limits (concurrency, per-host connections, timeouts, SSRF guard, robots). */
  download?: Omit<DownloadOptions, 'signal'>;
  model: string;
  decode?: Omit<DecodeOptions, 'signal'>;
  /** Embedding micro-batch size (default 64), ORT threads (default 2), and the model's input/output names when not the defaults. */
  embed?: { batchSize?: number; maxDelayMs?: number; threads?: number; inputName?: string; outputName?: string };
  onTail?: (tail: DecisionTail) => void;
}

export async function urlsToManifest(opts: UrlsToManifestOptions): Promise<StreamingResult> {
  const { signal } = opts;
  const model = await resolveModel(opts.model);
  const pre = model.preprocessing;
  const writeShards = opts.writeShards ? { additionalColumns: opts.list?.saveAdditionalColumns, ...opts.writeShards } : undefined;
  const tail = await openDecisionTail({ ...opts, writeShards });
  opts.onTail?.(tail);
  let rowsIn = 0;
  await pipeline(
    urlListSource({ ...opts.list, input: opts.urls, signal }),
    tap(() => rowsIn++),
    download({ ...opts.download, signal }),
    tail.holdImages(),
    decode({ ...pre, ...(tail.wantsThumbnails ? { thumbnail: REPORT_THUMBNAIL_PX } : {}), ...opts.decode, signal }),
    embed({ model: model.onnxPath, ...opts.embed, batchSize: opts.embed?.batchSize ?? 64, imageSize: opts.decode?.size ?? pre?.size, signal }),
    ...tail.stages,
    tail.sink,
    { signal },
  );
  return tail.finish(rowsIn, { params: { model: opts.model } });
}
