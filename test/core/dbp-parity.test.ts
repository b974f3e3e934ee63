/**
 * Parity of the core DBP math with the golden case (../shared/fixtures/dbp-small), computed by an
 * independent implementation. Assignment here is the reference convention written out in float64
 * (lowest index wins ties), so this test pins the planning/selection math on its own; the exact
 * `prune` job is checked against the same golden files in test/pipelines.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createDecider, planDbp } from '../../src/core/dbp.js';
import { normalizedCopy } from '../../src/core/vector.js';
import { readNpyFloat32 } from '../../src/io/npy.js';
import { dbpSmallDir, loadFixtureKeys, loadGolden } from '../helpers/fixture.js';

async function referenceRecords() {
  const e = await readNpyFloat32(join(dbpSmallDir, 'embeddings.npy'));
  const c = await readNpyFloat32(join(dbpSmallDir, 'centroids.npy'));
  const dim = e.cols;
  const k = c.rows;
  const centroids = normalizedCopy(c.data, k, dim);
  const cluster = new Int32Array(e.rows);
  const distance = new Float32Array(e.rows);
  for (let i = 0; i < e.rows; i++) {
    let best = -Infinity;
    let arg = -1;
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let t = 0; t < dim; t++) s += e.data[i * dim + t] * centroids[j * dim + t];
      if (s > best) {
        best = s;
        arg = j;
      }
    }
    cluster[i] = arg;
    distance[i] = 1 - best;
  }
  return { records: { cluster, distance, n: e.rows }, centroids, k, dim };
}

describe.each([
  ['expected-keep0.3.json'],
  ['expected-keep0.1-T0.1.json'],
])('golden parity %s', (file) => {
  it('reproduces per-cluster statistics, quotas and the kept key set', async () => {
    const golden = loadGolden(file);
    const keys = loadFixtureKeys();
    const { records, centroids, k, dim } = await referenceRecords();
    const plan = planDbp(records, centroids, k, dim, {
      keepRatio: golden.params.keep_ratio,
      temperature: golden.params.temperature,
      numNNs: golden.params.num_nns,
      balance: golden.params.cls_bal_ratio,
      which: golden.params.which,
    });
    expect(plan.nTarget).toBe(golden.totals.n_target);
    expect(plan.quota.minSamples).toBe(golden.totals.min_samples);
    expect(Array.from(plan.size)).toEqual(golden.clusters.size);
    for (let j = 0; j < k; j++) {
      expect(plan.dIntra[j]).toBeCloseTo(golden.clusters.d_intra[j], 6);
      expect(plan.dInter[j]).toBeCloseTo(golden.clusters.d_inter[j], 6);
      expect(plan.complexity[j]).toBeCloseTo(golden.clusters.complexity[j], 6);
      expect(plan.prob[j]).toBeCloseTo(golden.clusters.prob[j], 7);
      expect(plan.quota.real[j]).toBeCloseTo(golden.clusters.quota_real[j], 4);
    }
    expect(plan.quota.lambda).toBeCloseTo(golden.totals.lambda, 5);
    expect(Array.from(plan.quota.quota)).toEqual(golden.clusters.quota);

    const decide = createDecider(plan);
    const kept: string[] = [];
    for (let i = 0; i < records.n; i++) if (decide.keep(records.cluster[i], records.distance[i], i)) kept.push(keys[i]);
    kept.sort();
    expect(kept.length).toBe(golden.totals.n_kept);
    expect(kept).toEqual([...golden.kept_keys].sort());
  });
});
