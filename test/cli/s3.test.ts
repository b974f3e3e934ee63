/**
 * s3:// in and out through the real CLI against a real S3 server on loopback (s3rver in a child
 * process, path-style on 127.0.0.1): the bundled shards run from s3:// to s3:// equals the local
 * run; a listing over 1,000 objects pages; a multipart output of several parts appears whole and
 * only at the end; a connection reset mid-upload leaves no object and exits 1; a missing bucket,
 * a missing object and rejected credentials fail with ERR_DBPRUNE_* codes naming the URI; a
 * clip-retrieval folder, metadata parquet and URL lists read from s3:// like local ones.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { expandInputs } from '../../src/io/glob.js';
import { createManifestWriter, readManifest, type ManifestRecord } from '../../src/io/manifest.js';
import { openMetadata, readMetadataBatches } from '../../src/io/metadata.js';
import { writeNpy } from '../../src/io/npy.js';
import { OutputSet } from '../../src/io/output-set.js';
import { readTarSamples } from '../../src/io/tar.js';
import { urlListBatches } from '../../src/io/url-list.js';
import { listLocation, openWrite, readLocation, statLocation, writeLocation } from '../../src/io/storage/index.js';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixture.js';
import { s3Env, startFaultProxy, startS3Server, type S3TestServer } from '../helpers/s3.js';
import { unitRows } from '../helpers/vectors.js';

const samples = join(repoRoot, 'data-samples');
const BIG_ROWS = 60_000;
let srv: S3TestServer;
let tmp: string;

/** Rows with the shard column reduced to its file name (local path vs s3:// URI), sorted by shard/key. */
function comparable(rows: ManifestRecord[]): ManifestRecord[] {
  return rows
    .map((r) => ({ ...r, shard: r.shard === null ? null : r.shard.slice(r.shard.lastIndexOf('/') + 1) }))
    .sort((a, b) => `${a.shard}/${a.key}`.localeCompare(`${b.shard}/${b.key}`));
}

async function download(uri: string, name: string): Promise<string> {
  const p = join(tmp, name);
  writeFileSync(p, await readLocation(uri));
  return p;
}

async function upload(localPath: string, uri: string): Promise<void> {
  await writeLocation(uri, readFileSync(localPath));
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'dbprune-s3-cli-'));
  srv = await startS3Server(['bucket']);
  Object.assign(process.env, srv.env);
  for (const f of readdirSync(join(samples, 'shards'))) await upload(join(samples, 'shards', f), `s3://bucket/shards/${f}`);
  await upload(join(samples, 'centroids', 'centroids.npy'), 's3://bucket/centroids/centroids.npy');
  await upload(join(samples, 'centroids', 'calibration.json'), 's3://bucket/centroids/calibration.json');
  await upload(join(samples, 'model', 'preprocessor_config.json'), 's3://bucket/model/preprocessor_config.json');
  for (const f of readdirSync(join(samples, 'model', 'onnx'))) await upload(join(samples, 'model', 'onnx', f), `s3://bucket/model/onnx/${f}`);
  // Inputs of the multipart, fault and error cases: long keys make the JSONL manifest ~12 MB, more
  // than one 8 MiB part.
  const rng = new Rng(7);
  await writeNpy(join(tmp, 'emb.npy'), unitRows(rng, BIG_ROWS, 16), [BIG_ROWS, 16]);
  await writeNpy(join(tmp, 'cent.npy'), unitRows(rng, 8, 16), [8, 16]);
  writeFileSync(join(tmp, 'keys.txt'), Array.from({ length: BIG_ROWS }, (_, i) => `sample-${String(i).padStart(8, '0')}-${'x'.repeat(120)}`).join('\n') + '\n');
  for (const f of ['emb.npy', 'cent.npy', 'keys.txt']) await upload(join(tmp, f), `s3://bucket/big-in/${f}`);
}, 180_000);

afterAll(async () => {
  await srv?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('s3:// through the CLI (s3rver on loopback)', { timeout: 240_000 }, () => {
  it('runs the bundled shards from s3:// to s3:// with the same manifest, kept set and shards as the local run', async () => {
    const localOut = join(tmp, 'local-out');
    const local = await runCli(['run', join(samples, 'shards', '{00000..00005}.tar'), '--out', localOut, '--write-shards', join(tmp, 'local-pruned'), '-q'], { timeoutMs: 120_000 });
    expect(local.code, local.stderr).toBe(0);
    const remote = await runCli(
      [
        'run',
        's3://bucket/shards/{00000..00005}.tar',
        '--model',
        's3://bucket/model',
        '--centroids',
        's3://bucket/centroids/centroids.npy',
        '--out',
        's3://bucket/out/',
        '--write-shards',
        's3://bucket/pruned/',
        '-q',
      ],
      { env: srv.env, timeoutMs: 120_000 },
    );
    expect(remote.code, remote.stderr).toBe(0);
    expect(remote.stderr).not.toMatch(/calibration/); // found beside the s3:// centroids

    const localRows = readManifest(join(localOut, 'manifest.parquet'));
    const remoteRows = readManifest(await download('s3://bucket/out/manifest.parquet', 'remote-manifest.parquet'));
    expect(localRows.length).toBe(1200);
    expect(comparable(remoteRows)).toEqual(comparable(localRows));
    expect((await readLocation('s3://bucket/out/kept.txt')).toString()).toBe(readFileSync(join(localOut, 'kept.txt'), 'utf8'));
    const stats = JSON.parse((await readLocation('s3://bucket/out/stats.json')).toString()) as { clusters: unknown };
    const localStats = JSON.parse(readFileSync(join(localOut, 'stats.json'), 'utf8')) as { clusters: unknown };
    expect(stats.clusters).toEqual(localStats.clusters);
    expect((await statLocation('s3://bucket/out/report.html'))?.kind).toBe('file');
    const localTars = readdirSync(join(tmp, 'local-pruned')).filter((f) => f.endsWith('.tar')).sort();
    const remoteTars: string[] = [];
    for await (const e of listLocation('s3://bucket/pruned/')) if (e.location.endsWith('.tar')) remoteTars.push(e.location.slice('s3://bucket/pruned/'.length));
    expect(remoteTars.sort()).toEqual(localTars);
    // Tar headers carry the write time, so compare members: same keys, same image bytes.
    const members = async (bytes: Buffer): Promise<string[]> => {
      const out: string[] = [];
      for await (const s of readTarSamples(Readable.from([bytes]))) out.push(`${s.key}:${createHash('sha256').update(s.image ?? new Uint8Array()).digest('hex')}`);
      return out;
    };
    for (const t of localTars) {
      expect(await members(await readLocation(`s3://bucket/pruned/${t}`))).toEqual(await members(readFileSync(join(tmp, 'local-pruned', t))));
    }
  });

  it('takes a prefix as a folder of shards and reads metadata parquet with ranged reads', async () => {
    const shards = await expandInputs('s3://bucket/shards/*.tar');
    expect(shards).toEqual([0, 1, 2, 3, 4, 5].map((i) => `s3://bucket/shards/0000${i}.tar`));
    const local = await openMetadata(join(samples, 'shards', '00003.parquet'));
    const remote = await openMetadata('s3://bucket/shards/00003.parquet');
    expect(remote.rows).toBe(local.rows);
    const all = async (m: typeof local): Promise<unknown[]> => {
      const out: unknown[] = [];
      for await (const b of readMetadataBatches(m, { batchRows: 50 })) out.push(...b.map((r) => ({ ...r, shard: undefined })));
      return out;
    };
    expect(await all(remote)).toEqual(await all(local));
  });

  it('prunes a clip-retrieval folder (img_emb/*.npy + metadata/*.parquet) on s3:// like the local one, kept_uids.npy included', async () => {
    const dir = join(tmp, 'clip');
    const dim = 64; // the bundled centroids' dimension
    for (const part of [0, 1]) {
      const n = 700 + part * 300;
      mkdirSync(join(dir, 'img_emb'), { recursive: true });
      mkdirSync(join(dir, 'metadata'), { recursive: true });
      await writeNpy(join(dir, 'img_emb', `img_emb_${part}.npy`), unitRows(new Rng(part + 1), n, dim), [n, dim]);
      const w = createManifestWriter(join(dir, 'metadata', `metadata_${part}.parquet`), 'parquet', { rowGroupRows: 256 });
      await w.write(
        Array.from({ length: n }, (_, i) => ({
          key: `${part}-${i}`,
          shard: null,
          url: `https://example.com/${part}/${i}.jpg`,
          caption: `caption ${i}`,
          uid: createHash('md5').update(`${part}-${i}`).digest('hex'),
          decision: 'keep' as const,
          reason: 'dbp' as const,
          cluster: 0,
          distance: 0,
          duplicate_of: null,
          error: null,
        })),
      );
      await w.close();
    }
    for (const sub of ['img_emb', 'metadata']) {
      for (const f of readdirSync(join(dir, sub))) await upload(join(dir, sub, f), `s3://bucket/clip/${sub}/${f}`);
    }
    const args = (emb: string, out: string): string[] => ['prune', '--embeddings', emb, '--centroids', 's3://bucket/centroids/centroids.npy', '--keep', '0.3', '--no-report', '-q', '--out', out];
    const remote = await runCli(args('s3://bucket/clip', 's3://bucket/clip-out'), { env: srv.env });
    expect(remote.code, remote.stderr).toBe(0);
    const local = await runCli(args(dir, join(tmp, 'clip-out')), { env: srv.env });
    expect(local.code, local.stderr).toBe(0);
    const rows = readManifest(await download('s3://bucket/clip-out/manifest.parquet', 'clip-manifest.parquet'));
    expect(rows.length).toBe(1700);
    expect(comparable(rows)).toEqual(comparable(readManifest(join(tmp, 'clip-out', 'manifest.parquet'))));
    const uids = await readLocation('s3://bucket/clip-out/kept_uids.npy');
    expect(uids.equals(readFileSync(join(tmp, 'clip-out', 'kept_uids.npy')))).toBe(true);
  });

  it('reads URL lists (a folder of csv.gz + parquet) from an s3:// prefix as from a local folder', async () => {
    const dir = join(tmp, 'lists');
    mkdirSync(dir, { recursive: true });
    const csv = ['url,caption', ...Array.from({ length: 300 }, (_, i) => `https://example.com/${i}.jpg,"a, caption ${i}"`)].join('\n') + '\n';
    writeFileSync(join(dir, 'part-0.csv.gz'), gzipSync(csv));
    writeFileSync(join(dir, 'part-1.parquet'), readFileSync(join(samples, 'shards', '00001.parquet')));
    for (const f of readdirSync(dir)) await upload(join(dir, f), `s3://bucket/lists/${f}`);
    const all = async (input: string): Promise<unknown[]> => {
      const out: unknown[] = [];
      for await (const b of urlListBatches({ input, batchRows: 64 })) out.push(...b);
      return out;
    };
    const local = await all(dir);
    expect(local.length).toBe(500);
    expect(await all('s3://bucket/lists/')).toEqual(local);
  });

  it('pages through a prefix of more than 1,000 objects (ListObjectsV2 continuation)', async () => {
    const names = Array.from({ length: 1_050 }, (_, i) => `s3://bucket/many/item-${i}.txt`);
    for (let i = 0; i < names.length; i += 25) await Promise.all(names.slice(i, i + 25).map((n) => writeLocation(n, n)));
    const found = await expandInputs('s3://bucket/many/item-*.txt');
    expect(found.length).toBe(1_050);
    expect(found.slice(0, 3)).toEqual(['s3://bucket/many/item-0.txt', 's3://bucket/many/item-1.txt', 's3://bucket/many/item-2.txt']);
    expect(found[1_049]).toBe('s3://bucket/many/item-1049.txt');
  });

  it('an output set on s3:// deletes stale objects at commit, and its abort aborts the uploads still open', async () => {
    await writeLocation('s3://bucket/set/manifest.jsonl', 'from an earlier run');
    const set = new OutputSet();
    set.replaces('s3://bucket/set/manifest.jsonl');
    await set.writeFile('s3://bucket/set/stats.json', '{}');
    await set.commit();
    expect(await statLocation('s3://bucket/set/manifest.jsonl')).toBeUndefined();
    expect((await readLocation('s3://bucket/set/stats.json')).toString()).toBe('{}');

    const failing = new OutputSet();
    const out = await openWrite(failing.file('s3://bucket/set/manifest.parquet'));
    out.stream.write(Buffer.alloc(6 << 20, 1)); // more than one part: a multipart upload is under way
    await new Promise((r) => setTimeout(r, 500));
    await failing.abort();
    expect(await statLocation('s3://bucket/set/manifest.parquet')).toBeUndefined();
    await out.commit(); // a no-op after the abort
    expect(await statLocation('s3://bucket/set/manifest.parquet')).toBeUndefined();
  });

  it('uploads an output larger than one part in parts; nothing is under the name before commit', async () => {
    const out = await openWrite('s3://bucket/big/blob.bin');
    const part = Buffer.alloc(1 << 20);
    const h = createHash('sha256');
    for (let i = 0; i < 13; i++) {
      part.fill(i);
      h.update(part);
      if (!out.stream.write(Buffer.from(part))) await new Promise((r) => out.stream.once('drain', r));
    }
    await new Promise<void>((r) => out.stream.end(() => r()));
    expect(await statLocation('s3://bucket/big/blob.bin')).toBeUndefined();
    await out.commit();
    const back = await readLocation('s3://bucket/big/blob.bin');
    expect(back.length).toBe(13 << 20);
    expect(createHash('sha256').update(back).digest('hex')).toBe(h.digest('hex'));
  });
});

describe('multipart outputs from the CLI, and a server fault mid-upload', { timeout: 240_000 }, () => {
  const pruneArgs = (out: string): string[] => [
    'prune',
    '--embeddings',
    's3://bucket/big-in/emb.npy',
    '--keys',
    's3://bucket/big-in/keys.txt',
    '--centroids',
    's3://bucket/big-in/cent.npy',
    '--keep',
    '0.3',
    '--format',
    'jsonl',
    '--no-report',
    '-q',
    '--out',
    out,
  ];

  it('writes a manifest of several parts to s3:// equal to the local one', async () => {
    const remote = await runCli(pruneArgs('s3://bucket/big-out'), { env: srv.env, timeoutMs: 120_000 });
    expect(remote.code, remote.stderr).toBe(0);
    const local = await runCli(pruneArgs(join(tmp, 'big-local')).map((a) => a.replace('s3://bucket/big-in', tmp)), { timeoutMs: 120_000 });
    expect(local.code, local.stderr).toBe(0);
    const manifest = await readLocation('s3://bucket/big-out/manifest.jsonl');
    expect(manifest.length).toBeGreaterThan(8 << 20);
    expect(manifest.equals(readFileSync(join(tmp, 'big-local', 'manifest.jsonl')))).toBe(true);
    expect((await readLocation('s3://bucket/big-out/kept.txt')).equals(readFileSync(join(tmp, 'big-local', 'kept.txt')))).toBe(true);
  });

  it('fit reads embeddings and given centroids from s3:// and writes to an s3:// --out as to a local one', async () => {
    const out = join(tmp, 'fit-out');
    const ok = await runCli(['fit', '--embeddings', 's3://bucket/big-in/emb.npy', '--centroids', 's3://bucket/big-in/cent.npy', '--sample', '5000', '-q', '--out', out], { env: srv.env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(out, 'centroids.npy')).equals(readFileSync(join(tmp, 'cent.npy')))).toBe(true);
    expect((JSON.parse(readFileSync(join(out, 'calibration.json'), 'utf8')) as { k: number }).k).toBe(8);
    // s3:// --out (test/cli/fit-s3.test.ts covers it in full): the same two files, as objects.
    const remote = await runCli(['fit', '--embeddings', 's3://bucket/big-in/emb.npy', '--centroids', 's3://bucket/big-in/cent.npy', '--sample', '5000', '-q', '--out', 's3://bucket/fit'], { env: srv.env });
    expect(remote.code, remote.stderr).toBe(0);
    expect((await readLocation('s3://bucket/fit/centroids.npy')).equals(readFileSync(join(out, 'centroids.npy')))).toBe(true);
    expect((await readLocation('s3://bucket/fit/calibration.json')).equals(readFileSync(join(out, 'calibration.json')))).toBe(true);
  });

  it('retries with backoff: throttling (503 SlowDown), 500s and resets on reads and parts are survived, outputs equal', async () => {
    const seen = new Map<string, number>();
    // The first two attempts of every request fail: a 503, then a 500 (or a reset for part uploads).
    const proxy = await startFaultProxy(srv.endpoint, (req) => {
      const id = `${req.method} ${req.url} ${req.headers.range ?? ''}`;
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      if (n === 1) return 503;
      if (n === 2) return /partNumber=/.test(req.url ?? '') ? 'reset' : 500;
      return undefined;
    });
    try {
      const r = await runCli(pruneArgs('s3://bucket/retry-out'), { env: { ...srv.env, AWS_ENDPOINT_URL: proxy.endpoint, AWS_MAX_ATTEMPTS: '4' }, timeoutMs: 180_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(proxy.faults).toBeGreaterThan(10);
    } finally {
      await proxy.stop();
    }
    expect((await readLocation('s3://bucket/retry-out/manifest.jsonl')).equals(await readLocation('s3://bucket/big-out/manifest.jsonl'))).toBe(true);
  });

  it('a connection reset on every second part: exit 1, one ERR_DBPRUNE_STORAGE line naming the object, no object left', async () => {
    const proxy = await startFaultProxy(srv.endpoint, (req) => (req.method === 'PUT' && /[?&]partNumber=2(&|$)/.test(req.url ?? '') ? 'reset' : undefined));
    try {
      const r = await runCli(pruneArgs('s3://bucket/fault-out'), { env: { ...srv.env, AWS_ENDPOINT_URL: proxy.endpoint, AWS_MAX_ATTEMPTS: '2' }, timeoutMs: 120_000 });
      expect(r.code).toBe(1);
      expect(proxy.faults).toBeGreaterThanOrEqual(2); // the SDK retried the part before giving up
      const lines = r.stderr.trim().split('\n');
      expect(lines.at(-1)).toMatch(/s3:\/\/bucket\/fault-out\/manifest\.jsonl.*\[ERR_DBPRUNE_STORAGE\]$/);
      expect(await statLocation('s3://bucket/fault-out/manifest.jsonl')).toBeUndefined();
      expect(await statLocation('s3://bucket/fault-out/stats.json')).toBeUndefined();
    } finally {
      await proxy.stop();
    }
  });
});

describe('object-store errors name the URI', { timeout: 180_000 }, () => {
  const centroids = join(samples, 'centroids', 'centroids.npy');
  it('a missing bucket → ERR_DBPRUNE_INPUT_NOT_FOUND, exit 1', async () => {
    const r = await runCli(['prune', '--embeddings', 's3://no-such-bucket/emb.npy', '--centroids', centroids, '--keep', '0.3', '--out', join(tmp, 'e1')], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^dbprune: .*s3:\/\/no-such-bucket\/emb\.npy.*bucket no-such-bucket does not exist.*\[ERR_DBPRUNE_INPUT_NOT_FOUND\]$/);
  });

  it('a missing object → ERR_DBPRUNE_INPUT_NOT_FOUND, exit 1', async () => {
    const r = await runCli(['prune', '--embeddings', 's3://bucket/nothing-here.npy', '--centroids', centroids, '--keep', '0.3', '--out', join(tmp, 'e2')], { env: srv.env });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^dbprune: .*s3:\/\/bucket\/nothing-here\.npy.*\[ERR_DBPRUNE_INPUT_NOT_FOUND\]$/);
  });

  it('a missing s3:// shard becomes one error row naming the URI; the run goes on (like a URL that 404s)', async () => {
    const r = await runCli(['run', 's3://bucket/shards/{00000,00042}.tar'], { env: srv.env, timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as ManifestRecord);
    expect(rows.length).toBe(201);
    const bad = rows.filter((x) => x.reason === 'error:download');
    expect(bad).toEqual([expect.objectContaining({ key: '00042.tar:shard', shard: 's3://bucket/shards/00042.tar', decision: 'drop' })]);
    expect(bad[0].error).toMatch(/s3:\/\/bucket\/shards\/00042\.tar: no such object/);
  });

  it('credentials the server rejects → ERR_DBPRUNE_STORAGE_AUTH, exit 1', async () => {
    // s3rver checks the access key id (it does not verify SigV4 signatures), so the key id is wrong.
    const env = s3Env(srv.endpoint, { id: 'NOT-A-KEY', secret: 'wrong' });
    const r = await runCli(['prune', '--embeddings', 's3://bucket/big-in/emb.npy', '--centroids', centroids, '--keep', '0.3', '--out', join(tmp, 'e3')], { env });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^dbprune: s3:\/\/bucket\/big-in\/emb\.npy: the object store refused the request.*\[ERR_DBPRUNE_STORAGE_AUTH\]$/);
  });

  it('no credentials anywhere → ERR_DBPRUNE_STORAGE_AUTH saying so, exit 1', async () => {
    const env: Record<string, string> = { ...srv.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' };
    const r = await runCli(['prune', '--embeddings', 's3://bucket/big-in/emb.npy', '--centroids', centroids, '--keep', '0.3', '--out', join(tmp, 'e4')], { env });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^dbprune: s3:\/\/bucket\/big-in\/emb\.npy: no AWS credentials found.*\[ERR_DBPRUNE_STORAGE_AUTH\]$/);
  });

  it('an output bucket that does not exist → ERR_DBPRUNE_STORAGE naming the object, exit 1', async () => {
    const r = await runCli(
      ['prune', '--embeddings', 's3://bucket/big-in/emb.npy', '--centroids', 's3://bucket/big-in/cent.npy', '--keep', '0.3', '--no-report', '--out', 's3://no-such-bucket/out'],
      { env: srv.env },
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/s3:\/\/no-such-bucket\/out\/.*bucket no-such-bucket does not exist.*\[ERR_DBPRUNE_STORAGE\]$/);
  });

  it('--s3-endpoint and --s3-path-style (before or after the command) override the environment', async () => {
    const env = { ...srv.env, AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_S3_FORCE_PATH_STYLE: 'false' };
    const args = ['--s3-endpoint', srv.endpoint, 'prune', '--embeddings', 's3://bucket/big-in/emb.npy', '--centroids', 's3://bucket/big-in/cent.npy'];
    const r = await runCli([...args, '--keep', '0.3', '-q', '--out', 's3://bucket/flags-out', '--s3-path-style'], { env, timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect((await statLocation('s3://bucket/flags-out/report.html'))?.kind).toBe('file');
    const report = await runCli(['report', 's3://bucket/flags-out', '--s3-endpoint', srv.endpoint, '--s3-path-style'], { env });
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout.trim()).toBe('s3://bucket/flags-out/report.html');
  });
});
