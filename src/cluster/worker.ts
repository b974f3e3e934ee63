/**
 * `dbprune worker`: a long-running BullMQ worker that takes the jobs of any distributed run until
 * its signal fires (SIGTERM/SIGINT), then finishes the jobs it holds and returns. Runs, planned
 * sources and ORT sessions are cached per process (see run-context.ts).
 *
 * Faults: a worker killed mid-job stops renewing its job's lock; after `lockDurationMs` another
 * worker's stalled check (every `stalledIntervalMs`) puts the job back in the queue and it runs
 * again from the start. Part outputs are written atomically and are identical on every run, so the
 * duplicate is harmless.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker, type Job } from 'bullmq';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { integerOption, signalOption } from '../core/validate.js';
import { DEFAULT_STALL, describeConnection, probeRedis, type RedisConnection, type StallSettings } from './connection.js';
import { decidePart } from './decide-job.js';
import { dedupTask, mergeDedup, planDedup } from './dedup-job.js';
import { MERGE_JOB, PART_JOB, partOfJobId, phaseKey, type ClusterJobData, type PartJobResult } from './jobs.js';
import { mapPart, readMapSummary } from './map-job.js';
import { mapShardPart } from './map-shard-job.js';
import { WorkerCaches, type RunContext } from './run-context.js';
import { layout, readPartFiles } from './run-spec.js';
import { mergeMap, mergeSelect, selectPart } from './select-job.js';

export interface ClusterWorkerOptions {
  connection: RedisConnection;
  queue: string;
  /** Jobs run at once in this process (default 1). */
  concurrency?: number;
  /** ORT intra-op threads per nearest-centroid index (default min(2, cpus)). */
  threads?: number;
  stall?: Partial<StallSettings>;
  /** Test hook: each part job sleeps this long before writing (so a test can kill it mid-job). */
  jobDelayMs?: number;
  signal: AbortSignal;
  /** One line per job event (stderr); undefined = quiet. */
  log?: (line: string) => void;
}

/** Runs a worker until `signal` fires and its current jobs are done. */
export async function runClusterWorker(opts: ClusterWorkerOptions): Promise<{ jobs: number }> {
  const concurrency = integerOption(opts.concurrency, 'concurrency', { default: 1, min: 1, max: 64 });
  const threads = opts.threads === undefined ? undefined : integerOption(opts.threads, 'threads', { min: 1, max: 256 });
  const stall: StallSettings = {
    lockDurationMs: integerOption(opts.stall?.lockDurationMs, 'lockDurationMs', { default: DEFAULT_STALL.lockDurationMs, min: 100 }),
    stalledIntervalMs: integerOption(opts.stall?.stalledIntervalMs, 'stalledIntervalMs', { default: DEFAULT_STALL.stalledIntervalMs, min: 100 }),
    maxStalledCount: integerOption(opts.stall?.maxStalledCount, 'maxStalledCount', { default: DEFAULT_STALL.maxStalledCount, min: 1 }),
  };
  const jobDelayMs = integerOption(opts.jobDelayMs, 'jobDelayMs', { default: 0, min: 0 });
  signalOption(opts.signal);
  await probeRedis(opts.connection);
  const caches = new WorkerCaches(threads);
  const name = `${hostname()}:${process.pid}`;
  const log = opts.log ?? (() => undefined);
  let jobs = 0;
  const processor = async (job: Job<ClusterJobData>): Promise<PartJobResult | { merged: string }> => {
    const started = performance.now();
    const d = job.data;
    const ctx = await caches.run(d.workDir, d.runId);
    const what = `${phaseKey(d.phase, d.round)} ${job.name === PART_JOB ? `part ${d.part}` : 'merge'} of run ${d.runId}`;
    log(`dbprune worker ${name}: start ${what} (attempt ${job.attemptsStarted})`);
    if (job.name === MERGE_JOB) {
      await runMerge(ctx, job);
      jobs++;
      log(`dbprune worker ${name}: done ${what} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
      return { merged: phaseKey(d.phase, d.round) };
    }
    if (job.name !== PART_JOB || d.part === undefined) throw new DbpruneError(ErrorCodes.CLUSTER_JOB, `unknown job ${job.name} (${job.id})`, { jobId: job.id });
    if (jobDelayMs > 0) await sleep(jobDelayMs);
    const { computed, rows } = await runPart(ctx, d.phase, d.part, d.round ?? 0);
    jobs++;
    const ms = performance.now() - started;
    log(`dbprune worker ${name}: done ${what} in ${(ms / 1000).toFixed(2)} s${computed ? '' : ' (already done)'}`);
    return { part: d.part, rows, computed, ms };
  };
  const worker = new Worker<ClusterJobData>(opts.queue, processor, {
    connection: opts.connection,
    concurrency,
    lockDuration: stall.lockDurationMs,
    stalledInterval: stall.stalledIntervalMs,
    maxStalledCount: stall.maxStalledCount,
    name,
    autorun: false,
  });
  worker.on('failed', (job, err) => log(`dbprune worker ${name}: failed ${job?.id ?? '?'}: ${err.message}`));
  worker.on('error', (err) => log(`dbprune worker ${name}: ${err.message}`));
  const stop = (): void => {
    log(`dbprune worker ${name}: stopping after the current job(s)`);
    void worker.close();
  };
  if (opts.signal.aborted) stop();
  else opts.signal.addEventListener('abort', stop, { once: true });
  log(`dbprune worker ${name}: taking jobs from ${describeConnection(opts.connection)} queue ${opts.queue} (concurrency ${concurrency})`);
  try {
    await worker.run();
  } finally {
    opts.signal.removeEventListener('abort', stop);
    await worker.close();
    await caches.dispose();
  }
  return { jobs };
}

/** Runs one part job; `rows`: the samples of the part (a dedup task: the items it scored), for progress. */
async function runPart(ctx: RunContext, phase: ClusterJobData['phase'], part: number, round: number): Promise<{ computed: boolean; rows: number }> {
  const partRows = async (): Promise<number> => (ctx.spec.parts[part].rows >= 0 ? ctx.spec.parts[part].rows : ((await readMapSummary(ctx, part))?.rows ?? 0));
  switch (phase) {
    case 'map': {
      const computed = ctx.spec.kind === 'run' ? await mapShardPart(ctx, part) : await mapPart(ctx, part);
      return { computed, rows: await partRows() };
    }
    case 'dedup': {
      const { computed, items } = await dedupTask(ctx, part);
      return { computed, rows: items };
    }
    case 'select':
      await selectPart(ctx, round, part);
      return { computed: true, rows: await partRows() };
    case 'decide':
      return { computed: await decidePart(ctx, part), rows: await partRows() };
  }
}

async function runMerge(ctx: RunContext, job: Job<ClusterJobData>): Promise<void> {
  const d = job.data;
  const failures = new Map<number, string>();
  for (const [key, reason] of Object.entries(await job.getIgnoredChildrenFailures())) {
    const p = partOfJobId(key);
    if (p !== undefined) failures.set(p, reason);
  }
  switch (d.phase) {
    case 'map':
      if (ctx.spec.dedup) await planDedup(ctx, failures);
      else await mergeMap(ctx, failures);
      return;
    case 'dedup':
      await mergeDedup(ctx, failures);
      return;
    case 'select':
      if (failures.size > 0) {
        const [p, reason] = [...failures][0];
        throw new DbpruneError(ErrorCodes.CLUSTER_JOB, `select round ${d.round} failed for part ${p}: ${reason}`, { part: p, runId: d.runId });
      }
      await mergeSelect(ctx, d.round ?? 1);
      return;
    case 'decide': {
      const failed: Record<number, string> = {};
      for (let p = 0; p < ctx.spec.parts.length; p++) {
        if (!(await readPartFiles(ctx.store, layout.decideDone(d.runId, p), []))) failed[p] = failures.get(p) ?? 'the decide job left no output';
      }
      await ctx.store.write(layout.decided(d.runId), JSON.stringify({ failed }));
    }
  }
}
