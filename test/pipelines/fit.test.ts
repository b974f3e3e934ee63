import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fit } from '../../pipelines/fit.js';
import { nearestBruteForceJs } from '../../src/core/nearest.js';
import { Rng } from '../../src/core/rng.js';
import { loadCalibration } from '../../src/io/calibration.js';
import { sha256Hex } from '../../src/io/hash.js';
import { readNpyFloat32, writeNpy } from '../../src/io/npy.js';

let dir: string;
const dim = 16;
const K = 5;
const rowsPerFile = 900;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-fit-'));
  const rng = new Rng(8);
  const centres = Float64Array.from({ length: K * dim }, () => rng.normal());
  for (let f = 0; f < 2; f++) {
    const x = new Float32Array(rowsPerFile * dim);
    for (let i = 0; i < rowsPerFile; i++) {
      const j = rng.int(K);
      // Unnormalised rows (scale 3): fit must L2-normalise the sample.
      for (let t = 0; t < dim; t++) x[i * dim + t] = 3 * (centres[j * dim + t] + 0.2 * rng.normal());
    }
    if (f === 1) {
      x[10 * dim + 2] = NaN;
      x[20 * dim] = Infinity;
      x.fill(0, 30 * dim, 31 * dim);
    }
    await writeNpy(join(dir, `emb_${f}.npy`), x, [rowsPerFile, dim]);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fit', () => {
  it('samples, clusters and writes centroids + calibration that load back', async () => {
    const out = join(dir, 'out');
    const lines: string[] = [];
    const r = await fit({ embeddings: join(dir, 'emb_{0..1}.npy'), k: K, sample: 1000, iters: 10, seed: 1, out, log: (l) => lines.push(l) });
    expect(r).toMatchObject({ k: K, dim, rowsRead: 2 * rowsPerFile, skipped: 3, sampleSize: 1000, emptyClusters: 0 });
    expect(lines.length).toBeGreaterThan(2);
    const c = await readNpyFloat32(r.centroidsPath);
    expect([c.rows, c.cols]).toEqual([K, dim]);
    const cal = await loadCalibration(out);
    expect(cal).toMatchObject({ k: K, dim, sampleSize: 1000, totalSeen: 2 * rowsPerFile - 3, skipped: 3, seed: 1, numNNs: 20 });
    expect(cal.counts.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(cal.sketches.total).toBe(1000);
    for (let j = 0; j < K; j++) {
      expect(cal.sketches.count(j)).toBe(cal.counts[j]);
      expect(cal.dIntra[j]).toBeGreaterThan(0);
      expect(cal.dIntra[j]).toBeLessThan(0.2);
      expect(cal.dInter[j]).toBeGreaterThan(cal.dIntra[j]); // well-separated planted clusters
    }
    expect(cal.centroidsSha256).toBe(sha256Hex(await readFile(r.centroidsPath)));
    // Mean δ over the sample agrees with dIntra weighted by counts.
    const weighted = Array.from(cal.counts).reduce((s, n, j) => s + n * cal.dIntra[j], 0) / 1000;
    expect(r.meanDistance).toBeCloseTo(weighted, 6);
    // Deterministic for a seed.
    const again = await fit({ embeddings: [join(dir, 'emb_0.npy'), join(dir, 'emb_1.npy')], k: K, sample: 1000, iters: 10, seed: 1, out: join(dir, 'out2') });
    expect(await readFile(again.centroidsPath)).toEqual(await readFile(r.centroidsPath));
  });

  it('with centroids: uses them as-is (no k-means) and calibrates against them', async () => {
    const rng = new Rng(2);
    const cpath = join(dir, 'given.npy');
    const given = Float32Array.from({ length: 4 * dim }, () => rng.normal());
    await writeNpy(cpath, given, [4, dim]);
    const out = join(dir, 'out3');
    const r = await fit({ embeddings: join(dir, 'emb_0.npy'), centroids: cpath, sample: 5000, out });
    expect(r).toMatchObject({ k: 4, iterations: 0, sampleSize: rowsPerFile });
    expect(await readFile(r.centroidsPath)).toEqual(await readFile(cpath));
    const cal = await loadCalibration(out, cpath);
    // Counts equal a brute-force assignment of all (normalised) rows, since the sample holds all rows.
    const e = await readNpyFloat32(join(dir, 'emb_0.npy'));
    for (let i = 0; i < e.rows; i++) {
      let s = 0;
      for (let t = 0; t < dim; t++) s += e.data[i * dim + t] ** 2;
      for (let t = 0; t < dim; t++) e.data[i * dim + t] /= Math.sqrt(s);
    }
    const ref = nearestBruteForceJs(e.data, e.rows, given, 4, dim);
    const counts = [0, 0, 0, 0];
    ref.cluster.forEach((j) => counts[j]++);
    expect(Array.from(cal.counts)).toEqual(counts);
  });

  it('rejects k > sample, a centroid dim mismatch and missing inputs', async () => {
    await expect(fit({ embeddings: join(dir, 'emb_0.npy'), k: 50, sample: 10, out: join(dir, 'x') })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_USAGE' });
    const bad = join(dir, 'bad.npy');
    await writeNpy(bad, new Float32Array(3 * 8).fill(1), [3, 8]);
    await expect(fit({ embeddings: join(dir, 'emb_0.npy'), centroids: bad, out: join(dir, 'y') })).rejects.toMatchObject({
      code: 'ERR_DBPRUNE_DIM_MISMATCH',
    });
    await expect(fit({ embeddings: join(dir, 'missing.npy'), k: 2, sample: 10, out: join(dir, 'z') })).rejects.toMatchObject({
      code: 'ERR_DBPRUNE_INPUT_NOT_FOUND',
    });
    await expect(fit({ embeddings: join(dir, 'emb_0.npy'), k: 0, out: join(dir, 'z') })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION' });
  });

  it('states each option\'s limits in its error (one validation vocabulary)', async () => {
    const base = { embeddings: join(dir, 'emb_0.npy'), out: join(dir, 'w') };
    const cases: [Partial<Parameters<typeof fit>[0]>, RegExp][] = [
      [{ k: 1.5 }, /option k must be an integer in 1\.\.1000000, got 1\.5/],
      [{ sample: 0 }, /option sample must be an integer in 1\.\.1e8, got 0/],
      [{ iters: -1 }, /option iters must be an integer in 0\.\.10000, got -1/],
      [{ seed: 2 ** 32 }, /option seed must be an integer in 0\.\.4294967295, got 4294967296/],
      [{ bins: 1 }, /option bins must be an integer in 2\.\.2\^20, got 1/],
      [{ numNNs: 0 }, /option numNNs must be an integer ≥ 1, got 0/],
      [{ out: '' }, /option out must be a non-empty string/],
    ];
    for (const [bad, message] of cases) {
      await expect(fit({ ...base, ...bad })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION', message: expect.stringMatching(message) as unknown });
    }
  });
});
