/**
 * Distributed SemDeDup (`prune --dedup-eps … --cluster`) against real components: redis-server on
 * 127.0.0.1, three `dbprune worker` processes, one SIGKILLed while it holds a dedup job. The
 * decisions must equal single-machine exact `prune --dedup-eps` on the same input to the sample:
 * the same rows removed as duplicates (with the same `duplicate_of` keys), the same DBP statistics
 * without them, the same kept set.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/io/manifest.js';
import type { RunStats } from '../../src/io/stats.js';
import { runCli } from '../helpers/cli.js';
import { spawnDbprune, spawnWorker, startRedis, writeClusteredParts, type CliProcess, type RedisHandle } from '../helpers/cluster.js';

/** stats.json as the writers type it (the dedup section: exact mode's figures). */
const readStats = (text: string): RunStats & { dedup?: Record<string, unknown> } => JSON.parse(text) as RunStats & { dedup?: Record<string, unknown> };

const dir = mkdtempSync(join(tmpdir(), 'dbprune-cluster-dedup-'));
let redis: RedisHandle;
let data: { folder: string; centroids: string; total: number };
const workers: CliProcess[] = [];
const FAST_STALL = ['--lock-duration-ms', '1500', '--stalled-interval-ms', '500'];
/** Small dedup jobs, so large clusters are split into slices and small ones packed. */
const TASK_PAIRS = ['--dedup-task-pairs', '40000'];

beforeAll(async () => {
  redis = await startRedis();
  data = await writeClusteredParts(dir, [1300, 900, 1700, 600, 1100]);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function expectSameOutputs(single: string, cluster: string): void {
  expect(readFileSync(join(cluster, 'kept.txt'), 'utf8')).toBe(readFileSync(join(single, 'kept.txt'), 'utf8'));
  const a = readManifest(join(single, 'manifest.parquet'));
  const b = readManifest(join(cluster, 'manifest.parquet'));
  expect(b.length).toBe(data.total); // rows in = rows out
  expect(b).toEqual(a);
  const sa = readStats(readFileSync(join(single, 'stats.json'), 'utf8'));
  const sb = readStats(readFileSync(join(cluster, 'stats.json'), 'utf8'));
  expect(sb.clusters).toEqual(sa.clusters);
  expect({ ...sb.totals, seconds: 0, samples_per_sec: 0 }).toEqual({ ...sa.totals, seconds: 0, samples_per_sec: 0 });
  expect(sb.params).toEqual(sa.params);
  // `passes`: exact mode's embedding passes; the cluster reports its dedup jobs there.
  expect({ ...sb.dedup, passes: 0 }).toEqual({ ...sa.dedup, passes: 0 });
}

describe('prune --dedup-eps --cluster (3 workers, one SIGKILLed in a dedup job)', () => {
  it('removes exactly the rows single-machine exact mode removes and keeps the same set', async () => {
    const args = ['prune', '--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.4', '--dedup-eps', '0.03,0.1'];
    const single = join(dir, 'single');
    const s = await runCli([...args, '--out', single, '-q']);
    expect(s.code, s.stderr).toBe(0);

    // Worker 0's part jobs sleep 1.5 s first, so the kill lands while it holds a dedup job's lock.
    for (let i = 0; i < 3; i++) workers.push(spawnWorker(redis.url, [...FAST_STALL, ...(i === 0 ? ['--job-delay-ms', '1500'] : [])]));
    const out = join(dir, 'cluster');
    const submit = spawnDbprune([...args, ...TASK_PAIRS, '--out', out, '--cluster', redis.url]);
    const started = await workers[0].waitFor(/start dedup part \d+ of run/, 120_000);
    workers[0].child.kill('SIGKILL');
    const [, task, runId] = /start dedup part (\d+) of run ([0-9a-f]+)/.exec(started) as RegExpExecArray;
    const exit = await submit.exited;
    expect(exit.code, submit.stderr()).toBe(0);
    expect(submit.stderr()).toMatch(new RegExp(`dedup job ${runId}\\.dedup\\.0*${task} stalled`));
    expectSameOutputs(single, out);

    const stats = readStats(readFileSync(join(out, 'stats.json'), 'utf8'));
    expect(stats.totals.duplicates).toBeGreaterThan(50); // SemDeDup did remove rows
    expect(stats.dedup?.passes).toBeGreaterThan(3); // in several dedup jobs
    const rows = readManifest(join(out, 'manifest.parquet'));
    expect(rows.filter((r) => r.reason === 'duplicate' && r.duplicate_of !== null)).toHaveLength(stats.totals.duplicates);
    const tmp = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.tmp'));
    expect(tmp).toEqual([]);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  }, 240_000);

  it('equals single-machine exact mode for --which random (one RNG over the clusters)', async () => {
    const args = ['prune', '--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.5', '--which', 'random', '--seed', '7', '--dedup-eps', '0.05'];
    const single = join(dir, 'single-random');
    const s = await runCli([...args, '--out', single, '-q']);
    expect(s.code, s.stderr).toBe(0);
    const out = join(dir, 'cluster-random');
    const c = await runCli([...args, ...TASK_PAIRS, '--out', out, '--cluster', redis.url, '-q'], { timeoutMs: 180_000 });
    expect(c.code, c.stderr).toBe(0);
    expectSameOutputs(single, out);
  }, 240_000);

  it('run --embeddings --cluster equals single-machine exact prune (with SemDeDup) on the same input', async () => {
    const common = ['--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.35', '--dedup-eps', '0.05'];
    const single = join(dir, 'single-run');
    const s = await runCli(['prune', ...common, '--out', single, '-q']);
    expect(s.code, s.stderr).toBe(0);
    const out = join(dir, 'cluster-run');
    const c = await runCli(['run', ...common, '--out', out, '--cluster', redis.url, '-q'], { timeoutMs: 180_000 });
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/kept/);
    expectSameOutputs(single, out);
  }, 240_000);

  it('run --cluster: --urls - (stdin), --write-shards with --embeddings and a missing --out are usage errors (exit 2), before any job', async () => {
    for (const extra of [['--urls', '-'], ['--embeddings', data.folder, '--write-shards', join(dir, 'ws')], ['--embeddings', data.folder]]) {
      const out = extra.length === 2 && extra[0] === '--embeddings' ? [] : ['--out', join(dir, 'never')];
      const r = await runCli(['run', ...extra, '--centroids', data.centroids, ...out, '--cluster', redis.url]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('ERR_DBPRUNE_USAGE');
    }
  }, 60_000);
});
