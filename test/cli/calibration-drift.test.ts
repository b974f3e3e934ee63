/**
 * Streaming with a calibration fitted on another distribution, through the built CLI (issue 11,
 * item 14): the keep ratio still lands on the target, and the mismatch is reported on stderr, in
 * stats.json (`streaming.calibration_check`) and in report.html. A calibration fitted on the
 * stream's own distribution raises nothing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { writeNpy } from '../../src/io/npy.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { unitRows } from '../helpers/vectors.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-caldrift-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const k = 8;
const dim = 16;

/** n unit rows around the centroids: cluster j drawn with weight weights[j], spread `noise`. */
function clustered(rng: Rng, centroids: Float32Array, weights: number[], n: number, noise: number): Float32Array {
  const total = weights.reduce((a, b) => a + b, 0);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let u = rng.next() * total;
    let j = 0;
    while (j < k - 1 && u >= weights[j]) u -= weights[j++];
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = centroids[j * dim + t] + noise * rng.normal();
      out[i * dim + t] = v;
      s += v * v;
    }
    for (let t = 0; t < dim; t++) out[i * dim + t] /= Math.sqrt(s);
  }
  return out;
}

/** The parts of stats.json these tests read. */
interface StatsJson {
  totals: { keep_ratio: number };
  streaming: { calibration_check: { agrees: boolean; mix_dispersion: number } };
}

function readStats(out: string): StatsJson {
  return JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8')) as StatsJson;
}

/** The built CLI (`npm run build` first) through the shared runner. */
function dbprune(args: string[]): Promise<CliResult> {
  return runCli(args, { built: true, timeoutMs: 115_000 });
}

beforeAll(async () => {
  const rng = new Rng(21);
  const centroids = unitRows(rng, k, dim);
  await writeNpy(join(dir, 'centroids.npy'), centroids, [k, dim]);
  // "another distribution": two concepts dominate and the clusters are tighter
  await writeNpy(join(dir, 'other.npy'), clustered(rng, centroids, [40, 40, 1, 1, 1, 1, 1, 1], 4000, 0.15), [4000, dim]);
  await writeNpy(join(dir, 'stream.npy'), clustered(rng, centroids, [1, 1, 1, 1, 1, 1, 1, 1], 8000, 0.3), [8000, dim]);
  await writeNpy(join(dir, 'stream-sample.npy'), clustered(rng, centroids, [1, 1, 1, 1, 1, 1, 1, 1], 4000, 0.3), [4000, dim]);
  for (const [name, emb] of [
    ['cal-other', 'other.npy'],
    ['cal-own', 'stream-sample.npy'],
  ]) {
    const r = await dbprune(['fit', '--embeddings', join(dir, emb), '--centroids', join(dir, 'centroids.npy'), '--sample', '4000', '--out', join(dir, name), '-q']);
    expect(r.code, r.stderr).toBe(0);
  }
}, 120_000);

describe('streaming with a calibration from another distribution', () => {
  for (const keep of [0.3, 0.1]) {
    it(`keep ${keep}: the keep ratio lands within ±${keep / 10} of the target; stderr, stats.json and report.html say the calibration disagrees`, { timeout: 120_000 }, async () => {
      const out = join(dir, `out-other-${keep}`);
      const r = await dbprune(['run', '--embeddings', join(dir, 'stream.npy'), '--centroids', join(dir, 'cal-other', 'centroids.npy'), '--keep', String(keep), '--out', out, '-q']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/warning: the calibration in .*cal-other disagrees with this stream/);
      const stats = readStats(out);
      expect(Math.abs(stats.totals.keep_ratio - keep)).toBeLessThanOrEqual(keep / 10);
      expect(stats.streaming.calibration_check.agrees).toBe(false);
      expect(stats.streaming.calibration_check.mix_dispersion).toBeGreaterThan(3);
      expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('id="calibration-warning"');
    });
  }

  it('a calibration fitted on the stream\'s own distribution: no warning, agrees, same target', { timeout: 120_000 }, async () => {
    const out = join(dir, 'out-own');
    const r = await dbprune(['run', '--embeddings', join(dir, 'stream.npy'), '--centroids', join(dir, 'cal-own', 'centroids.npy'), '--keep', '0.3', '--out', out, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/disagrees/);
    const stats = readStats(out);
    expect(stats.streaming.calibration_check.agrees).toBe(true);
    expect(Math.abs(stats.totals.keep_ratio - 0.3)).toBeLessThanOrEqual(0.03);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).not.toContain('id="calibration-warning"');
  });
});
