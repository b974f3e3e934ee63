/**
 * `dbprune prune --cluster redis://…`: exact DBP over precomputed embeddings on any number of
 * `dbprune worker`s, with decisions equal to single-machine exact mode to the sample.
 *
 *   map flow     one job per embeddings part: assign → records + summary   → merge: plan.json
 *   select flows (≤ 3 rounds) per part: histogram of the next key bits     → merge: next state
 *   decide flow  per part: manifest rows with the exact thresholds/ties    → merge: decide.json
 *   assemble     here: the single-machine outputs, rows in = rows out
 *
 * Every phase is one BullMQ flow whose merge (parent) job runs after all its part jobs; nothing
 * reads a phase's outputs before its merge, so a job executed twice (at-least-once delivery) never
 * duplicates a row. The run id hashes parameters, centroids and inputs, and every phase's output
 * lives in the work dir: the same command after a crash skips the finished phases and waits for (or
 * re-adds) the unfinished one, whose finished parts are not recomputed.
 */
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FlowProducer, Job, Queue, QueueEvents } from 'bullmq';
import { resolveDbpParams } from '../core/dbp.js';
import { DbpruneError, ErrorCodes, throwIfAborted, UsageError } from '../core/errors.js';
import { radixThresholds } from '../core/radix-select.js';
import { DEDUP_ORDERS, parseEpsList } from '../core/semdedup.js';
import { choiceOption, integerOption } from '../core/validate.js';
import { planEmbeddingSource, type EmbeddingSourcePlan } from '../io/embeddings-source.js';
import { isUrl } from '../io/glob.js';
import { joinLocation } from '../io/storage/index.js';
import { resolveModel } from '../io/model-config.js';
import { shardSource, type ShardRef } from '../stages/shard-source.js';
import { hashFile, sha256Hex } from '../io/hash.js';
import { urlListSource, type UrlListOptions, type UrlRef } from '../io/url-list.js';
import type { ManifestFormat } from '../io/manifest.js';
import { readNpyHeader } from '../io/npy.js';
import type { ExactPruneOptions } from '../../pipelines/exact-prune.js';
import { assembleOutputs, type ClusterPruneResult } from './assemble.js';
import { DEFAULT_QUEUE, MERGE_JOB_OPTIONS, PART_JOB_OPTIONS, probeRedis, watchRedis, type RedisConnection } from './connection.js';
import { MERGE_JOB, mergeJobId, PART_JOB, partJobId, phaseKey, type ClusterJobData, type PartJobResult, type Phase } from './jobs.js';
import { DEDUP_PAIRS_PER_TASK, type DedupPlanFile } from './dedup-job.js';
import { absoluteSource, deriveRunId, layout, readRunJson, type DedupSpec, type ImageSpec, type PruneRunSpec } from './run-spec.js';
import type { PlanFile, SelectFile } from './select-job.js';
import type { ShardOutputOptions } from './shard-output.js';
import { openWorkStore, type WorkStore } from './work-store.js';

export interface ClusterPruneOptions
  extends Omit<ExactPruneOptions, 'threads' | 'batchRows' | 'onProgress' | 'keepRatio' | 'target' | 'embeddings' | 'datacomp' | 'embeddingKey' | 'filters'> {
  /** Keep ratio r (the cluster path has no --target or DataComp filters yet). */
  keepRatio: number;
  /** `.npy` path(s)/glob, or a clip-retrieval folder. */
  embeddings: string | string[];
  connection: RedisConnection;
  /** Shared by every worker; default `<out>/.work` (a prefix under an s3:// out). */
  workDir?: string;
  queue?: string;
  /** Progress of the current phase (parts done/total, rows, failures). */
  onProgress?: (p: { phase: string; parts: number; totalParts: number; rows: number; totalRows: number; failures: number }) => void;
  /** One line per notable job event (failed attempt, stalled job). */
  log?: (line: string) => void;
  /** Fail with ERR_DBPRUNE_CLUSTER_UNREACHABLE once Redis has been unreachable this long (default 30 s). */
  redisLostMs?: number;
  /** With `dedupEps`: compared pairs per dedup job (default {@link DEDUP_PAIRS_PER_TASK}). */
  dedupTaskPairs?: number;
}

interface Clients {
  queue: Queue<ClusterJobData>;
  flow: FlowProducer;
  events: QueueEvents;
}

/** What both submitting commands share: outputs, parameters, cluster and reporting. */
type CommonOptions = Omit<ClusterPruneOptions, 'embeddings' | 'keys' | 'metadata' | 'backend' | 'dedupEps' | 'dedupTaskPairs'>;

/** Checks the centroids against the data's dimension; returns k, dim and their SHA-256. */
async function centroidsInfo(path: string, dim: number | undefined, where: string): Promise<{ k: number; dim: number; sha256: string }> {
  const ch = await readNpyHeader(path);
  if (dim !== undefined && ch.cols !== dim) {
    throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `embedding dimension ${dim} (${where}) differs from centroid dimension ${ch.cols} (${path})`, { file: path, embeddingDim: dim, centroidDim: ch.cols });
  }
  return { k: ch.rows, dim: ch.cols, sha256: (await hashFile(path)).sha256 };
}

/** The SemDeDup settings of a run (undefined without `dedupEps`), checked as exact mode checks them. */
function dedupSpec(opts: Pick<ClusterPruneOptions, 'dedupEps' | 'dedupTaskPairs'>, which: string): DedupSpec | undefined {
  if (!opts.dedupEps || opts.dedupEps.length === 0) return undefined;
  let eps: number[];
  try {
    eps = parseEpsList(opts.dedupEps);
  } catch (e) {
    throw new UsageError(`--dedup-eps: ${(e as Error).message}`, { option: 'dedup-eps' });
  }
  choiceOption(which, 'which', DEDUP_ORDERS);
  return { eps, pairsPerTask: integerOption(opts.dedupTaskPairs, 'dedupTaskPairs', { default: DEDUP_PAIRS_PER_TASK, min: 1, max: 2 ** 40 }) };
}

/** Runs exact DBP over embeddings parts on the cluster and writes the single-machine outputs to `out`. */
export async function pruneCluster(opts: ClusterPruneOptions): Promise<ClusterPruneResult & { runId: string; workDir: string }> {
  const started = performance.now();
  const params = resolveDbpParams(opts);
  const source = absoluteSource(opts);
  const plan0 = await planEmbeddingSource({ ...source, signal: opts.signal });
  const centroids = resolve(opts.centroids);
  const c = await centroidsInfo(centroids, plan0.dim, plan0.parts[0]?.npy ?? '');
  if (c.k > plan0.totalRows) throw new UsageError(`k = ${c.k} centroids but only ${plan0.totalRows} samples`);
  const dedup = dedupSpec(opts, params.which);
  const runId = await deriveRunId({ kind: 'prune', params, centroidsSha256: c.sha256, plan: plan0, source, dedup });
  const spec: PruneRunSpec = {
    version: 1,
    kind: 'prune',
    runId,
    source,
    centroids,
    centroidsSha256: c.sha256,
    params,
    backend: opts.backend ?? 'auto',
    batchRows: 4096,
    parts: plan0.parts.map((p) => ({ input: p.npy, rows: p.rows, offset: p.offset })),
    totalRows: plan0.totalRows,
    dim: plan0.dim,
    k: c.k,
    ...(dedup ? { dedup } : {}),
  };
  return executeRun(spec, plan0, opts, started);
}

/** Options of {@link runShardsCluster}: image shards in, the `embed` + `prune` result out. */
export interface ClusterShardsOptions extends CommonOptions {
  /** Shard paths, URLs, brace ranges, globs or folders (not stdin). */
  shards: string[];
  /** ONNX encoder (.onnx or transformers.js/optimum folder). */
  model: string;
  /** Embedding micro-batch, default 64 (as the shards-to-embeddings pipeline). */
  batchSize?: number;
  decode?: ImageSpec['decode'];
  /** Also write the kept samples as webdataset shards (the single-machine shard writer). */
  writeShards?: ShardOutputOptions;
  fetch?: ImageSpec['fetch'];
}

/**
 * `run <shards> --cluster`: map jobs fetch, decode, embed and assign one shard each; the selection
 * is the same distributed exact select. Equals the shards-to-embeddings pipeline followed by exact
 * `prune` on its output, plus one error row per sample that could not be embedded.
 */
export async function runShardsCluster(opts: ClusterShardsOptions): Promise<ClusterPruneResult & { runId: string; workDir: string }> {
  const started = performance.now();
  const params = resolveDbpParams(opts);
  const shards: string[] = [];
  for await (const r of shardSource({ inputs: opts.shards, signal: opts.signal })) {
    const s = (r as ShardRef).shard;
    shards.push(isUrl(s) ? s : resolve(s));
  }
  const spec = await imageRunSpec(opts, params, { fetch: opts.fetch }, shards, () => shards.map((input) => ({ input, rows: -1, offset: -1 })), -1);
  return executeRun(spec, undefined, opts, started, opts.writeShards);
}

/** Options of {@link runUrlsCluster}: a URL list in, the `embed --urls` + `prune` result out. */
export interface ClusterUrlsOptions extends CommonOptions {
  /** URL list file(s), folder or glob (not stdin). */
  urls: string[];
  list?: Omit<UrlListOptions, 'input' | 'signal' | 'batchRows'>;
  download: NonNullable<ImageSpec['download']>;
  model: string;
  batchSize?: number;
  decode?: ImageSpec['decode'];
}

/**
 * `run --urls --cluster`: the submitter reads the URL list once (keys and shard names as
 * img2dataset numbers them) and writes one chunk per shard of the list to the work dir; a map job
 * downloads, decodes, embeds and assigns one chunk. Equals `embed --urls` followed by exact `prune`,
 * plus one error row per sample that could not be embedded.
 */
export async function runUrlsCluster(opts: ClusterUrlsOptions): Promise<ClusterPruneResult & { runId: string; workDir: string }> {
  const started = performance.now();
  const params = resolveDbpParams(opts);
  const chunks: UrlRef[][] = [];
  let shard: string | undefined;
  for await (const item of urlListSource({ ...opts.list, input: opts.urls, signal: opts.signal })) {
    const ref = item as UrlRef;
    if (chunks.length === 0 || ref.shard !== shard) chunks.push([]);
    shard = ref.shard;
    chunks[chunks.length - 1].push(ref);
  }
  if (chunks.length === 0) throw new UsageError(`${opts.urls.join(', ')}: the URL list holds no rows`, { option: 'urls' });
  const texts = chunks.map((c) => `${c.map((r) => JSON.stringify(r)).join('\n')}\n`);
  const spec = await imageRunSpec(
    opts,
    params,
    { download: opts.download, urlsSha256: sha256Hex(texts.join('')) },
    undefined,
    (id) => chunks.map((chunk, p) => ({ input: layout.urlChunk(id, p), rows: chunk.length, offset: -1 })),
    chunks.reduce((n, chunk) => n + chunk.length, 0),
  );
  const runId = spec.runId;
  const writeChunks = async (store: WorkStore): Promise<void> => {
    for (let p = 0; p < texts.length; p++) if (!(await store.exists(layout.urlChunk(runId, p)))) await store.write(layout.urlChunk(runId, p), texts[p]);
  };
  return executeRun(spec, undefined, opts, started, undefined, writeChunks);
}

/**
 * The spec of an image run (`run` over shards or URL-list chunks): the centroids' and model's
 * hashes, the image settings plus `extra` (how images are fetched), the run id derived from them
 * (and from `shards` when given), and the parts named by `parts(runId)`.
 */
async function imageRunSpec(
  opts: { centroids: string; model: string; batchSize?: number; decode?: ImageSpec['decode'] },
  params: PruneRunSpec['params'],
  extra: Pick<ImageSpec, 'fetch' | 'download' | 'urlsSha256'>,
  shards: string[] | undefined,
  parts: (runId: string) => PruneRunSpec['parts'],
  totalRows: number,
): Promise<PruneRunSpec> {
  const centroids = resolve(opts.centroids);
  const c = await centroidsInfo(centroids, undefined, '');
  const model = await resolveModel(opts.model);
  const images: ImageSpec = { model: resolve(opts.model), modelSha256: (await hashFile(model.onnxPath)).sha256, batchSize: opts.batchSize ?? 64, decode: opts.decode ?? {}, ...extra };
  const runId = await deriveRunId({ kind: 'run', params, centroidsSha256: c.sha256, ...(shards ? { shards } : {}), images });
  return { version: 1, kind: 'run', runId, images, centroids, centroidsSha256: c.sha256, params, backend: 'auto', batchRows: 4096, parts: parts(runId), totalRows, dim: c.dim, k: c.k };
}

/** Runs the phases of a run (skipping finished ones) and assembles the outputs. */
async function executeRun(
  spec: PruneRunSpec,
  source: EmbeddingSourcePlan | undefined,
  opts: CommonOptions,
  started: number,
  writeShards?: ShardOutputOptions,
  prepare?: (store: WorkStore) => Promise<void>,
): Promise<ClusterPruneResult & { runId: string; workDir: string }> {
  const format: ManifestFormat = opts.format ?? 'parquet';
  if (!['parquet', 'arrow', 'jsonl'].includes(format)) throw new UsageError(`format must be parquet, arrow or jsonl, got ${format}`, { option: 'format' });
  const { signal } = opts;
  const { runId } = spec;
  const store = openWorkStore(opts.workDir ?? joinLocation(opts.out, '.work'));
  await probeRedis(opts.connection);
  await prepare?.(store);
  if (!(await store.exists(layout.spec(runId)))) await store.write(layout.spec(runId), JSON.stringify(spec));
  opts.log?.(`dbprune cluster: run ${runId}, ${spec.parts.length} parts${spec.totalRows >= 0 ? `, ${spec.totalRows} rows` : ''}, work dir ${store.root}`);

  const queueName = opts.queue ?? DEFAULT_QUEUE;
  const clients: Clients = {
    queue: new Queue<ClusterJobData>(queueName, { connection: opts.connection }),
    flow: new FlowProducer({ connection: opts.connection }),
    events: new QueueEvents(queueName, { connection: opts.connection }),
  };
  // BullMQ's clients report connection trouble as 'error' events; the watchdog below decides.
  clients.queue.on('error', () => undefined);
  clients.flow.on('error', () => undefined);
  clients.events.on('error', () => undefined);
  const watchdog = watchRedis(opts.connection, opts.redisLostMs === undefined ? {} : { lostMs: opts.redisLostMs, everyMs: Math.min(5000, opts.redisLostMs / 3) });
  try {
    await Promise.race([clients.events.waitUntilReady(), watchdog.lost]);
    const timings: Record<string, number> = {};
    const phase = async (name: Phase, round: number | undefined, output: string, parts = spec.parts.length): Promise<void> => {
      const t0 = performance.now();
      await Promise.race([runPhase(clients, store, spec, { phase: name, round, output, parts }, opts, signal), watchdog.lost]);
      timings[`${phaseKey(name, round)}_s`] = (performance.now() - t0) / 1000;
    };
    if (spec.dedup) {
      await phase('map', undefined, layout.dedupPlan(runId));
      const tasks = (await readRunJson<DedupPlanFile>(store, layout.dedupPlan(runId))).tasks.length;
      await phase('dedup', undefined, layout.plan(runId), tasks);
    } else await phase('map', undefined, layout.plan(runId));
    const plan = await readRunJson<PlanFile>(store, layout.plan(runId));
    for (const [p, reason] of Object.entries(plan.failed)) opts.log?.(`dbprune cluster: part ${p} (${spec.parts[Number(p)].input}) failed for good, its rows become error rows: ${reason}`);
    for (let r = 1; r <= plan.rounds; r++) await phase('select', r, layout.selectState(runId, r));
    const finalState = plan.rounds === 0 ? plan.state : (await readRunJson<SelectFile>(store, layout.selectState(runId, plan.rounds))).state;
    await phase('decide', undefined, layout.decided(runId));
    const decided = await readRunJson<{ failed: Record<string, string> }>(store, layout.decided(runId));
    throwIfAborted(signal);
    const result = await assembleOutputs({
      store,
      spec,
      source,
      plan,
      thresholds: radixThresholds(finalState),
      decideFailed: decided.failed,
      out: opts.out,
      format,
      report: opts.report !== false,
      writeShards,
      started,
      timings: { map_s: timings.map_s ?? 0, ...timings },
      signal,
    });
    await store.sweepTemp(runId);
    return { ...result, runId, workDir: store.root };
  } finally {
    watchdog.stop();
    // close() waits for Redis; with Redis gone it would wait forever (and, holding no timer, let the
    // process exit silently with 0): give it 3 s.
    const giveUp = new AbortController();
    await Promise.race([Promise.allSettled([clients.events.close(), clients.flow.close(), clients.queue.close()]), sleep(3000, undefined, { signal: giveUp.signal }).catch(() => undefined)]);
    giveUp.abort();
  }
}

/**
 * Runs one phase as a flow (or finds it done / in progress) and waits for its merge job.
 * @throws ERR_DBPRUNE_CLUSTER_JOB when the merge fails for good.
 */
async function runPhase(c: Clients, store: WorkStore, spec: PruneRunSpec, what: { phase: Phase; round?: number; output: string; parts: number }, opts: CommonOptions, signal?: AbortSignal): Promise<void> {
  const { phase, round, output } = what;
  if (await store.exists(output)) return; // finished before (resume)
  const { runId } = spec;
  const parentId = mergeJobId(runId, phase, round);
  const label = phaseKey(phase, round);
  let job = await Job.fromId<ClusterJobData>(c.queue, parentId);
  if (job) {
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') {
      await job.remove({ removeChildren: true });
      job = undefined;
    }
  }
  const data = { workDir: store.root, runId, phase, round };
  if (!job) {
    const node = await c.flow.add({
      name: MERGE_JOB,
      queueName: c.queue.name,
      data,
      opts: { ...MERGE_JOB_OPTIONS, jobId: parentId },
      children: Array.from({ length: what.parts }, (_, part) => ({
        name: PART_JOB,
        queueName: c.queue.name,
        data: { ...data, part },
        opts: { ...PART_JOB_OPTIONS, jobId: partJobId(runId, phase, part, round), ignoreDependencyOnFailure: true },
      })),
    });
    job = node.job as Job<ClusterJobData>;
  }
  const progress = { phase: label, parts: 0, totalParts: what.parts, rows: 0, totalRows: phase === 'dedup' ? -1 : spec.totalRows, failures: 0 };
  const prefix = `${parentId}.`;
  const onCompleted = ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }): void => {
    if (!jobId.startsWith(prefix)) return;
    const r = (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as PartJobResult | null;
    progress.parts++;
    progress.rows += r?.rows ?? 0;
    opts.onProgress?.({ ...progress });
  };
  const onFailed = ({ jobId, failedReason }: { jobId: string; failedReason: string }): void => {
    if (jobId !== parentId && !jobId.startsWith(prefix)) return;
    progress.failures++;
    opts.log?.(`dbprune cluster: ${label} job ${jobId} failed: ${failedReason}`);
    opts.onProgress?.({ ...progress });
  };
  const onStalled = ({ jobId }: { jobId: string }): void => {
    if (jobId.startsWith(prefix)) opts.log?.(`dbprune cluster: ${label} job ${jobId} stalled (its worker stopped renewing the lock); re-queued`);
  };
  c.events.on('completed', onCompleted);
  c.events.on('failed', onFailed);
  c.events.on('stalled', onStalled);
  let fire = (): void => undefined;
  const aborted = new Promise<never>((_, reject) => {
    fire = () => reject(new DbpruneError(ErrorCodes.ABORTED, `aborted while waiting for ${label}; the same command resumes run ${runId}`));
    if (signal?.aborted) fire();
    signal?.addEventListener('abort', fire, { once: true });
  });
  aborted.catch(() => undefined);
  opts.onProgress?.({ ...progress });
  try {
    await Promise.race([job.waitUntilFinished(c.events), aborted]);
  } catch (e) {
    if (e instanceof DbpruneError) throw e;
    throw new DbpruneError(ErrorCodes.CLUSTER_JOB, `${label} of run ${runId} failed: ${(e as Error).message}`, { jobId: parentId, runId }, { cause: e });
  } finally {
    signal?.removeEventListener('abort', fire);
    c.events.off('completed', onCompleted);
    c.events.off('failed', onFailed);
    c.events.off('stalled', onStalled);
  }
  if (!(await store.exists(output))) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `${label} finished but ${store.root}/${output} is missing (is the work dir shared with every worker?)`, { runId });
}
