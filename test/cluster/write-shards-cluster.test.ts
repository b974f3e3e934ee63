/**
 * `run <shards> --cluster --write-shards DIR` against real components (redis-server, two workers,
 * the bundled model and shards): the written tars hold exactly the kept samples, in manifest order,
 * with the source shards' image bytes; the parquets hold every manifest row.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/io/manifest.js';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixture.js';
import { spawnWorker, startRedis, type CliProcess, type RedisHandle } from '../helpers/cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-cluster-shards-'));
const shards = join(dir, 'shards');
let redis: RedisHandle;
const workers: CliProcess[] = [];

/** Members of a tar: name → bytes, in tar order. */
async function tarMembers(bytes: Buffer): Promise<[string, Buffer][]> {
  const out: [string, Buffer][] = [];
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        out.push([h.name, Buffer.concat(chunks)]);
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(bytes);
  await done;
  return out;
}

const IMAGE = /\.(jpg|jpeg|png|webp)$/;

beforeAll(async () => {
  redis = await startRedis();
  mkdirSync(shards);
  for (const n of ['00000', '00001', '00002']) copyFileSync(join(repoRoot, 'data-samples', 'shards', `${n}.tar`), join(shards, `${n}.tar`));
  for (let i = 0; i < 2; i++) workers.push(spawnWorker(redis.url));
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('run <shards> --cluster --write-shards', () => {
  it('re-packs exactly the kept samples with their source bytes; every row in the parquets', async () => {
    const out = join(dir, 'out');
    const ws = join(dir, 'ws');
    const model = join(repoRoot, 'data-samples', 'model');
    const centroids = join(repoRoot, 'data-samples', 'centroids', 'centroids.npy');
    const r = await runCli(['run', shards, '--model', model, '--centroids', centroids, '--keep', '0.3', '--out', out, '--write-shards', ws, '--samples-per-shard', '7', '--cluster', redis.url, '--no-report', '-q'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const rows = readManifest(join(out, 'manifest.parquet'));
    const kept = rows.filter((x) => x.decision === 'keep');
    expect(kept.length).toBeGreaterThan(7);
    expect(readFileSync(join(out, 'kept.txt'), 'utf8').trim().split('\n')).toEqual(kept.map((x) => x.key));

    const source = new Map<string, Buffer>();
    for (const n of ['00000', '00001', '00002']) for (const [name, bytes] of await tarMembers(readFileSync(join(shards, `${n}.tar`)))) if (IMAGE.test(name)) source.set(name.replace(IMAGE, ''), bytes);
    const tars = readdirSync(ws).filter((f) => f.endsWith('.tar')).sort();
    expect(tars).toHaveLength(Math.ceil(kept.length / 7));
    const written: string[] = [];
    for (const t of tars) {
      for (const [name, bytes] of await tarMembers(readFileSync(join(ws, t)))) {
        if (!IMAGE.test(name)) continue;
        const key = name.replace(IMAGE, '');
        written.push(key);
        expect(bytes.equals(source.get(key) as Buffer), key).toBe(true);
      }
    }
    expect(written).toEqual(kept.map((x) => x.key));
    const parquetRows = readdirSync(ws)
      .filter((f) => f.endsWith('.parquet'))
      .reduce((n, f) => n + readManifestRows(join(ws, f)), 0);
    expect(parquetRows).toBe(rows.length); // rows in = rows out, dropped ones included
  }, 240_000);
});

function readManifestRows(path: string): number {
  return readManifest(path).length;
}
