/**
 * Streaming DBP on tight clusters (issue 11, item 14): δ ~ 1e-4 per cluster (1 − cos of 512-d noise,
 * as bench/synth.ts makes), streamed with a calibration from the same distribution. With 2,048
 * linear sketch bins (width ~1e-3) every member fell in bin 0, θ_j could not split them and the
 * decider kept 9.4% for 27.7% asked (0.02% for 10%); the default log-spaced layout resolves them.
 */
import { describe, expect, it } from 'vitest';
import type { SelectionPolicy } from '../../src/core/select.js';
import { Rng } from '../../src/core/rng.js';
import { ClusterSketches } from '../../src/core/sketch.js';
import { StreamingDbp, type StreamingCalibration, type StreamingDbpSnapshot } from '../../src/core/streaming-dbp.js';

const k = 100;
const rng = new Rng(7);
/** Per-cluster mean δ in [1e-4, 7e-4]; members spread ±6% (relative) around it. */
const meanDelta = Float64Array.from({ length: k }, () => 1e-4 + 6e-4 * rng.next());
const dInter = Float64Array.from({ length: k }, () => 0.5 + rng.next());

function stream(n: number, seed: number, spread = 0.06): { cluster: Int32Array; distance: Float32Array } {
  const r = new Rng(seed);
  const cluster = new Int32Array(n);
  const distance = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const j = r.int(k);
    cluster[i] = j;
    distance[i] = meanDelta[j] * (1 + spread * r.normal());
  }
  return { cluster, distance };
}

function calibrationOf(s: { cluster: Int32Array; distance: Float32Array }): StreamingCalibration {
  const counts = new Float64Array(k);
  const sum = new Float64Array(k);
  const sketches = new ClusterSketches(k);
  sketches.addBatch(s.cluster, s.distance);
  s.cluster.forEach((j, i) => {
    counts[j]++;
    sum[j] += s.distance[i];
  });
  return { counts, dIntra: counts.map((c, j) => (c > 0 ? sum[j] / c : 0)), dInter, sketches, sampleSize: s.cluster.length };
}

describe('tight clusters (δ ~ 1e-4) with a matching calibration', () => {
  const cal = calibrationOf(stream(5000, 11));
  const s = stream(50_000, 12);
  it.each([
    ['hard', 0.277],
    ['hard', 0.1],
    ['easy', 0.277],
    ['easy', 0.1],
  ] as [SelectionPolicy, number][])('%s, keep %s: kept / seen within ±0.01 of the target', (which, keepRatio) => {
    const d = new StreamingDbp({ k, params: { keepRatio, which }, calibration: cal });
    for (let i = 0; i < s.cluster.length; i++) d.decide(s.cluster[i], s.distance[i]);
    expect(Math.abs(d.keptCount / d.seen - keepRatio), `kept ${d.keptCount / d.seen}`).toBeLessThanOrEqual(0.01);
  });
});

describe('clusters tighter than one sketch bin (±0.3% relative, as bench/synth.ts at 512-d)', () => {
  // Log bins are 0.82% wide: a bin holds a third of a cluster and no threshold splits it; members of
  // that bin are kept at the rate that meets the level (was 0.233 kept for 0.277 on the 1M synth set).
  const cal = calibrationOf(stream(5000, 13, 0.003));
  const s = stream(50_000, 14, 0.003);
  it.each([
    ['hard', 0.277],
    ['hard', 0.1],
    ['easy', 0.277],
    ['easy', 0.1],
  ] as [SelectionPolicy, number][])('%s, keep %s: kept / seen within ±0.01 of the target', (which, keepRatio) => {
    const d = new StreamingDbp({ k, params: { keepRatio, which }, calibration: cal });
    for (let i = 0; i < s.cluster.length; i++) d.decide(s.cluster[i], s.distance[i]);
    expect(Math.abs(d.keptCount / d.seen - keepRatio), `kept ${d.keptCount / d.seen}`).toBeLessThanOrEqual(0.01);
  });
});

describe('state saved before the log layout (no scale fields)', () => {
  it('restores with its linear sketches and decides as the original', () => {
    const sample = stream(2000, 21);
    const c = calibrationOf(sample);
    const linear = new ClusterSketches(k, 2048, 'linear');
    linear.addBatch(sample.cluster, sample.distance);
    const s = stream(6000, 22);
    const ref = new StreamingDbp({ k, params: { keepRatio: 0.3 }, calibration: { ...c, sketches: linear } });
    for (let i = 0; i < 3000; i++) ref.decide(s.cluster[i], s.distance[i]);
    // A snapshot from before `scale` existed: the two fields absent.
    const old = JSON.parse(JSON.stringify(ref.snapshot())) as { sketches: { scale?: string }; tuning: { sketchScale?: string } };
    delete old.sketches.scale;
    delete old.tuning.sketchScale;
    const restored = StreamingDbp.restore(old as unknown as StreamingDbpSnapshot);
    expect(restored.snapshot().sketches.scale).toBe('linear');
    for (let i = 3000; i < s.cluster.length; i++) expect(restored.decide(s.cluster[i], s.distance[i])).toBe(ref.decide(s.cluster[i], s.distance[i]));
  });
});
