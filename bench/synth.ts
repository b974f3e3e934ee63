/**
 * Synthetic clustered unit embeddings for benchmarks, written as .npy in chunks (never all in
 * memory). Cached under bench/.data by (n, dim, k, seed).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../src/core/rng.js';
import { NpyWriter, writeNpy } from '../src/io/npy.js';

export const dataDir = join(import.meta.dirname, '.data');

export interface SynthSet {
  embeddings: string;
  centroids: string;
  n: number;
  dim: number;
  k: number;
}

function unitRow(rng: Rng, dim: number, out: Float32Array, o: number): void {
  let s = 0;
  for (let t = 0; t < dim; t++) {
    const v = rng.next() * 2 - 1;
    out[o + t] = v;
    s += v * v;
  }
  const inv = 1 / Math.sqrt(s);
  for (let t = 0; t < dim; t++) out[o + t] *= inv;
}

/**
 * n samples around `trueK` random centres with per-centre spread; centroids file holds `k` of the
 * centres (so assignment is realistic but not trivially exact).
 */
export async function synthEmbeddings(n: number, dim: number, k: number, seed = 1): Promise<SynthSet> {
  mkdirSync(dataDir, { recursive: true });
  const base = join(dataDir, `synth-n${n}-d${dim}-k${k}-s${seed}`);
  const set = { embeddings: `${base}.npy`, centroids: `${base}-centroids.npy`, n, dim, k };
  if (existsSync(set.embeddings) && existsSync(set.centroids)) return set;
  const rng = new Rng(seed);
  const centres = new Float32Array(k * dim);
  for (let j = 0; j < k; j++) unitRow(rng, dim, centres, j * dim);
  const spread = Float64Array.from({ length: k }, () => 0.02 + 0.08 * rng.next());
  await writeNpy(set.centroids, centres, [k, dim], 'float32');
  const w = await NpyWriter.create(`${set.embeddings}.tmp`, 'float32', dim);
  const chunk = 16384;
  const buf = new Float32Array(chunk * dim);
  const noise = new Float32Array(dim);
  for (let start = 0; start < n; start += chunk) {
    const rows = Math.min(chunk, n - start);
    for (let i = 0; i < rows; i++) {
      const j = rng.int(k);
      unitRow(rng, dim, noise, 0);
      const o = i * dim;
      let s = 0;
      const a = spread[j] * Math.sqrt(dim) * 0.5;
      for (let t = 0; t < dim; t++) {
        const v = centres[j * dim + t] + a * noise[t] / Math.sqrt(dim);
        buf[o + t] = v;
        s += v * v;
      }
      const inv = 1 / Math.sqrt(s);
      for (let t = 0; t < dim; t++) buf[o + t] *= inv;
    }
    await w.write(buf.subarray(0, rows * dim));
  }
  await w.close();
  const { rename } = await import('node:fs/promises');
  await rename(`${set.embeddings}.tmp`, set.embeddings);
  return set;
}
