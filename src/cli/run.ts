/** `dbprune run`: the streaming pipelines behind one command. */
import type { UrlListFormat } from '../io/url-list.js';
import type { DecisionTail, DecisionTailOptions, StreamingResult } from '../../pipelines/decision-tail.js';
import { UsageError } from '../core/errors.js';
import type { ManifestFormat } from '../io/manifest.js';
import type { CommandContext } from './commands.js';
import { bundled, synthetic } from './paths.js';
import { Progress } from './progress.js';
import { formatSummary } from './summary.js';
import { decodeOverrides } from './embed.js';

export interface RunFlags extends DbpParamFlags, DataCompFlags {
  embeddings?: string[];
  keys?: string;
  metadata?: string[];
  model?: string;
  centroids?: string;
  calibration?: string;
  out?: string;
  format: ManifestFormat;
  concurrency: number;
  batchSize: number;
  assign: 'auto' | 'exact' | 'hnsw';
  ef: number;
  report: boolean;
  quiet?: boolean;
  dedupEps?: number[];
  urls?: string[];
  inputFormat?: UrlListFormat;
  urlCol: string;
  captionCol?: string;
  saveAdditionalColumns?: string[];
  samplesPerShard: number;
  downloadConcurrency: number;
  userAgentToken?: string;
  allowPrivate?: boolean;
  writeShards?: string;
  imageSize?: number;
  resizeMode?: 'shortest-center-crop' | 'squash';
  mean?: [number, number, number];
  std?: [number, number, number];
  inputName?: string;
  outputName?: string;
  device?: string;
}

/**
 * SSRF policy for shards: the hosts of shard URLs the user typed as arguments are trusted (a local
 * `python3 -m http.server` is a normal source); everything else a shard fetch reaches — redirect
 * targets on other hosts, shard URLs read from stdin — passes the guard unless --allow-private.
 */
export function hostsOfShardArguments(shards: readonly string[]): string[] {
  const hosts = new Set<string>();
  for (const s of shards) {
    if (!/^https?:\/\//i.test(s)) continue;
    try {
      hosts.add(new URL(s).hostname);
    } catch {
      // not a parsable URL: it fails as a shard of its own, with its own error row
    }
  }
  return [...hosts];
}

import { DEFAULT_RUN_KEEP } from './paths.js';
import { dbpParamsFrom, type DbpParamFlags } from './options.js';
import { dataCompFrom, type DataCompFlags } from './datacomp-options.js';

export async function runStreaming(shards: string[], o: RunFlags, ctx: CommandContext): Promise<StreamingResult> {
  const dc = dataCompFrom(o);
  if (o.embeddings && o.datacomp) throw new UsageError('give one of --embeddings and --datacomp');
  const kinds = [shards.length > 0, Boolean(o.embeddings || o.datacomp), Boolean(o.urls)].filter(Boolean).length;
  if (kinds > 1) throw new UsageError('give one input: shards, --embeddings, --datacomp or --urls');
  if (o.writeShards && o.datacomp) throw new UsageError('--write-shards needs images: use it with shards or --urls');
  if (o.writeShards && o.embeddings) throw new UsageError('--write-shards needs images: use it with shards or --urls');
  const usingDefault = kinds === 0;
  if (o.textModel && (o.embeddings || o.datacomp)) throw new UsageError('--text-model needs images: use it with shards or --urls');
  const alignment = o.textModel ? { textModel: o.textModel, min: o.clipScoreMin, top: o.clipScoreTop } : undefined;
  if (o.keys && !o.embeddings) throw new UsageError('--keys needs --embeddings');
  if (o.device !== undefined && (o.embeddings || o.datacomp)) throw new UsageError('--device picks where the image encoder runs: it needs images (shards or --urls), not --embeddings');
  const out = o.out ?? (usingDefault ? 'out' : undefined);
  // No input at all: the real bundled sample with its encoder and centroids. With your own input,
  // --model / --centroids default to the small synthetic ones (as they always did): pass yours.
  const defaults = usingDefault ? bundled : synthetic;
  const model = o.model ?? defaults.model;
  const centroids = o.centroids ?? defaults.centroids;
  const progress = new Progress({ label: 'run', quiet: o.quiet });
  const base: DecisionTailOptions = {
    ...dbpParamsFrom(o, DEFAULT_RUN_KEEP),
    centroids,
    calibration: o.calibration,
    out,
    format: o.format,
    assignMode: o.assign,
    ef: o.ef,
    dedupEps: o.dedupEps,
    report: o.report,
    writeShards: o.writeShards ? { dir: o.writeShards } : undefined,
    signal: ctx.signal,
    warn: (line) => {
      progress.clear();
      process.stderr.write(`${line}\n`);
    },
  };
  const onTail = (tail: DecisionTail): void => {
    tail.onRows(() => progress.update({ samples: tail.counters.samples, kept: tail.counters.kept, errors: tail.counters.errors, duplicates: tail.counters.duplicates }));
  };
  let result: StreamingResult;
  if (o.embeddings || o.datacomp) {
    const { embeddingsToManifest } = await import('../../pipelines/embeddings-to-manifest.js');
    result = await embeddingsToManifest({ ...base, embeddings: o.embeddings, keys: o.keys, metadata: o.metadata, ...dc, onTail });
  } else if (o.urls) {
    const stdin = o.urls.length === 1 && o.urls[0] === '-';
    if (stdin && !o.inputFormat) throw new UsageError('--urls - (stdin) needs --input-format');
    const { urlsToManifest } = await import('../../pipelines/urls-to-manifest.js');
    result = await urlsToManifest({
      ...base,
      writeShards: o.writeShards ? { dir: o.writeShards, samplesPerShard: o.samplesPerShard } : undefined,
      urls: stdin ? process.stdin : o.urls,
      list: { format: o.inputFormat, urlCol: o.urlCol, captionCol: o.captionCol, saveAdditionalColumns: o.saveAdditionalColumns, samplesPerShard: o.samplesPerShard },
      download: { concurrency: o.downloadConcurrency, userAgentToken: o.userAgentToken, allowPrivate: Boolean(o.allowPrivate) },
      model,
      decode: decodeOverrides(o),
      embed: { batchSize: o.batchSize, inputName: o.inputName, outputName: o.outputName, device: o.device },
      alignment,
      onTail,
    });
  } else {
    const inputs = usingDefault ? bundled.shards : shards.length === 1 && shards[0] === '-' ? process.stdin : shards;
    const { shardsToManifest } = await import('../../pipelines/shards-to-manifest.js');
    result = await shardsToManifest({
      ...base,
      inputs,
      model,
      fetch: { concurrency: o.concurrency, allowPrivate: Boolean(o.allowPrivate), allowPrivateHosts: hostsOfShardArguments(shards) },
      decode: decodeOverrides(o),
      embed: { batchSize: o.batchSize, inputName: o.inputName, outputName: o.outputName, device: o.device },
      alignment,
      onTail,
    });
  }
  const t = result.stats.totals;
  progress.done({ samples: t.samples, kept: t.kept, errors: Object.values(t.errors).reduce((a, b) => a + b, 0), duplicates: t.duplicates });
  // The summary goes to stdout only when stdout is not carrying the manifest rows.
  const summary = formatSummary(result.stats, result.files);
  if (out !== undefined) process.stdout.write(summary);
  else if (!o.quiet) process.stderr.write(summary);
  return result;
}
