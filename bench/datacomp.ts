/**
 * Issue 15 benchmark: `dbprune prune --datacomp` (exact mode) on a DataComp-shaped pool of N rows
 * (default 1M) in 10 shards — parquet (uid, url, text, original_width/height,
 * clip_l14_similarity_score) + npz with a stored 768-d float16 `l14_img` member — against the same
 * rows as float16 `.npy` files through `prune --embeddings --metadata` (same parquet), and with the
 * CLIP-score + basic filters on. Whole CLI processes from dist/ under /usr/bin/time -v, alternating
 * A/B/C runs, medians. Prints one JSON object. Usage: node --import tsx bench/datacomp.ts [N] [rounds]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { zipSync } from 'fflate';
import * as parquet from 'parquet-wasm/node';
import { Rng } from '../src/core/rng.js';
import { NpyWriter, writeNpy } from '../src/io/npy.js';
import { dataDir } from './synth.js';
import { median, parseTimeV } from './time-v.js';

const n = Number(process.argv[2] ?? 1_000_000);
const rounds = Number(process.argv[3] ?? 3);
const dim = 768;
const k = 500;
const shards = 10;
const root = join(dataDir, `datacomp-n${n}`);
const dcDir = join(root, 'pool');
const npyDir = join(root, 'npy');
const centroids = join(root, 'centroids.npy');

async function build(): Promise<void> {
  if (existsSync(join(root, 'done'))) return;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(dcDir, { recursive: true });
  mkdirSync(npyDir, { recursive: true });
  const rng = new Rng(15);
  const centres = new Float32Array(k * dim);
  const unit = (a: Float32Array, o: number): void => {
    let s = 0;
    for (let t = 0; t < dim; t++) s += a[o + t] ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let t = 0; t < dim; t++) a[o + t] *= inv;
  };
  for (let j = 0; j < k; j++) {
    for (let t = 0; t < dim; t++) centres[j * dim + t] = rng.next() * 2 - 1;
    unit(centres, j * dim);
  }
  await writeNpy(centroids, centres, [k, dim], 'float32');
  const per = Math.ceil(n / shards);
  for (let s = 0; s < shards; s++) {
    const rows = Math.min(per, n - s * per);
    const name = String(s).padStart(8, '0');
    const npyPath = join(npyDir, `${name}.npy`);
    const w = await NpyWriter.create(npyPath, 'float16', dim);
    const chunk = 8192;
    const buf = new Float32Array(chunk * dim);
    for (let start = 0; start < rows; start += chunk) {
      const m = Math.min(chunk, rows - start);
      for (let i = 0; i < m; i++) {
        const j = rng.int(k);
        const a = 0.02 + 0.3 * ((j * 7919) % 100) / 100;
        for (let t = 0; t < dim; t++) buf[i * dim + t] = centres[j * dim + t] + a * (rng.next() * 2 - 1) / Math.sqrt(dim / 3);
        unit(buf, i * dim);
      }
      await w.write(buf.subarray(0, m * dim));
    }
    await w.close();
    writeFileSync(join(dcDir, `${name}.npz`), zipSync({ 'l14_img.npy': [new Uint8Array(readFileSync(npyPath)), { level: 0 }] }));
    const uid = Array.from({ length: rows }, () => Array.from({ length: 4 }, () => rng.nextU32().toString(16).padStart(8, '0')).join(''));
    const table = tableFromArrays({
      uid,
      url: uid.map((u) => `https://images.example.com/${u}.jpg`),
      text: uid.map((_, i) => (i % 5 === 0 ? 'ok' : `a photo of item ${i % 997} on a table`)),
      original_width: Int32Array.from({ length: rows }, () => 150 + rng.int(1000)),
      original_height: Int32Array.from({ length: rows }, () => 150 + rng.int(1000)),
      clip_l14_similarity_score: Float32Array.from({ length: rows }, () => Math.round((0.1 + 0.3 * rng.next()) * 1000) / 1000),
    });
    const bytes = parquet.writeParquet(parquet.Table.fromIPCStream(tableToIPC(table, 'stream')), new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.SNAPPY).build());
    writeFileSync(join(dcDir, `${name}.parquet`), bytes);
    writeFileSync(join(npyDir, `${name}.parquet`), bytes);
  }
  writeFileSync(join(root, 'done'), '');
}

interface Run {
  wall: number;
  cpu: number;
  rssMb: number;
}

function timed(args: string[]): Run {
  const out = join(root, 'out');
  rmSync(out, { recursive: true, force: true });
  const cli = join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js');
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, cli, ...args, '--out', out, '--no-report', '-q', '--json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  const t = parseTimeV(r.stderr);
  return { wall: t.wallS, cpu: t.cpuS, rssMb: Math.round(t.maxRssMB) };
}


await build();
const variants: Record<string, string[]> = {
  'npy+parquet (baseline)': ['prune', '--embeddings', join(npyDir, '*.npy'), '--metadata', join(npyDir, '*.parquet'), '--centroids', centroids, '--keep', '0.3'],
  datacomp: ['prune', '--datacomp', dcDir, '--centroids', centroids, '--keep', '0.3'],
  'datacomp + clip-score-top 0.3 + basic-filter-no-language': ['prune', '--datacomp', dcDir, '--centroids', centroids, '--keep', '0.3', '--clip-score-top', '0.3', '--basic-filter-no-language'],
};
const runs: Record<string, Run[]> = Object.fromEntries(Object.keys(variants).map((v) => [v, []]));
for (let r = 0; r < rounds; r++) for (const [name, args] of Object.entries(variants)) runs[name].push(timed(args));
const summary = Object.fromEntries(
  Object.entries(runs).map(([name, rs]) => [
    name,
    { rows_per_s: Math.round(n / median(rs.map((x) => x.wall))), wall_s: median(rs.map((x) => x.wall)), cpu_s: median(rs.map((x) => x.cpu)), peak_rss_mb: median(rs.map((x) => x.rssMb)), walls: rs.map((x) => x.wall) },
  ]),
);
process.stdout.write(`${JSON.stringify({ bench: 'datacomp-exact', n, dim, k, shards, rounds, summary })}\n`);
