/**
 * `dbprune fit --out s3://` (issue #17) against a real S3 server (s3rver on loopback): the objects
 * equal a local fit's files byte for byte, `run` finds the calibration beside s3:// centroids, a
 * second fit replaces both objects, and a missing bucket fails with one coded line.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { writeNpy } from '../../src/io/npy.js';
import { readLocation } from '../../src/io/storage/index.js';
import { readManifest } from '../../src/io/manifest.js';
import { runCli } from '../helpers/cli.js';
import { startS3Server, type S3TestServer } from '../helpers/s3.js';
import { unitRows } from '../helpers/vectors.js';

const dim = 16;
let srv: S3TestServer;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'dbprune-fit-s3-'));
  srv = await startS3Server(['bucket']);
  Object.assign(process.env, srv.env);
  await writeNpy(join(tmp, 'emb.npy'), unitRows(new Rng(5), 3000, dim), [3000, dim]);
}, 60_000);

afterAll(async () => {
  await srv?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('fit --out s3://', { timeout: 180_000 }, () => {
  const fitArgs = (out: string, seed = '3'): string[] => ['fit', '--embeddings', join(tmp, 'emb.npy'), '-k', '6', '--sample', '2000', '--seed', seed, '-q', '--out', out];

  it('writes centroids.npy and calibration.json equal to a local fit, and run reads the calibration beside them', async () => {
    const local = await runCli(fitArgs(join(tmp, 'fit-local')), { env: srv.env });
    expect(local.code, local.stderr).toBe(0);
    const remote = await runCli(fitArgs('s3://bucket/fit'), { env: srv.env });
    expect(remote.stderr).toBe('');
    expect(remote.code).toBe(0);
    const result = JSON.parse(remote.stdout) as { k: number; centroidsPath: string; calibrationPath: string };
    expect(result).toMatchObject({ k: 6, centroidsPath: 's3://bucket/fit/centroids.npy', calibrationPath: 's3://bucket/fit/calibration.json' });
    expect((await readLocation('s3://bucket/fit/centroids.npy')).equals(readFileSync(join(tmp, 'fit-local', 'centroids.npy')))).toBe(true);
    expect((await readLocation('s3://bucket/fit/calibration.json')).equals(readFileSync(join(tmp, 'fit-local', 'calibration.json')))).toBe(true);

    // Streaming with the s3:// centroids: calibrated (no cold-start warning), same decisions as with the local copy.
    const run = (centroids: string, out: string) => runCli(['run', '--embeddings', join(tmp, 'emb.npy'), '--centroids', centroids, '--keep', '0.4', '--format', 'jsonl', '--no-report', '--out', out], { env: srv.env });
    const viaS3 = await run('s3://bucket/fit/centroids.npy', join(tmp, 'run-s3'));
    expect(viaS3.code, viaS3.stderr).toBe(0);
    expect(viaS3.stderr).not.toMatch(/start cold/);
    const viaLocal = await run(join(tmp, 'fit-local', 'centroids.npy'), join(tmp, 'run-local'));
    expect(viaLocal.code, viaLocal.stderr).toBe(0);
    const decisions = (dir: string) => readManifest(join(tmp, dir, 'manifest.jsonl')).map((r) => `${r.key} ${r.decision} ${r.cluster}`);
    expect(decisions('run-s3')).toEqual(decisions('run-local'));
    expect(decisions('run-s3').length).toBe(3000);
  });

  it('a second fit replaces both objects; calibrating given s3:// centroids in place writes only the calibration', async () => {
    const before = await readLocation('s3://bucket/fit/centroids.npy');
    const again = await runCli(fitArgs('s3://bucket/fit', '11'), { env: srv.env });
    expect(again.code, again.stderr).toBe(0);
    const after = await readLocation('s3://bucket/fit/centroids.npy');
    expect(after.equals(before)).toBe(false);
    const cal = JSON.parse((await readLocation('s3://bucket/fit/calibration.json')).toString('utf8')) as { seed: number; centroidsSha256: string };
    expect(cal.seed).toBe(11);
    const inPlace = await runCli(['fit', '--embeddings', join(tmp, 'emb.npy'), '--centroids', 's3://bucket/fit/centroids.npy', '--sample', '2000', '-q', '--out', 's3://bucket/fit'], { env: srv.env });
    expect(inPlace.code, inPlace.stderr).toBe(0);
    expect((await readLocation('s3://bucket/fit/centroids.npy')).equals(after)).toBe(true);
    const recal = JSON.parse((await readLocation('s3://bucket/fit/calibration.json')).toString('utf8')) as { seed: number; centroidsSha256: string };
    expect(recal.centroidsSha256).toBe(cal.centroidsSha256);
  });

  it('a missing bucket: exit 1, one ERR_DBPRUNE_STORAGE line naming the output prefix, no stack', async () => {
    const r = await runCli(fitArgs('s3://no-such-bucket/fit'), { env: srv.env });
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe('dbprune: s3://no-such-bucket/fit/: bucket no-such-bucket does not exist [ERR_DBPRUNE_STORAGE]'); // checked before anything is written
  });
});
