/**
 * Distributed exact prune against real components: Debian's redis-server (127.0.0.1, free port,
 * persistence off), three `dbprune worker` processes, one SIGKILLed in the middle of a map job.
 * The outputs must equal single-machine `prune` on the same input (identical kept sets, manifests,
 * uid subsets and per-cluster statistics), no temp file may remain, and the killed job must have
 * been re-run (its BullMQ stalled counter / attempts, and the submitter's stalled line).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterUrl } from '../../src/cluster/connection.js';
import { readManifest } from '../../src/io/manifest.js';
import type { RunStats } from '../../src/io/stats.js';
import { runCli } from '../helpers/cli.js';
import { spawnDbprune, spawnWorker, startRedis, writeClusteredParts, type CliProcess, type RedisHandle } from '../helpers/cluster.js';

const readStats = (text: string): RunStats => JSON.parse(text) as RunStats;

const dir = mkdtempSync(join(tmpdir(), 'dbprune-cluster-'));
let redis: RedisHandle;
let data: { folder: string; centroids: string; total: number };
const workers: CliProcess[] = [];
/** Short lock/stall timings so a killed worker's job is recovered within seconds. */
const FAST_STALL = ['--lock-duration-ms', '1500', '--stalled-interval-ms', '500'];

beforeAll(async () => {
  redis = await startRedis();
  data = await writeClusteredParts(dir, [1500, 900, 2100, 600, 1800, 1200, 1000, 1400]);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

function expectSameOutputs(single: string, cluster: string): void {
  expect(readFileSync(join(cluster, 'kept.txt'), 'utf8')).toBe(readFileSync(join(single, 'kept.txt'), 'utf8'));
  expect(readFileSync(join(cluster, 'kept_uids.npy')).equals(readFileSync(join(single, 'kept_uids.npy')))).toBe(true);
  const a = readManifest(join(single, 'manifest.parquet'));
  const b = readManifest(join(cluster, 'manifest.parquet'));
  expect(b.length).toBe(data.total); // rows in = rows out
  expect(b).toEqual(a);
  expect(b.filter((r) => r.reason === 'error:duplicate-key')).toHaveLength(1);
  const sa = readStats(readFileSync(join(single, 'stats.json'), 'utf8'));
  const sb = readStats(readFileSync(join(cluster, 'stats.json'), 'utf8'));
  expect(sb.clusters).toEqual(sa.clusters);
  expect({ ...sb.totals, seconds: 0, samples_per_sec: 0 }).toEqual({ ...sa.totals, seconds: 0, samples_per_sec: 0 });
  expect(existsSync(join(cluster, 'report.html'))).toBe(true);
}

describe('prune --cluster (3 workers, one SIGKILLed mid-job)', () => {
  it('equals single-machine prune exactly, leaves no temp files, and re-ran the killed job', async () => {
    const single = join(dir, 'single');
    const args = ['prune', '--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.3'];
    const s = await runCli([...args, '--out', single, '-q']);
    expect(s.code, s.stderr).toBe(0);

    // Worker 0's part jobs sleep 1.5 s before writing, so the kill lands while it holds a job's lock.
    for (let i = 0; i < 3; i++) workers.push(spawnWorker(redis.url, [...FAST_STALL, ...(i === 0 ? ['--job-delay-ms', '1500'] : [])]));
    const out = join(dir, 'cluster');
    const submit = spawnDbprune([...args, '--out', out, '--cluster', redis.url]);
    const started = await workers[0].waitFor(/start (map|select\d|decide) part \d+ of run/);
    workers[0].child.kill('SIGKILL');
    const [, phase, part, runId] = /start (\w+) part (\d+) of run ([0-9a-f]+)/.exec(started) as RegExpExecArray;
    const killedPart = Number(part);
    const exit = await submit.exited;
    expect(exit.code, submit.stderr()).toBe(0);
    expect(submit.stderr()).toMatch(new RegExp(`${phase} job ${runId}\\.${phase}\\.0*${killedPart} stalled`));
    expectSameOutputs(single, out);
    expect(filesUnder(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // BullMQ's own record of the killed job: started twice (once on the killed worker), stalled once.
    const queue = new Queue('dbprune', { connection: parseClusterUrl(redis.url) });
    try {
      const job = await Job.fromId(queue, `${runId}.${phase}.${String(killedPart).padStart(6, '0')}`);
      expect(job).toBeDefined();
      expect(job?.stalledCounter).toBeGreaterThanOrEqual(1);
      expect(job?.attemptsStarted).toBeGreaterThanOrEqual(2);
      expect(await job?.getState()).toBe('completed');
    } finally {
      await queue.close();
    }
    // The killed part ran to completion on a surviving worker, the killed one's included.
    const doneLines = workers.slice(1).flatMap((w) => w.stderr().split('\n').filter((l) => l.includes(`done ${phase} part ${killedPart} of run ${runId}`)));
    expect(doneLines.length).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it('equals single-machine prune for --which random (same workers)', async () => {
    for (const which of ['random']) {
      const args = ['prune', '--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.45', '--which', which, '--seed', '3'];
      const single = join(dir, `single-${which}`);
      const s = await runCli([...args, '--out', single, '-q']);
      expect(s.code, s.stderr).toBe(0);
      const out = join(dir, `cluster-${which}`);
      const c = await runCli([...args, '--out', out, '--cluster', redis.url, '-q'], { timeoutMs: 120_000 });
      expect(c.code, c.stderr).toBe(0);
      expectSameOutputs(single, out);
    }
  }, 180_000);

  it('a worker stops on SIGTERM after its current job and exits 0', async () => {
    const w = workers[1];
    await w.stop('SIGTERM');
    expect((await w.exited).code).toBe(0);
    expect(w.stderr()).toMatch(/stopping after the current job/);
  }, 60_000);
});
