/**
 * `dbprune run` through the real CLI on the synthetic sample (the real no-flag default is checked in
 * test/cli/real-sample.test.ts): shards into out/, shards from stdin to
 * JSONL on stdout, and URL lists downloaded from a loopback server into a manifest and pruned
 * webdataset shards — with the SSRF guard refusing loopback unless --allow-private is given.
 */
import { copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageSample } from '../../src/core/sample.js';
import { readManifest } from '../../src/io/manifest.js';
import { readTarSamples } from '../../src/io/tar.js';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixture.js';
import { sendImage, startServer, tempDir } from '../stages/image-fixtures.js';

const tmp = tempDir('dbprune-run-cli-');
const shards = join(repoRoot, 'data-samples', 'shards');
/** The synthetic sample's model and centroids, named explicitly: the no-flag default is the real (slower) set. */
const synth = ['--model', join(repoRoot, 'data-samples', 'model'), '--centroids', join(repoRoot, 'data-samples', 'centroids', 'centroids.npy')];
let server: Awaited<ReturnType<typeof startServer>>;
const images = new Map<string, ImageSample>();

beforeAll(async () => {
  for await (const s of readTarSamples(createReadStream(join(shards, '00002.tar')))) images.set(s.key, s);
  server = await startServer((req, res) => {
    const key = (req.url ?? '').replace(/^\/img\//, '').replace(/\.\w+$/, '');
    const s = images.get(key);
    sendImage(res, s);
  });
});
afterAll(async () => {
  await server.close();
  tmp.cleanup();
});

describe('dbprune run (CLI)', () => {
  it('synthetic shards into out/: prints the summary and the report path', async () => {
    const r = await runCli(['run', shards, ...synth, '--out', 'out', '-q'], { cwd: tmp.dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/kept \d+ of 1,200 samples/);
    expect(r.stdout).toContain('report: out/report.html');
    const rows = readManifest(join(tmp.dir, 'out', 'manifest.parquet'));
    expect(rows.length).toBe(1200);
    const stats = JSON.parse(readFileSync(join(tmp.dir, 'out', 'stats.json'), 'utf8')) as { totals: { kept: number } };
    expect(stats.totals.kept).toBe(rows.filter((row) => row.decision === 'keep').length);
    expect(readFileSync(join(tmp.dir, 'out', 'kept.txt'), 'utf8').trim().split('\n').length).toBe(stats.totals.kept);
  });

  it('shards from stdin, JSONL manifest rows on stdout when no --out is given', async () => {
    const r = await runCli(['run', '-', ...synth, '-q'], { input: `${join(shards, '00000.tar')}\n# a comment\n${join(shards, '00001.tar')}\n` });
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { key: string; decision: string; reason: string; cluster: number });
    expect(rows.length).toBe(400);
    expect(new Set(rows.map((row) => row.key)).size).toBe(400);
    expect(rows.every((row) => ['keep', 'drop'].includes(row.decision) && row.reason === 'dbp' && row.cluster >= 0)).toBe(true);
  });

  it('URL list → manifest + pruned webdataset shards; rows in = rows out, errors as rows', async () => {
    const keys = [...images.keys()].slice(0, 60);
    const list = join(tmp.dir, 'urls.jsonl');
    const lines = keys.map((k, i) => JSON.stringify({ url: `${server.url}/img/${k}.jpg`, caption: `caption ${i}`, license: 'cc-by' }));
    lines.push(JSON.stringify({ url: `${server.url}/img/missing.jpg`, caption: 'gone', license: 'x' }));
    writeFileSync(list, `${lines.join('\n')}\n`);
    const out = join(tmp.dir, 'urls-out');
    const shardsOut = join(tmp.dir, 'pruned-shards');
    const r = await runCli(['run', '--urls', list, '--allow-private', '--out', out, '--write-shards', shardsOut, '--save-additional-columns', 'license', '--samples-per-shard', '40', '--keep', '0.5', ...synth, '-q']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = readManifest(join(out, 'manifest.parquet'));
    expect(rows.length).toBe(61);
    expect(rows[0].key).toBe('0000000'); // img2dataset: shard 00000 + ⌈log10(40)⌉ = 2 digits of index
    expect(rows[40].key).toBe('0000100');
    expect(rows.find((row) => row.url?.endsWith('/missing.jpg'))?.reason).toBe('error:download');
    const kept = rows.filter((row) => row.decision === 'keep').map((row) => row.key).sort();
    expect(kept.length).toBeGreaterThan(10);
    const tars = readdirSync(shardsOut).filter((f) => f.endsWith('.tar')).sort();
    expect(tars.length).toBeGreaterThanOrEqual(1);
    expect(existsSync(join(shardsOut, tars[0].replace('.tar', '.parquet')))).toBe(true);
    expect(existsSync(join(shardsOut, tars[0].replace('.tar', '_stats.json')))).toBe(true);
    const packed: ImageSample[] = [];
    for (const t of tars) for await (const s of readTarSamples(createReadStream(join(shardsOut, t)))) packed.push(s);
    expect(packed.map((s) => s.key).sort()).toEqual(kept);
    expect(packed.every((s) => s.image && s.image.length > 0 && s.caption?.startsWith('caption') && s.json?.license === 'cc-by')).toBe(true);
  });

  it('a bare .onnx (no preprocessor_config.json) runs with preprocessing from flags, and says what is wrong without them', async () => {
    const bare = join(tmp.dir, 'bare-model');
    mkdirSync(bare, { recursive: true });
    copyFileSync(join(repoRoot, 'data-samples', 'model', 'onnx', 'vision_model.onnx'), join(bare, 'encoder.onnx'));
    const shard = join(shards, '00000.tar');
    const without = await runCli(['run', shard, '--model', join(bare, 'encoder.onnx'), '--centroids', synth[3], '--out', join(tmp.dir, 'bare-1'), '-q']);
    expect(without.code).toBe(1);
    expect(without.stderr).toContain('ERR_DBPRUNE_DIM_MISMATCH');
    const out = join(tmp.dir, 'bare-2');
    const r = await runCli(['run', shard, '--model', join(bare, 'encoder.onnx'), '--centroids', synth[3], '--image-size', '32', '--mean', '0.48145466,0.4578275,0.40821073', '--std', '0.26862954,0.26130258,0.27577711', '--input-name', 'pixel_values', '--output-name', 'image_embeds', '--out', out, '--format', 'jsonl', '-q']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Same preprocessing as the bundled config ⇒ the same decisions as with the model folder.
    const ref = await runCli(['run', shard, ...synth, '--out', join(tmp.dir, 'bare-ref'), '--format', 'jsonl', '-q']);
    expect(ref.code).toBe(0);
    const strip = (p: string) => readManifest(p).map((row) => [row.key, row.decision, row.cluster]);
    expect(strip(join(out, 'manifest.jsonl'))).toEqual(strip(join(tmp.dir, 'bare-ref', 'manifest.jsonl')));
  });

  it('the SSRF guard refuses loopback URLs unless --allow-private is given', async () => {
    const list = join(tmp.dir, 'one.txt');
    writeFileSync(list, `${server.url}/img/${[...images.keys()][0]}.jpg\n`);
    const out = join(tmp.dir, 'ssrf-out');
    const r = await runCli(['run', '--urls', list, ...synth, '--out', out, '--format', 'jsonl', '-q']);
    expect(r.code).toBe(0);
    const rows = readManifest(join(out, 'manifest.jsonl'));
    expect(rows.length).toBe(1);
    expect(rows[0].reason).toBe('error:ssrf');
    expect(rows[0].decision).toBe('drop');
    // img2dataset's per-sample status is a manifest column too.
    const raw = JSON.parse(readFileSync(join(out, 'manifest.jsonl'), 'utf8').trim()) as { status: string };
    expect(raw.status).toBe('failed_to_download');
  });
});
