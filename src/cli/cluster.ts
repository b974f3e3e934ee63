/**
 * The CLI side of the distributed mode (src/cluster/):
 *
 *     dbprune worker --cluster redis://HOST:6379 [--concurrency N] [--threads T]
 *     dbprune prune --embeddings … --centroids … --out DIR --cluster redis://HOST:6379 [--work-dir DIR/.work] [--dedup-eps ε]
 *
 * `worker` runs until SIGTERM/SIGINT, finishes the job(s) it holds, and exits 0 (a second signal
 * forces exit 130). Redis unreachable: one ERR_DBPRUNE_CLUSTER_UNREACHABLE line, exit 1.
 */
import { Option, type Command } from 'commander';
import type { ManifestFormat } from '../io/manifest/types.js';
import type { NearestBackend } from '../core/nearest.js';
import type { ExactPruneResult } from '../../pipelines/exact-prune.js';
import { parseNumber } from './options.js';
import { fmtInt } from './progress.js';
import { formatSummary } from './summary.js';
import type { CommandContext } from './context.js';
import type { DbpParams } from '../core/dbp.js';
import { UsageError } from '../core/errors.js';
import { synthetic } from './paths.js';

/** `--cluster`, `--work-dir` and `--queue` on a submitting command (prune). */
export function addClusterSubmitOptions(cmd: Command): Command {
  return cmd
    .option('--cluster <redis-url>', 'run on `dbprune worker`s through BullMQ on this Redis (redis://HOST:PORT)')
    .option('--work-dir <dir>', 'with --cluster: intermediate files, a path or s3:// prefix every worker sees (default <out>/.work)')
    .option('--queue <name>', 'with --cluster: BullMQ queue name', 'dbprune')
    .addOption(new Option('--redis-lost-ms <ms>', 'fail once Redis is unreachable this long').argParser(parseNumber('--redis-lost-ms', { min: 100, integer: true })).hideHelp())
    .addOption(new Option('--dedup-task-pairs <n>', 'with --dedup-eps: compared pairs per dedup job').argParser(parseNumber('--dedup-task-pairs', { min: 1, integer: true })).hideHelp());
}

/** The worker's hidden timing flags (tests shorten stalled-job detection). */
function addStallOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--lock-duration-ms <ms>', 'job lock lifetime').argParser(parseNumber('--lock-duration-ms', { min: 100, integer: true })).hideHelp())
    .addOption(new Option('--stalled-interval-ms <ms>', 'stalled-job check interval').argParser(parseNumber('--stalled-interval-ms', { min: 100, integer: true })).hideHelp())
    .addOption(new Option('--job-delay-ms <ms>', 'test hook: sleep before each part job').argParser(parseNumber('--job-delay-ms', { min: 0, integer: true })).hideHelp());
}

export function registerWorker(program: Command, ctx: CommandContext): void {
  addStallOptions(
    program
      .command('worker')
      .description('take distributed jobs (prune|run --cluster) from Redis until SIGTERM; run any number, on any machines')
      .requiredOption('--cluster <redis-url>', 'Redis of the cluster (redis://HOST:PORT)')
      .option('--concurrency <n>', 'jobs at once in this process', parseNumber('--concurrency', { min: 1, max: 64, integer: true }), 1)
      .option('--threads <n>', 'ORT threads per nearest-centroid index (default min(2, cpus))', parseNumber('--threads', { min: 1, max: 256, integer: true }))
      .option('--queue <name>', 'BullMQ queue name', 'dbprune')
      .option('-q, --quiet', 'no per-job lines on stderr'),
  ).action(async (o: { cluster: string; concurrency: number; threads?: number; queue: string; quiet?: boolean; lockDurationMs?: number; stalledIntervalMs?: number; jobDelayMs?: number }) => {
    const { parseClusterUrl } = await import('../cluster/connection.js');
    const connection = parseClusterUrl(o.cluster);
    const { runClusterWorker } = await import('../cluster/worker.js');
    const { jobs } = await runClusterWorker({
      connection,
      queue: o.queue,
      concurrency: o.concurrency,
      threads: o.threads,
      stall: { ...(o.lockDurationMs ? { lockDurationMs: o.lockDurationMs } : {}), ...(o.stalledIntervalMs ? { stalledIntervalMs: o.stalledIntervalMs } : {}) },
      jobDelayMs: o.jobDelayMs,
      signal: ctx.signal,
      log: o.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    if (!o.quiet) process.stderr.write(`dbprune worker: stopped after ${jobs} jobs\n`);
  });
}

/** Flags every submitting command (`prune`, `run`) reads on its cluster path. */
interface ClusterSubmitFlags {
  format: ManifestFormat;
  report: boolean;
  quiet?: boolean;
  cluster: string;
  workDir?: string;
  queue: string;
  redisLostMs?: number;
  /** SemDeDup before DBP (ε list, the first decides). */
  dedupEps?: number[];
  dedupTaskPairs?: number;
}

/** Flags of `prune` that the cluster path reads. */
export interface ClusterPruneFlags extends ClusterSubmitFlags {
  embeddings: string[];
  keys?: string;
  metadata?: string[];
  centroids: string;
  out: string;
  backend: NearestBackend;
  json?: boolean;
}

/** Flags of `run` that the cluster path reads. */
export interface ClusterRunFlags extends ClusterSubmitFlags {
  embeddings?: string[];
  keys?: string;
  metadata?: string[];
  urls?: string[];
  inputFormat?: 'parquet' | 'csv' | 'tsv' | 'json' | 'jsonl' | 'txt';
  urlCol?: string;
  captionCol?: string;
  saveAdditionalColumns?: string[];
  downloadConcurrency?: number;
  userAgentToken?: string;
  writeShards?: string;
  samplesPerShard?: number;
  allowPrivate?: boolean;
  /** Default (as for `run` with an input): the synthetic encoder and centroids. */
  model?: string;
  centroids?: string;
  out?: string;
  batchSize: number;
  imageSize?: number;
  resizeMode?: 'shortest-center-crop' | 'squash';
  mean?: [number, number, number];
  std?: [number, number, number];
}

/** Progress and log lines of a submitting command on stderr (parts done/total, samples/s, failures). */
function submitReporting(quiet: boolean | undefined): { log?: (line: string) => void; onProgress: (p: { phase: string; parts: number; totalParts: number; rows: number; totalRows: number; failures: number }) => void } {
  let phase = '';
  let phaseStart = performance.now();
  const say = quiet ? undefined : (line: string): void => void process.stderr.write(`${line}\n`);
  return {
    log: say,
    onProgress: (p) => {
      if (p.phase !== phase) {
        phase = p.phase;
        phaseStart = performance.now();
      }
      const rate = p.rows / Math.max(1e-3, (performance.now() - phaseStart) / 1000);
      const of = p.totalRows >= 0 ? `/${fmtInt(p.totalRows)}` : '';
      say?.(`dbprune cluster ${p.phase}: ${p.parts}/${p.totalParts} parts, ${fmtInt(p.rows)}${of} samples, ${fmtInt(Math.round(rate))}/s, failed attempts ${p.failures}`);
    },
  };
}

/** The submit options both commands share: the cluster, the work dir, outputs, reporting. */
async function submitOptions(o: ClusterSubmitFlags, out: string, ctx: CommandContext) {
  const { parseClusterUrl } = await import('../cluster/connection.js');
  return {
    out,
    format: o.format,
    report: o.report,
    connection: parseClusterUrl(o.cluster),
    workDir: o.workDir,
    queue: o.queue,
    redisLostMs: o.redisLostMs,
    signal: ctx.signal,
    ...submitReporting(o.quiet),
  };
}

function printResult(result: ExactPruneResult, json: boolean | undefined): void {
  if (json) process.stdout.write(`${JSON.stringify(result.stats.totals)}\n`);
  else process.stdout.write(formatSummary(result.stats, result.files));
}

/** The decode settings given on the command line (the model's config fills the rest). */
function decodeFlags(o: ClusterRunFlags): Record<string, unknown> {
  const decode: Record<string, unknown> = {};
  if (o.imageSize !== undefined) decode.size = o.imageSize;
  if (o.resizeMode !== undefined) decode.mode = o.resizeMode;
  if (o.mean !== undefined) decode.mean = o.mean;
  if (o.std !== undefined) decode.std = o.std;
  return decode;
}

/** Distributed exact DBP over embeddings (`prune --cluster`, `run --embeddings --cluster`). */
async function embeddingsOnCluster(o: ClusterSubmitFlags & { embeddings: string[]; keys?: string; metadata?: string[]; backend?: NearestBackend }, centroids: string, out: string, params: DbpParams, ctx: CommandContext): Promise<ExactPruneResult> {
  const { pruneCluster } = await import('../cluster/submit.js');
  return pruneCluster({
    ...(await submitOptions(o, out, ctx)),
    ...params,
    embeddings: o.embeddings,
    keys: o.keys,
    metadata: o.metadata,
    centroids,
    backend: o.backend,
    dedupEps: o.dedupEps,
    dedupTaskPairs: o.dedupTaskPairs,
  });
}

/** `prune --cluster`: submits, shows progress from job events, prints the same summary as `prune`. */
export async function pruneOnCluster(o: ClusterPruneFlags, params: DbpParams, ctx: CommandContext): Promise<ExactPruneResult> {
  const result = await embeddingsOnCluster(o, o.centroids, o.out, params, ctx);
  printResult(result, o.json);
  return result;
}

/**
 * `run --cluster`: exact DBP on the workers over image shards (= `embed` + `prune`) or over
 * `--urls` (= `embed --urls` + `prune`) or `--embeddings` (= `prune` with run's defaults).
 * `--write-shards` re-packs the kept samples of shards.
 */
export async function runOnCluster(shards: string[], o: ClusterRunFlags, params: DbpParams, ctx: CommandContext): Promise<ExactPruneResult> {
  if (o.out === undefined) throw new UsageError('run --cluster needs --out', { option: 'out' });
  let result: ExactPruneResult;
  if (o.urls) {
    if (shards.length > 0 || o.embeddings) throw new UsageError('give one input: shards, --urls or --embeddings', { option: 'urls' });
    if (o.urls.includes('-')) throw new UsageError('run --urls --cluster reads URL list files (not stdin)', { option: 'urls' });
    if (o.writeShards !== undefined) throw new UsageError('--write-shards with --urls is not supported with --cluster yet', { option: 'write-shards' });
    if (o.dedupEps !== undefined) throw new UsageError('--dedup-eps with --cluster needs --embeddings (downloaded images are not deduplicated on the cluster yet)', { option: 'dedup-eps' });
    const { runUrlsCluster } = await import('../cluster/submit.js');
    result = await runUrlsCluster({
      ...(await submitOptions(o, o.out, ctx)),
      ...params,
      urls: o.urls,
      list: { format: o.inputFormat, urlCol: o.urlCol, captionCol: o.captionCol, saveAdditionalColumns: o.saveAdditionalColumns, samplesPerShard: o.samplesPerShard },
      download: { concurrency: o.downloadConcurrency, userAgentToken: o.userAgentToken, allowPrivate: Boolean(o.allowPrivate) },
      model: o.model ?? synthetic.model,
      batchSize: o.batchSize,
      decode: decodeFlags(o),
      centroids: o.centroids ?? synthetic.centroids,
    });
  } else if (o.embeddings) {
    if (shards.length > 0) throw new UsageError('give one input: shards or --embeddings', { option: 'embeddings' });
    if (o.writeShards !== undefined) throw new UsageError('--write-shards needs images: use it with shards', { option: 'write-shards' });
    result = await embeddingsOnCluster({ ...o, embeddings: o.embeddings }, o.centroids ?? synthetic.centroids, o.out, params, ctx);
  } else {
    if (o.dedupEps !== undefined) throw new UsageError('--dedup-eps with --cluster needs --embeddings (image shards are not deduplicated on the cluster yet)', { option: 'dedup-eps' });
    if (shards.length === 0 || shards.includes('-')) throw new UsageError('run --cluster needs shard paths or URLs (not stdin), or --embeddings', { option: 'cluster' });
    const { runShardsCluster } = await import('../cluster/submit.js');
    const decode = decodeFlags(o);
    const { hostsOfShardArguments } = await import('./run.js');
    result = await runShardsCluster({
      ...(await submitOptions(o, o.out, ctx)),
      ...params,
      shards,
      fetch: { allowPrivate: Boolean(o.allowPrivate), allowPrivateHosts: hostsOfShardArguments(shards) },
      model: o.model ?? synthetic.model,
      batchSize: o.batchSize,
      decode,
      centroids: o.centroids ?? synthetic.centroids,
      writeShards: o.writeShards === undefined ? undefined : { dir: o.writeShards, samplesPerShard: o.samplesPerShard },
    });
  }
  printResult(result, false);
  return result;
}
