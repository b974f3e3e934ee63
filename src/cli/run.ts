/** `dbprune run`: streaming DBP — its flags, and the streaming pipelines behind the one command. */
import type { Command } from 'commander';
import type { DecisionTail, DecisionTailOptions, StreamingResult } from '../../pipelines/decision-tail.js';
import { UsageError } from '../core/errors.js';
import { ASSIGN_MODES, URL_LIST_FORMATS } from './choices.js';
import { addClusterSubmitOptions, runOnCluster } from './cluster.js';
import type { CommandContext } from './context.js';
import { dataCompFrom } from './datacomp-options.js';
import { addDecisionFlags, type DecisionFlags } from './decision-flags.js';
import { decodeOverrides, type ImageFlags } from './embed.js';
import { addEncoderFlags, embedOptionsFrom } from './encoder-flags.js';
import { addConcurrencyOptions, dbpParamsFrom, parseChoice, parseList, parseNumber, refuseFlags, type ClusterSubmitFlags } from './options.js';
import { bundled, DEFAULT_RUN_KEEP, synthetic } from './paths.js';
import { Progress } from './progress.js';
import { formatSummary } from './summary.js';

/** Values of `run`'s flags: the image flags of `embed`/`fit` (same names and types) plus the decision's. */
export interface RunFlags extends Omit<ImageFlags, 'captionCol'>, DecisionFlags {
  /** No default here (embed's is `caption`): not given and absent, rows have no caption; given, it must exist. */
  captionCol?: string;
  embeddings?: string[];
  keys?: string;
  metadata?: string[];
  centroids?: string;
  calibration?: string;
  out?: string;
  assign: NonNullable<DecisionTailOptions['assignMode']>;
  ef: number;
  writeShards?: string;
}

/** The input and encoder flags of `run` (image shards, --urls or --embeddings). */
function addRunInputFlags(cmd: Command): Command {
  return addEncoderFlags(addConcurrencyOptions(cmd))
    .option('--embeddings <npy...>', 'stream precomputed embeddings instead of images (.npy, glob, or clip-retrieval folder)')
    .option('--keys <txt>', 'keys.txt for --embeddings')
    .option('--metadata <parquet...>', 'parquet metadata for --embeddings')
    .option('--model <dir>', 'ONNX image encoder (.onnx or transformers.js/optimum folder); default: the bundled real MobileNetV2 with no input, else the tiny synthetic encoder')
    .option('--urls <list...>', 'URL list(s) to download: parquet/csv/tsv/json/jsonl/txt (also .gz), a folder, or - for stdin')
    .option('--input-format <fmt>', `URL list format (required for stdin): ${URL_LIST_FORMATS.join(' | ')}`, parseChoice('--input-format', URL_LIST_FORMATS))
    .option('--url-col <name>', 'URL column', 'url')
    .option('--caption-col <name>', 'caption column (default caption; when not given and absent, rows have no caption; when given, it must exist)')
    .option('--save-additional-columns <cols>', 'comma-separated extra columns kept in the sidecars and shard parquet', parseList)
    .option('--samples-per-shard <n>', 'img2dataset number_sample_per_shard (keys and --write-shards)', parseNumber('--samples-per-shard', { min: 1, integer: true }), 10_000)
    .option('--user-agent-token <token>', 'added to the user agent (e.g. your project or contact)')
    .option('--allow-private', 'allow image and shard URLs (and redirects) resolving to loopback/private/link-local addresses (SSRF guard off; hosts of shard URLs given as arguments are always allowed)');
}

/** Flags of `run` that a --cluster run (exact DBP) cannot honour. */
const RUN_NOT_ON_CLUSTER = ['calibration', 'datacomp', 'clipScoreMin', 'clipScoreTop', 'basicFilter', 'basicFilterNoLanguage', 'textModel'] as const satisfies readonly (keyof RunFlags)[];

export function registerRun(program: Command, ctx: CommandContext): void {
  const run = addDecisionFlags(
    addRunInputFlags(
      program
        .command('run')
        .description('streaming DBP: shards (or precomputed embeddings) in, pruned manifest out; no arguments = the bundled data-samples')
        .argument('[shards...]', "shard paths, URLs, brace ranges ('{00000..00099}.tar'), folders, or - to read them from stdin"),
    )
      .option('--centroids <npy>', 'k×d centroids .npy; default: the bundled real ones with no input, else the synthetic ones')
      .option('--calibration <dir>', "folder with fit's calibration.json (default: beside the centroids)")
      .option('--out <dir>', 'output folder; without it, JSONL manifest rows go to stdout (default out/ for the bundled sample)')
      .option('--assign <mode>', `nearest centroid: ${ASSIGN_MODES.join(' | ')}`, parseChoice('--assign', ASSIGN_MODES), 'auto')
      .option('--ef <n>', 'HNSW search breadth', parseNumber('--ef', { min: 1, max: 4096, integer: true }), 64)
      .option('--write-shards <dir>', 'also write the kept samples as webdataset shards (img2dataset layout)'),
  );
  addClusterSubmitOptions(run).action(async (shards: string[], o: RunFlags & ClusterSubmitFlags) => {
    if (o.cluster !== undefined) {
      // --cluster runs exact DBP (the paper's two passes): the streaming-only flags and the DataComp
      // filters would be silently ignored, so they are refused.
      refuseFlags(o, RUN_NOT_ON_CLUSTER, 'is not supported with --cluster (a cluster run is exact DBP)');
      if (o.assign !== 'auto' || o.ef !== 64) throw new UsageError('--assign and --ef are streaming options; --cluster runs exact DBP', { option: 'assign' });
      await runOnCluster(shards, { ...o, cluster: o.cluster }, dbpParamsFrom(o, DEFAULT_RUN_KEEP), ctx);
      return;
    }
    if (o.workDir !== undefined || o.queue !== 'dbprune') throw new UsageError('--work-dir and --queue need --cluster', { option: 'work-dir' });
    await runStreaming(shards, o, ctx);
  });
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
      embed: embedOptionsFrom(o),
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
      embed: embedOptionsFrom(o),
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
