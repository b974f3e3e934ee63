/**
 * `dbprune embed --out s3://…` against s3rver on loopback: the same bytes (every npy, parquet and
 * embed.json) as a local embed; an interrupted run resumes from the complete parts on s3://; a part
 * larger than one multipart part is uploaded from its spool file in parts and equals the local one;
 * a reset mid-upload exits 1 naming the object and leaves no object under the part's name.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { NpyWriter } from '../../src/io/npy.js';
import { listLocation, readLocation, removeLocation, statLocation } from '../../src/io/storage/index.js';
import { PartWriter } from '../../pipelines/embedding-parts.js';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixture.js';
import { startFaultProxy, startS3Server, type S3TestServer } from '../helpers/s3.js';
import { unitRows } from '../helpers/vectors.js';

const shard = join(repoRoot, 'data-samples', 'shards', '00000.tar');
const model = join(repoRoot, 'data-samples', 'model');
let srv: S3TestServer;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'dbprune-s3-embed-'));
  srv = await startS3Server(['bucket']);
  Object.assign(process.env, srv.env);
}, 120_000);

afterAll(async () => {
  await srv?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Relative name → bytes of every object under an s3:// prefix. */
async function objectsUnder(prefix: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const e of listLocation(prefix)) out.set(e.location.slice(prefix.length), await readLocation(e.location));
  return out;
}

/** Relative name → bytes of every file under a local folder (one level of subfolders). */
function filesUnder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) for (const f of readdirSync(join(dir, e.name))) out.set(`${e.name}/${f}`, readFileSync(join(dir, e.name, f)));
    else out.set(e.name, readFileSync(join(dir, e.name)));
  }
  return out;
}

const embedArgs = (out: string, extra: string[] = []): string[] => ['embed', shard, '--model', model, '--part-rows', '64', '--out', out, '-q', ...extra];

describe('embed --out s3:// (s3rver on loopback)', { timeout: 240_000 }, () => {
  it('writes the same bytes as a local embed, and resumes from the complete parts on s3://', async () => {
    const local = await runCli(embedArgs(join(tmp, 'local')), { timeoutMs: 120_000 });
    expect(local.code, local.stderr).toBe(0);
    const remote = await runCli(embedArgs('s3://bucket/emb'), { env: srv.env, timeoutMs: 120_000 });
    expect(remote.code, remote.stderr).toBe(0);
    expect(remote.stdout).toMatch(/embedded 200 of 200 samples/);
    const want = filesUnder(join(tmp, 'local'));
    expect([...want.keys()].sort()).toEqual(['embed.json', ...[0, 1, 2, 3].flatMap((n) => [`img_emb/img_emb_${n}.npy`, `metadata/metadata_${n}.parquet`])].sort());
    const got = await objectsUnder('s3://bucket/emb/');
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, bytes] of want) expect(got.get(name)?.equals(bytes), name).toBe(true);

    // An interrupted run: part 1's metadata (its commit point) and the later parts are missing.
    for (const gone of ['metadata/metadata_1.parquet', 'img_emb/img_emb_2.npy', 'metadata/metadata_2.parquet', 'img_emb/img_emb_3.npy', 'metadata/metadata_3.parquet']) {
      await removeLocation(`s3://bucket/emb/${gone}`);
    }
    const again = await runCli(embedArgs('s3://bucket/emb'), { env: srv.env, timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/embedded 136 of 136 samples/);
    expect(again.stdout).toMatch(/resumed: kept 1 complete part\(s\), 64 samples/);
    const resumed = await objectsUnder('s3://bucket/emb/');
    expect([...resumed.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, bytes] of want) expect(resumed.get(name)?.equals(bytes), name).toBe(true);
  });

  it('uploads a part larger than one multipart part from its spool file, equal to the local part', async () => {
    const rows = 45_000; // 45,000 × 64 float32 ≈ 11 MiB: two 8 MiB parts
    const data = unitRows(new Rng(3), rows, 64);
    const write = async (out: string): Promise<void> => {
      const parts = await PartWriter.open(out, { model: 'm', partRows: rows });
      try {
        const npy = await NpyWriter.create(parts.npyTempPath(0), 'float32', 64);
        await npy.write(data);
        await parts.commit(0, npy, new Uint8Array([1, 2, 3]));
      } finally {
        await parts.close();
      }
    };
    await write(join(tmp, 'big-local'));
    await write('s3://bucket/big-emb');
    const want = readFileSync(join(tmp, 'big-local', 'img_emb', 'img_emb_0.npy'));
    expect(want.length).toBeGreaterThan(8 << 20);
    expect((await readLocation('s3://bucket/big-emb/img_emb/img_emb_0.npy')).equals(want)).toBe(true);
    expect((await readLocation('s3://bucket/big-emb/metadata/metadata_0.parquet')).equals(Buffer.from([1, 2, 3]))).toBe(true);
  });

  it('a reset on every part upload: exit 1, one ERR_DBPRUNE_STORAGE line naming the object, no npy under its name', async () => {
    const proxy = await startFaultProxy(srv.endpoint, (req) => (req.method === 'PUT' && /img_emb_0\.npy/.test(req.url ?? '') ? 'reset' : undefined));
    try {
      const r = await runCli(embedArgs('s3://bucket/emb-fault'), { env: { ...srv.env, AWS_ENDPOINT_URL: proxy.endpoint, AWS_MAX_ATTEMPTS: '2' }, timeoutMs: 120_000 });
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines.length).toBe(1);
      expect(lines[0]).toMatch(/s3:\/\/bucket\/emb-fault\/img_emb\/img_emb_0\.npy.*\[ERR_DBPRUNE_STORAGE\]$/);
      expect(await statLocation('s3://bucket/emb-fault/img_emb/img_emb_0.npy')).toBeUndefined();
      expect(await statLocation('s3://bucket/emb-fault/metadata/metadata_0.parquet')).toBeUndefined();
    } finally {
      await proxy.stop();
    }
  });
});
