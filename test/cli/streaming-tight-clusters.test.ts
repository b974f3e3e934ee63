/**
 * Streaming mode on tight clusters (δ ~ 1e-4, like bench/synth.ts at 512-d) through the built CLI,
 * with a calibration from `fit` on the same distribution (issue 11, item 14: 9.8% kept for 27.7%
 * asked, because 2,048 linear sketch bins of width ~1e-3 put every member in bin 0). The keep
 * ratio lands on the target.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { sha256Hex } from '../../src/io/hash.js';
import { writeNpy } from '../../src/io/npy.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { unitRows } from '../helpers/vectors.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-tight-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const k = 8;
const dim = 64;

/** n unit rows around the centroids, cluster j with per-coordinate noise σ_j: δ ≈ σ_j²·dim/2 ∈ [5e-5, 3e-4]. */
function tight(rng: Rng, centroids: Float32Array, n: number): Float32Array {
  const sigma = Array.from({ length: k }, (_, j) => 1.2e-3 + (1.8e-3 * j) / (k - 1));
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const j = rng.int(k);
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = centroids[j * dim + t] + sigma[j] * rng.normal();
      out[i * dim + t] = v;
      s += v * v;
    }
    for (let t = 0; t < dim; t++) out[i * dim + t] /= Math.sqrt(s);
  }
  return out;
}

/** The parts of calibration.json these tests read or rewrite. */
interface CalibrationJson {
  dIntra: number[];
  counts: number[];
  histogram: { scale: string } & Record<string, unknown>;
}

/** The built CLI (`npm run build` first) through the shared runner. */
function dbprune(args: string[]): Promise<CliResult> {
  return runCli(args, { built: true, timeoutMs: 115_000 });
}

beforeAll(async () => {
  const rng = new Rng(31);
  await writeNpy(join(dir, 'centroids.npy'), unitRows(rng, k, dim), [k, dim]);
  const centroids = unitRows(new Rng(31), k, dim);
  await writeNpy(join(dir, 'stream.npy'), tight(rng, centroids, 8000), [8000, dim]);
  await writeNpy(join(dir, 'sample.npy'), tight(rng, centroids, 4000), [4000, dim]);
  const r = await dbprune(['fit', '--embeddings', join(dir, 'sample.npy'), '--centroids', join(dir, 'centroids.npy'), '--sample', '4000', '--out', join(dir, 'cal'), '-q']);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

describe('streaming run on tight clusters with a matching calibration', () => {
  for (const keep of [0.277, 0.1]) {
    it(`keep ${keep}: kept / rows within ±${keep / 10} of the target`, { timeout: 120_000 }, async () => {
      const out = join(dir, `out-${keep}`);
      const r = await dbprune(['run', '--embeddings', join(dir, 'stream.npy'), '--centroids', join(dir, 'cal', 'centroids.npy'), '--keep', String(keep), '--out', out, '-q']);
      expect(r.code, r.stderr).toBe(0);
      const stats = JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8')) as { totals: { keep_ratio: number } };
      const cal = JSON.parse(readFileSync(join(dir, 'cal', 'calibration.json'), 'utf8')) as CalibrationJson;
      expect(Math.abs(stats.totals.keep_ratio - keep), `kept ${stats.totals.keep_ratio}`).toBeLessThanOrEqual(keep / 10);
      expect(cal.dIntra.every((d: number) => d > 2e-5 && d < 5e-4), `dIntra ${cal.dIntra.join(",")}`).toBe(true);
      expect(cal.histogram.scale).toBe('log');
    });
  }

  it('a version-1 calibration (linear bins) still loads; the run warns that its bins cannot resolve these clusters', { timeout: 120_000 }, async () => {
    const v1Dir = join(dir, 'cal-v1');
    cpSync(join(dir, 'cal'), v1Dir, { recursive: true });
    const body = JSON.parse(readFileSync(join(v1Dir, 'calibration.json'), 'utf8')) as CalibrationJson;
    // What version 1 wrote for these clusters: 2,048 linear bins of width 9.8e-4, every member in bin 0.
    const bins = 2048;
    const counts = Buffer.alloc(k * bins * 4);
    body.counts.forEach((c: number, j: number) => counts.writeUInt32LE(c, j * bins * 4));
    const { scale: _none, ...histogram } = { ...body.histogram, bins, counts: counts.toString('base64') };
    const v1: Record<string, unknown> = { ...body, version: 1, histogram };
    delete v1.checksum;
    v1.checksum = `sha256:${sha256Hex(JSON.stringify(v1))}`;
    writeFileSync(join(v1Dir, 'calibration.json'), JSON.stringify(v1));
    const out = join(dir, 'out-v1');
    const r = await dbprune(['run', '--embeddings', join(dir, 'stream.npy'), '--centroids', join(v1Dir, 'centroids.npy'), '--keep', '0.277', '--out', out, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: the calibration in .*cal-v1 has linear δ bins .* refit it/);
    const own = await dbprune(['run', '--embeddings', join(dir, 'stream.npy'), '--centroids', join(dir, 'cal', 'centroids.npy'), '--keep', '0.277', '--out', join(dir, 'out-own'), '-q']);
    expect(own.stderr).not.toMatch(/linear δ bins/);
  });
});
