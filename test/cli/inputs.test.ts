/**
 * Inputs through the real CLI (issue #11): URL lists with only a `url` column, keys that repeat or
 * cannot be written, image formats sharp decodes, and empty shards.
 */
import { copyFileSync, createReadStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageSample } from '../../src/core/sample.js';
import { readManifest } from '../../src/io/manifest.js';
import { writeNpy } from '../../src/io/npy.js';
import { Rng } from '../../src/core/rng.js';
import { readTarSamples } from '../../src/io/tar.js';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixture.js';
import sharp from 'sharp';
import { makeTar, sendImage, startServer, tempDir } from '../stages/image-fixtures.js';

const tmp = tempDir('dbprune-inputs-cli-');
const shards = join(repoRoot, 'data-samples', 'shards');
let server: Awaited<ReturnType<typeof startServer>>;
const images: ImageSample[] = [];

beforeAll(async () => {
  for await (const s of readTarSamples(createReadStream(join(shards, '00001.tar')))) if (images.length < 6) images.push(s);
  server = await startServer((req, res) => {
    if (req.url === '/empty.tar') {
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': '0' }).end();
      return;
    }
    const i = Number((req.url ?? '').replace(/^\/img\//, '').replace(/\.\w+$/, ''));
    const s = images[i];
    sendImage(res, s?.image ? s : undefined);
  });
});
afterAll(async () => {
  await server.close();
  tmp.cleanup();
});

describe('dbprune run: URL lists', () => {
  it('a CSV with only a url column runs (caption is optional at its default); a named caption column must exist', async () => {
    const list = join(tmp.dir, 'only-url.csv');
    writeFileSync(list, `url\n${images.map((_, i) => `${server.url}/img/${i}.jpg`).join('\n')}\n`);
    const out = join(tmp.dir, 'only-url-out');
    const r = await runCli(['run', '--urls', list, '--allow-private', '--out', out, '--format', 'jsonl', '-q']);
    expect(r.stderr).not.toMatch(/caption column/);
    expect(r.code).toBe(0);
    const rows = readManifest(join(out, 'manifest.jsonl'));
    expect(rows).toHaveLength(images.length);
    expect(rows.every((row) => !row.reason.startsWith('error:'))).toBe(true);
    expect(rows.every((row) => row.caption === null)).toBe(true);
    const named = await runCli(['run', '--urls', list, '--caption-col', 'caption', '--allow-private', '--out', join(tmp.dir, 'named-out'), '--format', 'jsonl', '-q']);
    expect(named.code).toBe(1);
    expect(named.stderr).toMatch(/lacks the caption column "caption".*\[ERR_DBPRUNE_INPUT_FORMAT\]/);
  });
});

describe('dbprune run: every shard and key gets a row', () => {
  it('GIF/TIFF/AVIF members decode, an undecodable key gets error:missing-image, empty shards get a :shard row', async () => {
    const base = () => sharp({ create: { width: 24, height: 16, channels: 3, background: { r: 40, g: 160, b: 90 } } });
    const tar = await makeTar([
      { name: 'a.jpg', data: await base().jpeg().toBuffer() },
      { name: 'b.gif', data: await base().gif().toBuffer() },
      { name: 'c.tiff', data: await base().tiff().toBuffer() },
      { name: 'd.avif', data: await base().avif().toBuffer() },
      { name: 'e.bmp', data: Buffer.from('424d00000000', 'hex') },
    ]);
    const dir = join(tmp.dir, 'formats');
    mkdirSync(dir);
    writeFileSync(join(dir, 'f.tar'), tar);
    writeFileSync(join(dir, 'empty.tar'), Buffer.alloc(0));
    const out = join(tmp.dir, 'formats-out');
    const r = await runCli(['run', join(dir, 'f.tar'), join(dir, 'empty.tar'), `${server.url}/empty.tar`, '--allow-private', '--out', out, '--format', 'jsonl', '-q']);
    expect(r.stderr).not.toMatch(/ERR_DBPRUNE|\n\s+at /);
    expect(r.code).toBe(0);
    const rows = readManifest(join(out, 'manifest.jsonl'));
    expect(rows.map((row) => [row.key, row.reason.startsWith('error:') ? row.reason : 'decided'])).toEqual([
      ['a', 'decided'],
      ['b', 'decided'],
      ['c', 'decided'],
      ['d', 'decided'],
      ['e', 'error:missing-image'],
      ['empty.tar:shard', 'error:untar'],
      ['empty.tar:shard', 'error:untar'],
    ]);
    expect(rows[5].error).toMatch(/empty \(0 bytes\)/);
    expect(readFileSync(join(out, 'stats.json'), 'utf8')).toContain('"samples": 7');
  });
});

describe('dbprune run: duplicate and unwritable keys', () => {
  it('a shard listed twice: its second reading is error:duplicate-key rows; a copy under another name is another shard', async () => {
    const dir = join(tmp.dir, 'dups');
    mkdirSync(dir);
    const a = join(dir, 'a.tar');
    const copy = join(dir, 'copy.tar');
    copyFileSync(join(shards, '00000.tar'), a);
    copyFileSync(join(shards, '00000.tar'), copy);
    const out = join(tmp.dir, 'dups-out');
    const r = await runCli(['run', a, copy, a, '--out', out, '--format', 'jsonl', '-q']);
    expect(r.code).toBe(0);
    const rows = readManifest(join(out, 'manifest.jsonl'));
    const per = rows.length / 3;
    expect(rows.slice(0, 2 * per).every((row) => row.reason !== 'error:duplicate-key')).toBe(true);
    expect(rows.slice(2 * per).every((row) => row.reason === 'error:duplicate-key' && row.decision === 'drop')).toBe(true);
    // kept.txt: one line per kept row; within a shard no key twice
    const kept = readFileSync(join(out, 'kept.txt'), 'utf8').trim().split('\n');
    expect(kept.length).toBe(rows.filter((row) => row.decision === 'keep').length);
    const keptA = rows.filter((row) => row.decision === 'keep' && row.shard === a).map((row) => row.key);
    expect(new Set(keptA).size).toBe(keptA.length);
  });

  it('repeated keys in keys.txt (streaming and exact mode) and a key with a line break never reach kept.txt twice or split', async () => {
    const dir = join(tmp.dir, 'keys');
    mkdirSync(dir);
    const n = 300;
    const rng = new Rng(7);
    const emb = new Float32Array(n * 64).map(() => rng.normal());
    await writeNpy(join(dir, 'emb.npy'), emb, [n, 64]);
    const keys = Array.from({ length: n }, (_, i) => `k${i % 250}`); // 50 repeats
    writeFileSync(join(dir, 'keys.txt'), `${keys.join('\n')}\n`);
    const centroids = join(repoRoot, 'data-samples', 'centroids', 'centroids.npy');
    for (const mode of ['run', 'prune'] as const) {
      const out = join(tmp.dir, `keys-out-${mode}`);
      const args = mode === 'run' ? ['run', '--embeddings', join(dir, 'emb.npy')] : ['prune', '--embeddings', join(dir, 'emb.npy')];
      const r = await runCli([...args, '--keys', join(dir, 'keys.txt'), '--centroids', centroids, '--keep', '0.5', '--out', out, '--format', 'jsonl', '-q']);
      expect(r.code, r.stderr).toBe(0);
      const rows = readManifest(join(out, 'manifest.jsonl'));
      expect(rows).toHaveLength(n);
      expect(rows.filter((row) => row.reason === 'error:duplicate-key').map((row) => row.key), mode).toEqual(keys.slice(250));
      const kept = readFileSync(join(out, 'kept.txt'), 'utf8').trim().split('\n');
      expect(new Set(kept).size, mode).toBe(kept.length);
    }
    // a tar member whose key holds a newline
    const nl = await makeTar([
      { name: 'ok.jpg', data: images[0].image as Buffer },
      { name: 'bad\nkey.jpg', data: images[1].image as Buffer },
    ]);
    writeFileSync(join(dir, 'nl.tar'), nl);
    const out = join(tmp.dir, 'nl-out');
    const r = await runCli(['run', join(dir, 'nl.tar'), '--keep', '0.99', '--out', out, '--format', 'jsonl', '-q']);
    expect(r.code).toBe(0);
    const rows = readManifest(join(out, 'manifest.jsonl'));
    expect(rows.map((row) => [row.key, row.reason])).toEqual([
      ['ok', 'dbp'],
      ['bad\nkey', 'error:invalid-key'],
    ]);
    expect(readFileSync(join(out, 'kept.txt'), 'utf8')).not.toMatch(/bad|key\n/);
  });
});

