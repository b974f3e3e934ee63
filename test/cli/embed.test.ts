/**
 * `dbprune embed` and `dbprune fit <shards…>` on the synthetic sample (tiny encoder, fast): URL
 * lists from a loopback server with errors as rows and additional columns kept, the reservoir fit
 * (embeds only the samples it may keep, deterministic per seed), usage errors with exit code 2.
 */
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageSample } from '../../src/core/sample.js';
import { readNpyFloat32 } from '../../src/io/npy.js';
import { readTarSamples } from '../../src/io/tar.js';
import { fitFromImages } from '../../pipelines/fit-images.js';
import { imagesToEmbeddings } from '../../pipelines/images-to-embeddings.js';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixture.js';
import { sendImage, startServer, tempDir } from '../stages/image-fixtures.js';

const shards = join(repoRoot, 'data-samples', 'shards');
const model = join(repoRoot, 'data-samples', 'model');
const tmp = tempDir('dbprune-embed-');
let server: Awaited<ReturnType<typeof startServer>>;
const images = new Map<string, ImageSample>();

beforeAll(async () => {
  for await (const s of readTarSamples(createReadStream(join(shards, '00003.tar')))) images.set(s.key, s);
  server = await startServer((req, res) => {
    const s = images.get((req.url ?? '').replace(/^\/img\//, '').replace(/\.\w+$/, ''));
    sendImage(res, s);
  });
});
afterAll(async () => {
  await server.close();
  tmp.cleanup();
});

describe('dbprune embed', () => {
  it('--urls: downloads, embeds, one metadata row per URL (failed ones with status and reason, NaN vector), extra columns kept', async () => {
    const keys = [...images.keys()].slice(0, 30);
    const list = join(tmp.dir, 'urls.jsonl');
    const lines = keys.map((k, i) => JSON.stringify({ url: `${server.url}/img/${k}.jpg`, caption: `caption ${i}`, license: 'cc0' }));
    lines.splice(7, 0, JSON.stringify({ url: `${server.url}/img/missing.jpg`, caption: 'gone', license: 'x' }));
    writeFileSync(list, `${lines.join('\n')}\n`);
    const out = join(tmp.dir, 'urls-emb');
    const r = await runCli(['embed', '--urls', list, '--allow-private', '--save-additional-columns', 'license', '--model', model, '--out', out, '-q']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/embedded 30 of 31 samples \(1 errors: error:download 1\)/);
    const meta = await parquetReadObjects({ file: await asyncBufferFromFile(join(out, 'metadata', 'metadata_0.parquet')) });
    const emb = await readNpyFloat32(join(out, 'img_emb', 'img_emb_0.npy'));
    expect([meta.length, emb.rows, emb.cols]).toEqual([31, 31, 64]);
    expect(meta[7]).toMatchObject({ url: `${server.url}/img/missing.jpg`, status: 'failed_to_download', error: 'error:download', license: 'x' });
    expect(meta[7].error_message).toContain('404');
    expect(Number.isNaN(emb.data[7 * 64])).toBe(true);
    expect(meta.filter((m) => m.status === 'success').every((m) => m.license === 'cc0' && m.error === null)).toBe(true);
    expect(Number.isFinite(emb.data[0])).toBe(true);
    // The layout is what fit reads: 30 valid rows, the NaN row skipped.
    const f = await runCli(['fit', '--embeddings', out, '-k', '3', '--out', join(tmp.dir, 'urls-fit'), '-q']);
    expect(f.code).toBe(0);
    expect(JSON.parse(f.stdout)).toMatchObject({ rowsRead: 31, skipped: 1, sampleSize: 30 });
  });

  it('refuses to resume into parts of another size or model, and --no-resume starts over', async () => {
    const out = join(tmp.dir, 'resume');
    const first = await imagesToEmbeddings({ inputs: join(shards, '00000.tar'), model, out, partRows: 64 });
    expect(first.parts.map((p) => p.rows)).toEqual([64, 64, 64, 8]);
    await expect(imagesToEmbeddings({ inputs: join(shards, '00000.tar'), model, out, partRows: 50 })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_USAGE' });
    const otherModel = join(repoRoot, 'data-samples', 'openclipart', 'model');
    await expect(imagesToEmbeddings({ inputs: join(shards, '00000.tar'), model: otherModel, out, partRows: 64 })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_USAGE' });
    const r = await runCli(['embed', join(shards, '00000.tar'), '--model', model, '--out', out, '--part-rows', '50', '--no-resume', '-q']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/embedded 200 of 200 samples/);
    expect((JSON.parse(readFileSync(join(out, 'embed.json'), 'utf8')) as { partRows: number }).partRows).toBe(50);
  });

  it('usage errors exit 2 with one line naming the problem', async () => {
    const noModel = await runCli(['embed', join(shards, '00000.tar'), '--out', join(tmp.dir, 'x')]);
    expect([noModel.code, noModel.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(noModel.stderr).toMatch(/--model is required.*ERR_DBPRUNE_USAGE/);
    const both = await runCli(['embed', join(shards, '00000.tar'), '--urls', 'u.txt', '--model', model, '--out', join(tmp.dir, 'x')]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give one input');
    const fitBoth = await runCli(['fit', join(shards, '00000.tar'), '--embeddings', 'e.npy', '--out', join(tmp.dir, 'x')]);
    expect(fitBoth.code).toBe(2);
    expect(fitBoth.stderr).toContain('ERR_DBPRUNE_USAGE');
  });
});

describe('fit from images', () => {
  it('embeds only the samples a uniform reservoir may keep, and is deterministic per seed', async () => {
    const opts = { inputs: shards, model, k: 12, sample: 100, iters: 20, seed: 3 };
    const a = await fitFromImages({ ...opts, out: join(tmp.dir, 'fit-a') });
    expect(a).toMatchObject({ k: 12, dim: 64, sampleSize: 100, samplesSeen: 1200, failed: 0 });
    // Algorithm R embeds ≈ capacity · (1 + ln(N / capacity)) ≈ 348 of 1,200.
    expect(a.embedded).toBeGreaterThan(150);
    expect(a.embedded).toBeLessThan(600);
    const b = await fitFromImages({ ...opts, out: join(tmp.dir, 'fit-b') });
    expect(readFileSync(b.centroidsPath)).toEqual(readFileSync(a.centroidsPath));
    const c = await fitFromImages({ ...opts, seed: 4, out: join(tmp.dir, 'fit-c') });
    expect(readFileSync(c.centroidsPath)).not.toEqual(readFileSync(a.centroidsPath));
  });
});
