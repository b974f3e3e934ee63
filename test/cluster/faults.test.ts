/**
 * Faults of the distributed mode against real redis-server and worker processes: Redis unreachable
 * (one ERR_DBPRUNE_CLUSTER_UNREACHABLE line, exit 1, fast), the submitter killed and restarted with
 * the same command after Redis itself lost every job (finished parts are not recomputed; outputs
 * equal single-machine), and a part that fails for good (its rows become error rows).
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/io/manifest.js';
import type { RunStats } from '../../src/io/stats.js';
import { runCli } from '../helpers/cli.js';
import { freePort, spawnDbprune, spawnWorker, startRedis, writeClusteredParts, type CliProcess, type RedisHandle } from '../helpers/cluster.js';

const readStats = (text: string): RunStats => JSON.parse(text) as RunStats;

const dir = mkdtempSync(join(tmpdir(), 'dbprune-cluster-faults-'));
const started: { stop: (s?: NodeJS.Signals) => Promise<void> }[] = [];
let data: { folder: string; centroids: string; total: number };

beforeAll(async () => {
  data = await writeClusteredParts(dir, [700, 500, 900, 400, 600]);
});

afterAll(async () => {
  for (const p of started.reverse()) await p.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function redisUp(): Promise<RedisHandle> {
  const r = await startRedis();
  started.push(r);
  return r;
}

function worker(url: string, extra: string[] = []): CliProcess {
  const w = spawnWorker(url, ['--lock-duration-ms', '3000', '--stalled-interval-ms', '1000', ...extra]);
  started.push(w);
  return w;
}

describe('distributed mode faults', () => {
  it('Redis unreachable: one ERR_DBPRUNE_CLUSTER_UNREACHABLE line and exit 1, quickly, for prune and worker', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const t0 = performance.now();
    const r = await runCli(['prune', '--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.3', '--out', join(dir, 'never'), '--cluster', url]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('ERR_DBPRUNE_CLUSTER_UNREACHABLE');
    const w = await runCli(['worker', '--cluster', url]);
    expect(w.code).toBe(1);
    expect(w.stderr).toContain('ERR_DBPRUNE_CLUSTER_UNREACHABLE');
    expect(performance.now() - t0).toBeLessThan(30_000);
    const bad = await runCli(['worker', '--cluster', 'http://127.0.0.1:1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('ERR_DBPRUNE_USAGE');
  }, 60_000);

  it('Redis lost while the submitter waits: ERR_DBPRUNE_CLUSTER_UNREACHABLE and exit 1, not a hang', async () => {
    const redis = await redisUp();
    const submit = spawnDbprune(['prune', '--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.3', '--out', join(dir, 'lost'), '--cluster', redis.url, '--redis-lost-ms', '3000']);
    started.push(submit);
    await submit.waitFor(/dbprune cluster map: 0\/5 parts/); // no worker: it waits for the map phase
    await redis.stop();
    const exit = await submit.exited;
    expect(exit.code).toBe(1);
    expect(submit.stderr()).toMatch(/lost Redis at redis:\/\/127\.0\.0\.1:\d+ .*\[ERR_DBPRUNE_CLUSTER_UNREACHABLE\]/);
    expect(submit.stderr()).not.toMatch(/\n\s+at /); // no stack trace
  }, 60_000);

  it('the submitter killed (and Redis emptied) resumes with the same command; finished parts are not recomputed', async () => {
    const args = ['prune', '--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.35'];
    const single = join(dir, 'single');
    const s = await runCli([...args, '--out', single, '-q']);
    expect(s.code, s.stderr).toBe(0);

    const redis1 = await redisUp();
    const w1 = worker(redis1.url, ['--job-delay-ms', '400']);
    const out = join(dir, 'resumed');
    const first = spawnDbprune([...args, '--out', out, '--cluster', redis1.url]);
    started.push(first);
    await w1.waitFor(/done map part 1 of run/, 90_000);
    first.child.kill('SIGKILL');
    await first.exited;
    await w1.stop('SIGKILL');
    await redis1.stop(); // persistence off: every job and flow is gone
    const doneBefore = [...w1.stderr().matchAll(/done map part (\d+) of run \w+ in [\d.]+ s$/gm)].map((m) => Number(m[1]));
    expect(doneBefore.length).toBeGreaterThanOrEqual(2);

    const redis2 = await redisUp();
    const w2 = worker(redis2.url);
    const again = await runCli([...args, '--out', out, '--cluster', redis2.url, '-q'], { timeoutMs: 120_000 });
    expect(again.code, again.stderr + w2.stderr()).toBe(0);
    for (const p of doneBefore) expect(w2.stderr()).toMatch(new RegExp(`done map part ${p} of run \\w+ in [\\d.]+ s \\(already done\\)`));
    expect(readFileSync(join(out, 'kept.txt'), 'utf8')).toBe(readFileSync(join(single, 'kept.txt'), 'utf8'));
    expect(readManifest(join(out, 'manifest.parquet'))).toEqual(readManifest(join(single, 'manifest.parquet')));
  }, 180_000);

  it('a part that fails for good becomes error:worker rows; every other row is decided', async () => {
    const redis = await redisUp();
    worker(redis.url);
    const part3 = join(data.folder, 'img_emb', 'img_emb_3.npy');
    truncateSync(part3, 128 + 16 * 4 * 10); // the header still says 400 rows: reading fails on every attempt
    const out = join(dir, 'failed-part');
    const r = await runCli(['prune', '--embeddings', data.folder, '--centroids', data.centroids, '--keep', '0.3', '--out', out, '--cluster', redis.url, '--format', 'jsonl'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/part 3 .* failed for good/);
    const rows = readManifest(join(out, 'manifest.jsonl'));
    expect(rows).toHaveLength(data.total); // rows in = rows out
    const errorRows = rows.filter((x) => x.reason === 'error:worker');
    expect(errorRows).toHaveLength(400);
    expect(errorRows.every((x) => x.shard === 'img_emb_3' && x.decision === 'drop' && /NPY_TRUNCATED|ends|truncated/i.test(x.error ?? ''))).toBe(true);
    const stats = readStats(readFileSync(join(out, 'stats.json'), 'utf8'));
    expect(stats.totals.errors['error:worker']).toBe(400);
    expect(stats.totals.kept).toBe(stats.totals.n_target);
  }, 180_000);
});
