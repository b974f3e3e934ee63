/**
 * Images → embeddings in clip-retrieval's layout (what `clip-retrieval inference` writes, and what
 * `prune`, `fit` and `run --embeddings` read):
 *
 *   shards (or a URL list → download) → [skip done parts] → decode → embed → parts on disk
 *
 *   <out>/img_emb/img_emb_<N>.npy         float32 [rows, d]; a failed sample's row is NaN
 *   <out>/metadata/metadata_<N>.parquet   key, shard, url, caption, uid, status, error,
 *                                         error_message, then every sidecar (`KEY.json`) column
 *   <out>/embed.json                      what wrote the parts (model, part size), for resuming
 *
 * Nothing is lost: every sample (failed ones too) has one row in both files of its part; failed rows
 * carry img2dataset's `status`, the reason (`error:decode`, …) and the message, and a NaN vector,
 * which `prune`/`run --embeddings` report as `error:embedding` rows and `fit` skips.
 *
 * Resumable per part: part N holds samples [N·partRows, (N+1)·partRows) of the (deterministic) input
 * order. Each part is written to temporary names and renamed, npy first, metadata last (the commit
 * point). A rerun with the same `out` keeps the leading complete parts and skips their samples
 * before decoding (for URL lists, before downloading).
 *
 * `out` may be an `s3://` prefix: each part's npy is spooled to a local temp file and uploaded at
 * its commit (multipart), then its metadata is PUT (embedding-parts.ts); resuming works the same.
 */
import { Transform, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Table, tableToIPC, Utf8, vectorFromArray, type Vector } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { DbpruneError, ErrorCodes, UsageError } from '../src/core/errors.js';
import { integerOption, stringOption } from '../src/core/validate.js';
import { statusOfReason, type EmbeddingBatch, type ImageSample } from '../src/core/sample.js';
import { resolveModel, type ModelLocation } from '../src/io/model-config.js';
import { NpyWriter } from '../src/io/npy.js';
import { ensureOutputDir } from '../src/io/storage/index.js';
import { urlListSource, type UrlListOptions } from '../src/io/url-list.js';
import { decode } from '../src/stages/decode.js';
import { download, type DownloadOptions } from '../src/stages/download.js';
import { embed } from '../src/stages/embed.js';
import { shardsToSamples, type ShardsToSamplesOptions } from '../src/stages/fetch-shard.js';
import { shardSource } from '../src/stages/shard-source.js';
import type { ImageEncoderOptions } from './decision-tail.js';
import { completeParts, partPaths, PartWriter } from './embedding-parts.js';

/** Where the images come from: shards, or a URL list to download. */
export interface ImageInputOptions {
  /** Shard paths/URLs/brace ranges/globs/directories, or a stream of them one per line (stdin). */
  inputs?: string | string[] | NodeJS.ReadableStream;
  /** Fetch options for shards (concurrency, timeouts, retries). */
  fetch?: Omit<ShardsToSamplesOptions, 'signal'>;
  /** A URL list (img2dataset formats) instead of shards. */
  urls?: UrlListOptions['input'];
  list?: Omit<UrlListOptions, 'input' | 'signal'>;
  download?: Omit<DownloadOptions, 'signal'>;
}

/**
 * The stages that turn the input into `ImageSample`s in a deterministic order. `filter` (optional)
 * runs before any heavy per-sample work: after untar for shards, before download for URL lists.
 */
export function imageSampleStages(opts: ImageInputOptions, filter: Transform | undefined, signal?: AbortSignal): (NodeJS.ReadableStream | Duplex)[] {
  const given = [opts.inputs !== undefined, opts.urls !== undefined].filter(Boolean).length;
  if (given !== 1) throw new UsageError('give one input: shards or a URL list');
  const f = filter ? [filter] : [];
  if (opts.urls !== undefined) {
    return [urlListSource({ ...opts.list, input: opts.urls, signal }), ...f, download({ ...opts.download, signal })];
  }
  return [shardSource({ inputs: opts.inputs as string | string[] | NodeJS.ReadableStream, signal }), shardsToSamples({ ...opts.fetch, signal }), ...f];
}

/**
 * decode → embed for a resolved model: the model's preprocessing with `opts.decode` overrides, and
 * `opts.embed` (batch size default 64). Shared by `embed`, `fit <shards…>` and shardsToEmbeddings.
 */
export function decodeEmbedStages(model: ModelLocation, opts: Omit<ImageEncoderOptions, 'model'>, signal?: AbortSignal): Duplex[] {
  const pre = model.preprocessing;
  return [
    decode({ ...pre, ...opts.decode, signal }),
    embed({ model: model.onnxPath, ...opts.embed, batchSize: opts.embed?.batchSize ?? 64, imageSize: opts.decode?.size ?? pre?.size, signal }),
  ];
}

/** Options of {@link imagesToEmbeddings}: image inputs, encoder, output folder or s3:// prefix, part size (default 100,000; 1..10^9) and resume (default true). */
export interface ImagesToEmbeddingsOptions extends ImageInputOptions, ImageEncoderOptions {
  /** Output folder (created), or an `s3://` prefix. */
  out: string;
  /** Samples per output part. Default 100,000; 1..10^9. */
  partRows?: number;
  /** Keep the complete parts already in `out` and skip their samples. Default true. */
  resume?: boolean;
  signal?: AbortSignal;
  /** Called after every embedded batch. */
  onProgress?: (p: { samples: number; errors: number }) => void;
}

/** What {@link imagesToEmbeddings} returns: samples embedded or failed (with reasons) in this run and in resumed parts, and the parts written. */
export interface ImagesToEmbeddingsResult {
  /** Samples embedded or failed in this run (not counting resumed parts). */
  samples: number;
  embedded: number;
  errors: number;
  errorsByReason: Record<string, number>;
  /** Samples in the parts kept from an earlier run. */
  resumedSamples: number;
  resumedParts: number;
  dim: number;
  parts: { npy: string; metadata: string; rows: number }[];
  seconds: number;
}

/** Skips the first `n` samples (already in complete parts). */
function skipFirst(n: number): Transform {
  let seen = 0;
  return new Transform({
    objectMode: true,
    transform(chunk: unknown, _e, cb) {
      if (seen++ < n) cb();
      else cb(null, chunk);
    },
  });
}

/** Remembers each sample's sidecar in stream order (decode/embed keep order, one row per sample). */
function sidecarTap(queue: (Record<string, unknown> | undefined)[]): Transform {
  return new Transform({
    objectMode: true,
    transform(s: ImageSample, _e, cb) {
      queue.push(s.json);
      cb(null, s);
    },
  });
}

/** The columns of one part's metadata, filled row by row. */
class PartMetadata {
  readonly fixed: Record<'key' | 'shard' | 'url' | 'caption' | 'uid' | 'status' | 'error' | 'error_message', (string | null)[]> = {
    key: [], shard: [], url: [], caption: [], uid: [], status: [], error: [], error_message: [],
  };
  readonly sidecar = new Map<string, (string | null)[]>();
  rows = 0;

  add(fixed: Record<keyof PartMetadata['fixed'], string | null>, json: Record<string, unknown> | undefined): void {
    for (const k of Object.keys(this.fixed) as (keyof PartMetadata['fixed'])[]) this.fixed[k].push(fixed[k]);
    for (const [name, v] of Object.entries(json ?? {})) {
      if (name in this.fixed) continue;
      let col = this.sidecar.get(name);
      if (!col) this.sidecar.set(name, (col = new Array<string | null>(this.rows).fill(null)));
      col.push(v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v));
    }
    this.rows++;
    for (const col of this.sidecar.values()) if (col.length < this.rows) col.push(null);
  }

  parquet(): Uint8Array {
    const cols: Record<string, Vector> = {};
    for (const [k, v] of Object.entries(this.fixed)) if (k !== 'uid' || v.some((x) => x !== null)) cols[k] = vectorFromArray(v, new Utf8());
    for (const [k, v] of this.sidecar) cols[k] = vectorFromArray(v, new Utf8());
    const wt = parquet.Table.fromIPCStream(tableToIPC(new Table(cols), 'stream'));
    const props = new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.SNAPPY).setCreatedBy('dbprune embed').build();
    return parquet.writeParquet(wt, props);
  }
}

/**
 * Embeds every image of the input with `model` and writes clip-retrieval parts (see the module
 * comment). Throws ERR_DBPRUNE_INVALID_OPTION / ERR_DBPRUNE_USAGE for bad options, the model and
 * input codes of the stages it runs, ERR_DBPRUNE_ABORTED on `signal`. Per-sample failures are rows.
 */
export async function imagesToEmbeddings(opts: ImagesToEmbeddingsOptions): Promise<ImagesToEmbeddingsResult> {
  const t0 = performance.now();
  const { signal } = opts;
  const partRows = integerOption(opts.partRows, 'partRows', { default: 100_000, min: 1, max: 1e9 });
  const out = stringOption(opts.out, 'out');
  const model = await resolveModel(opts.model);
  await ensureOutputDir(out);
  const done = await completeParts(out, { model: opts.model, partRows }, opts.resume ?? true);
  const parts = await PartWriter.open(out, { model: opts.model, partRows });

  const result: ImagesToEmbeddingsResult = { samples: 0, embedded: 0, errors: 0, errorsByReason: {}, resumedSamples: done * partRows, resumedParts: done, dim: 0, parts: [], seconds: 0 };
  for (let n = 0; n < done; n++) result.parts.push({ ...partPaths(out, n), rows: partRows });
  const sidecars: (Record<string, unknown> | undefined)[] = [];
  let partNo = done;
  let npy: NpyWriter | undefined;
  let meta = new PartMetadata();

  const commit = async (): Promise<void> => {
    if (!npy || meta.rows === 0) return;
    const final = await parts.commit(partNo, npy, meta.parquet(), signal);
    result.parts.push({ ...final, rows: meta.rows });
    partNo++;
    npy = undefined;
    meta = new PartMetadata();
  };

  const sink = new Writable({
    objectMode: true,
    write(b: EmbeddingBatch, _enc, cb) {
      (async () => {
        const dim = b.dim;
        result.dim = dim;
        // This batch's rows (failed ones NaN), written in runs that end at part boundaries.
        const rows = b.embeddings.slice(0, b.rows.length * dim);
        let start = 0;
        const flush = async (end: number): Promise<void> => {
          if (end === start) return;
          npy ??= await NpyWriter.create(parts.npyTempPath(partNo), 'float32', dim);
          await npy.write(rows.subarray(start * dim, end * dim));
          start = end;
        };
        for (let i = 0; i < b.rows.length; i++) {
          const ref = b.rows[i];
          const err = b.errors?.[i];
          if (err) rows.fill(NaN, i * dim, (i + 1) * dim);
          meta.add(
            { key: ref.key, shard: ref.shard ?? null, url: ref.url ?? null, caption: ref.caption ?? null, uid: ref.uid ?? null, status: err ? statusOfReason(err.reason) : 'success', error: err?.reason ?? null, error_message: err?.message ?? null },
            sidecars.shift(),
          );
          result.samples++;
          if (err) {
            result.errors++;
            result.errorsByReason[err.reason] = (result.errorsByReason[err.reason] ?? 0) + 1;
          } else result.embedded++;
          if (meta.rows === partRows) {
            await flush(i + 1);
            await commit();
          }
        }
        await flush(b.rows.length);
        opts.onProgress?.({ samples: result.samples, errors: result.errors });
      })().then(() => cb(), cb);
    },
    final(cb) {
      commit().then(() => cb(), cb);
    },
  });

  try {
    await pipeline(
      [
        ...imageSampleStages(opts, done > 0 ? skipFirst(done * partRows) : undefined, signal),
        sidecarTap(sidecars),
        ...decodeEmbedStages(model, opts, signal),
        sink,
      ],
      { signal },
    );
  } catch (e) {
    // The open part stays a .tmp file (removed by the next run); only its handle is released here.
    await npy?.close().catch(() => {});
    throw e;
  } finally {
    await parts.close();
  }
  if (sidecars.length !== 0) throw new DbpruneError(ErrorCodes.INTERNAL, `${sidecars.length} samples entered decode but never left embed`);
  if (result.embedded + result.errors !== result.samples) throw new DbpruneError(ErrorCodes.INTERNAL, `rows in (${result.samples}) != embedded (${result.embedded}) + errors (${result.errors})`);
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
