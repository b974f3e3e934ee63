/**
 * `run <shards> --cluster` against real components (redis-server, two worker processes, one
 * SIGKILLed mid-job, the bundled ONNX model and shards plus one truncated shard): the decisions
 * equal embedding the shards on one machine (the shards-to-embeddings pipeline) followed by exact
 * `prune` of its output, and every sample that could not be embedded is an error row.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneExact } from '../../pipelines/exact-prune.js';
import { shardsToEmbeddings } from '../../pipelines/shards-to-embeddings.js';
import { readManifest } from '../../src/io/manifest.js';
import type { RunStats } from '../../src/io/stats.js';
import { repoRoot } from '../helpers/fixture.js';
import { spawnDbprune, spawnWorker, startRedis, type CliProcess, type RedisHandle } from '../helpers/cluster.js';

const readStats = (text: string): RunStats => JSON.parse(text) as RunStats;

const dir = mkdtempSync(join(tmpdir(), 'dbprune-cluster-run-'));
const shards = join(dir, 'shards');
const model = join(repoRoot, 'data-samples', 'model');
const centroids = join(repoRoot, 'data-samples', 'centroids', 'centroids.npy');
let redis: RedisHandle;
const workers: CliProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  mkdirSync(shards);
  for (const n of ['00000', '00001', '00002', '00003']) copyFileSync(join(repoRoot, 'data-samples', 'shards', `${n}.tar`), join(shards, `${n}.tar`));
  const broken = join(shards, '00004.tar');
  copyFileSync(join(repoRoot, 'data-samples', 'shards', '00004.tar'), broken);
  truncateSync(broken, Math.floor(statSync(broken).size / 3)); // samples up to the cut, then an untar error
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('run <shards> --cluster', () => {
  it('equals shards-to-embeddings + exact prune, with a worker SIGKILLed mid-job', async () => {
    const single = join(dir, 'single');
    const emb = await shardsToEmbeddings({ inputs: shards, model, out: join(single, 'emb') });
    expect(emb.errors).toBeGreaterThan(0);
    await pruneExact({ embeddings: emb.files.embeddings, keys: emb.files.keys, centroids, out: single, keepRatio: 0.3, report: false });

    workers.push(spawnWorker(redis.url, ['--lock-duration-ms', '1500', '--stalled-interval-ms', '500', '--job-delay-ms', '1500']));
    workers.push(spawnWorker(redis.url, ['--lock-duration-ms', '1500', '--stalled-interval-ms', '500']));
    const out = join(dir, 'cluster');
    const submit = spawnDbprune(['run', shards, '--model', model, '--centroids', centroids, '--keep', '0.3', '--out', out, '--cluster', redis.url, '--no-report']);
    await workers[0].waitFor(/start \w+ part \d+ of run/);
    workers[0].child.kill('SIGKILL');
    const exit = await submit.exited;
    expect(exit.code, submit.stderr()).toBe(0);
    expect(submit.stderr()).toMatch(/stalled/);

    expect(readFileSync(join(out, 'kept.txt'), 'utf8')).toBe(readFileSync(join(single, 'kept.txt'), 'utf8'));
    const a = readManifest(join(single, 'manifest.parquet'));
    const b = readManifest(join(out, 'manifest.parquet'));
    expect(b).toHaveLength(emb.samples); // rows in = rows out, error rows included
    const decided = b.filter((r) => !r.reason.startsWith('error:'));
    const pick = (r: (typeof a)[number]) => ({ key: r.key, decision: r.decision, reason: r.reason, cluster: r.cluster, distance: r.distance });
    expect(decided.map(pick)).toEqual(a.map(pick));
    expect(b.filter((r) => r.reason.startsWith('error:'))).toHaveLength(emb.errors);
    expect(decided.every((r) => r.shard?.endsWith('.tar') && r.url !== null)).toBe(true); // the shard's own row metadata
    const sa = readStats(readFileSync(join(single, 'stats.json'), 'utf8'));
    const sb = readStats(readFileSync(join(out, 'stats.json'), 'utf8'));
    expect(sb.clusters).toEqual(sa.clusters);
  }, 240_000);
});
