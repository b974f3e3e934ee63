/**
 * The map job of `run <shards> --cluster`: one image shard → fetch → untar → decode → embed (the
 * stages of the shards-to-embeddings pipeline, with its settings) → L2-normalise → nearest centroid;
 * of `run --urls --cluster`: one chunk of the URL list (one img2dataset shard) → download → the same.
 * Writes the records of the embedded samples (8 bytes each), every sample's row metadata in shard
 * order (refs, columnar: key, shard, url, caption, uid, and the error of a sample that failed), and the
 * summary, with a checksum marker last — the same outputs as an embeddings map part.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import type { EmbeddingBatch, SampleRef } from '../core/sample.js';
import { normalizeRows } from '../core/vector.js';
import { resolveModel } from '../io/model-config.js';
import { decode } from '../stages/decode.js';
import { embed } from '../stages/embed.js';
import { download } from '../stages/download.js';
import { shardsToSamples } from '../stages/fetch-shard.js';
import type { UrlRef } from '../io/url-list.js';
import { shardSource } from '../stages/shard-source.js';
import { encodeRecords, flagKeys, summarize } from './map-job.js';
import type { RefItem } from './part-rows.js';
import type { RunContext } from './run-context.js';
import { encodeShardRefs } from './shard-refs.js';
import { layout, readPartFiles, writePartFiles } from './run-spec.js';

/** The URL refs of chunk part `p` of a URL-list run (written by the submitter). */
export async function readUrlChunk(ctx: Pick<RunContext, 'store' | 'spec'>, p: number): Promise<UrlRef[]> {
  const text = (await ctx.store.read(ctx.spec.parts[p].input)).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as UrlRef);
}

/** Runs (or skips, when already done) the map job of shard part `p`. Returns whether it computed. */
export async function mapShardPart(ctx: RunContext, p: number, signal?: AbortSignal): Promise<boolean> {
  const { store, spec } = ctx;
  if (await readPartFiles(store, layout.mapDone(spec.runId, p))) return false; // done and every checksum verifies
  const images = spec.images;
  if (!images) throw new DbpruneError(ErrorCodes.INTERNAL, `run ${spec.runId} has no image settings`);
  const shard = spec.parts[p].input;
  const model = await resolveModel(images.model);
  const pre = model.preprocessing ? { ...model.preprocessing, ...images.decode } : images.decode;
  const items: RefItem[] = [];
  const vectors: Float32Array[] = [];
  const recordRefs: SampleRef[] = [];
  let errorRows = 0;
  const sink = new Writable({
    objectMode: true,
    write(b: EmbeddingBatch, _enc, cb) {
      if (b.dim !== spec.dim) {
        cb(new DbpruneError(ErrorCodes.DIM_MISMATCH, `model ${images.model} embeds in ${b.dim} dimensions but the centroids have ${spec.dim}`, { shard, expected: spec.dim, got: b.dim }));
        return;
      }
      for (let i = 0; i < b.rows.length; i++) {
        const r = b.rows[i];
        const ref: SampleRef = { key: r.key, shard: r.shard, url: r.url, caption: r.caption, uid: r.uid };
        const e = b.errors?.[i];
        if (e) {
          items.push({ ref, error: { reason: e.reason, message: e.message, code: e.code } });
          errorRows++;
        } else {
          vectors.push(b.embeddings.slice(i * b.dim, (i + 1) * b.dim));
          recordRefs.push(ref);
          items.push({ ref });
        }
      }
      cb();
    },
  });
  const [source, samples] = images.download
    ? [Readable.from(await readUrlChunk(ctx, p)), download({ ...images.download, signal })]
    : [shardSource({ inputs: [shard], signal }), shardsToSamples({ allowPrivate: images.fetch?.allowPrivate ?? false, allowPrivateHosts: images.fetch?.allowPrivateHosts ?? [], signal })];
  await pipeline(
    source,
    samples,
    decode({ ...pre, signal }),
    embed({ model: model.onnxPath, batchSize: images.batchSize, imageSize: pre?.size, signal }),
    sink,
    { signal },
  );
  const n = vectors.length;
  const x = new Float32Array(n * spec.dim);
  vectors.forEach((v, i) => x.set(v, i * spec.dim));
  const norm = normalizeRows(x, n, spec.dim);
  const cluster = new Int32Array(n);
  const distance = new Float32Array(n);
  const nearest = await ctx.nearest();
  for (let start = 0; start < n; start += spec.batchRows) {
    const rows = Math.min(spec.batchRows, n - start);
    await nearest.assign(x.subarray(start * spec.dim, (start + rows) * spec.dim), rows, { cluster: cluster.subarray(start, start + rows), distance: distance.subarray(start, start + rows) });
  }
  if (norm.invalid) {
    for (let i = 0; i < n; i++) {
      if (norm.invalid[i]) {
        cluster[i] = -1;
        distance[i] = NaN;
      }
    }
  }
  const keys = await flagKeys(cluster, () => Readable.from([recordRefs]) as AsyncIterable<SampleRef[]>, n, signal);
  const summary = summarize(spec.k, cluster, distance, { part: p, rows: items.length, recordRows: n, errorRows, invalid: norm.invalidCount, renormalized: norm.renormalized, ...keys });
  await writePartFiles(
    store,
    {
      [layout.mapRecords(spec.runId, p)]: encodeRecords(cluster, distance),
      [layout.mapRefs(spec.runId, p)]: encodeShardRefs(items),
      [layout.mapSummary(spec.runId, p)]: JSON.stringify(summary),
    },
    layout.mapDone(spec.runId, p),
  );
  return true;
}
