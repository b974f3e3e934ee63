/**
 * DataComp shards (parquet + npz) read from s3:// through the real CLI against s3rver on loopback:
 * `fit --datacomp` and a filtering `prune --datacomp` give the same centroids, manifest,
 * kept_uids.npy and stats as the local run, and every read of a parquet or npz object is a ranged
 * GET (the footer, the row groups, the zip directory, the members), never a whole download.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest, type ManifestRecord } from '../../src/io/manifest.js';
import { NpzFile } from '../../src/io/npz.js';
import { readLocation, writeLocation } from '../../src/io/storage/index.js';
import { runCli } from '../helpers/cli.js';
import { dataCompDir } from '../helpers/datacomp.js';
import { startFaultProxy, startS3Server, type FaultProxy, type S3TestServer } from '../helpers/s3.js';

let srv: S3TestServer;
let proxy: FaultProxy;
let tmp: string;
/** Every GET the proxy forwarded: object key and Range header. */
const gets: { key: string; range: string | undefined }[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'dbprune-s3-datacomp-'));
  srv = await startS3Server(['bucket']);
  Object.assign(process.env, srv.env);
  for (const f of readdirSync(dataCompDir)) await writeLocation(`s3://bucket/datacomp/${f}`, readFileSync(join(dataCompDir, f)));
  proxy = await startFaultProxy(srv.endpoint, (req) => {
    if (req.method === 'GET') gets.push({ key: (req.url ?? '').split('?')[0], range: req.headers.range });
    return undefined;
  });
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await srv?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Rows with the shard column reduced to its file name, in key order. */
function comparable(rows: ManifestRecord[]): ManifestRecord[] {
  return rows.map((r) => ({ ...r, shard: r.shard === null ? null : r.shard.slice(r.shard.lastIndexOf('/') + 1) })).sort((a, b) => a.key.localeCompare(b.key));
}

describe('DataComp shards on s3:// (s3rver on loopback)', { timeout: 240_000 }, () => {
  it('reads an npz member from s3:// with the same rows as the local file', async () => {
    const local = await NpzFile.open(join(dataCompDir, '00000001.npz'));
    const remote = await NpzFile.open('s3://bucket/datacomp/00000001.npz');
    try {
      expect(remote.members()).toEqual(local.members());
      const all = async (npz: NpzFile): Promise<number[]> => {
        const out: number[] = [];
        for await (const b of npz.rows('b32_txt', { batchRows: 33 })) out.push(...b.data);
        return out;
      };
      const [l, r] = await Promise.all([all(local), all(remote)]);
      expect(r.length).toBeGreaterThan(0);
      expect(r).toEqual(l);
    } finally {
      local.close();
      remote.close();
    }
  });

  it('fit and a filtering prune from s3:// equal the local runs; every parquet/npz GET is ranged', async () => {
    const env = { ...srv.env, AWS_ENDPOINT_URL: proxy.endpoint };
    const fitArgs = (dc: string, out: string): string[] => ['fit', '--datacomp', dc, '-k', '8', '--out', out, '-q'];
    const fitRemote = await runCli(fitArgs('s3://bucket/datacomp/', join(tmp, 'fit-s3')), { env, timeoutMs: 120_000 });
    expect(fitRemote.code, fitRemote.stderr).toBe(0);
    const fitLocal = await runCli(fitArgs(dataCompDir, join(tmp, 'fit-local')), { timeoutMs: 120_000 });
    expect(fitLocal.code, fitLocal.stderr).toBe(0);
    expect(readFileSync(join(tmp, 'fit-s3', 'centroids.npy')).equals(readFileSync(join(tmp, 'fit-local', 'centroids.npy')))).toBe(true);

    const centroids = join(tmp, 'fit-local', 'centroids.npy');
    const pruneArgs = (dc: string, out: string): string[] => [
      'prune', '--datacomp', dc, '--centroids', centroids, '--target', '20', '--clip-score-top', '0.3', '--clip-score-from', 'b32',
      '--basic-filter', '--dedup-eps', '0.05', '--no-report', '--out', out, '--json', '-q',
    ];
    const remote = await runCli(pruneArgs('s3://bucket/datacomp/*.parquet', 's3://bucket/dc-out'), { env, timeoutMs: 120_000 });
    expect(remote.code, remote.stderr).toBe(0);
    const local = await runCli(pruneArgs(dataCompDir, join(tmp, 'dc-local')), { timeoutMs: 120_000 });
    expect(local.code, local.stderr).toBe(0);
    expect(JSON.parse(remote.stdout)).toMatchObject({ kept: 20, samples: 360 });

    const manifestPath = join(tmp, 'dc-remote.parquet');
    writeFileSync(manifestPath, await readLocation('s3://bucket/dc-out/manifest.parquet'));
    const remoteRows = readManifest(manifestPath);
    expect(remoteRows.length).toBe(360);
    expect(comparable(remoteRows)).toEqual(comparable(readManifest(join(tmp, 'dc-local', 'manifest.parquet'))));
    expect((await readLocation('s3://bucket/dc-out/kept_uids.npy')).equals(readFileSync(join(tmp, 'dc-local', 'kept_uids.npy')))).toBe(true);
    const stats = JSON.parse((await readLocation('s3://bucket/dc-out/stats.json')).toString()) as { clusters: unknown; filters: unknown };
    const localStats = JSON.parse(readFileSync(join(tmp, 'dc-local', 'stats.json'), 'utf8')) as typeof stats;
    expect(stats.clusters).toEqual(localStats.clusters);
    expect(stats.filters).toEqual(localStats.filters);

    const dataGets = gets.filter((g) => /\.(npz|parquet)$/.test(g.key));
    expect(dataGets.length).toBeGreaterThan(10);
    expect(dataGets.filter((g) => g.range === undefined)).toEqual([]);
  });

  it('a shard without its npz, or a truncated npz, on s3:// → one ERR_DBPRUNE_* line naming the object, exit 1', async () => {
    await writeLocation('s3://bucket/dc-lonely/00000000.parquet', readFileSync(join(dataCompDir, '00000000.parquet')));
    await writeLocation('s3://bucket/dc-cut/00000000.parquet', readFileSync(join(dataCompDir, '00000000.parquet')));
    await writeLocation('s3://bucket/dc-cut/00000000.npz', readFileSync(join(dataCompDir, '00000000.npz')).subarray(0, 1000));
    const args = (dc: string): string[] => ['prune', '--datacomp', dc, '--centroids', join(tmp, 'not-read.npy'), '--keep', '0.3', '--out', join(tmp, 'never')];
    const lonely = await runCli(args('s3://bucket/dc-lonely/'), { env: srv.env });
    expect(lonely.code).toBe(1);
    expect(lonely.stderr.trim()).toMatch(/^dbprune: DataComp shard 00000000 in s3:\/\/bucket\/dc-lonely has no npz file \(s3:\/\/bucket\/dc-lonely\/00000000\.npz\) \[ERR_DBPRUNE_INPUT_NOT_FOUND\]$/);
    const cut = await runCli(args('s3://bucket/dc-cut/'), { env: srv.env });
    expect(cut.code).toBe(1);
    expect(cut.stderr.trim()).toMatch(/^dbprune: s3:\/\/bucket\/dc-cut\/00000000\.npz: not a readable \.npz \(zip\) file.*\[ERR_DBPRUNE_NPY_FORMAT\]$/);
  });
});
