/**
 * The exact `prune` job against the golden case from an independent implementation
 * (../shared/fixtures/dbp-small): the same quotas and the same kept keys, through the real
 * nearest-centroid backend, npy reader, key reader and manifest writers.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pruneExact } from '../../pipelines/exact-prune.js';
import { readManifest } from '../../src/io/manifest.js';
import type { RunStats } from '../../src/io/stats.js';
import { dbpSmallDir, loadGolden } from '../helpers/fixture.js';
import { readJson } from '../helpers/json.js';

describe.each([
  ['expected-keep0.3.json', 'ort', 'parquet'],
  ['expected-keep0.1-T0.1.json', 'js', 'jsonl'],
] as const)('exact prune on the golden case %s (backend %s, %s)', (file, backend, format) => {
  it('writes the golden quotas, the golden kept keys and one manifest row per sample', async () => {
    const golden = loadGolden(file);
    const out = mkdtempSync(join(tmpdir(), 'dbprune-exact-'));
    const { stats, files } = await pruneExact({
      embeddings: join(dbpSmallDir, 'embeddings.npy'),
      keys: join(dbpSmallDir, 'keys.txt'),
      centroids: join(dbpSmallDir, 'centroids.npy'),
      out,
      keepRatio: golden.params.keep_ratio,
      temperature: golden.params.temperature,
      numNNs: golden.params.num_nns,
      balance: golden.params.cls_bal_ratio,
      which: golden.params.which,
      backend,
      format,
    });
    expect(stats.clusters.quota).toEqual(golden.clusters.quota);
    expect(stats.clusters.n).toEqual(golden.clusters.size);
    expect(stats.clusters.kept).toEqual(golden.clusters.quota);
    expect(stats.totals.n_target).toBe(golden.totals.n_target);

    const kept = readFileSync(files.kept, 'utf8').split('\n').filter(Boolean).sort();
    expect(kept).toEqual([...golden.kept_keys].sort());

    const rows = readManifest(files.manifest);
    expect(rows.length).toBe(golden.totals.n);
    expect(new Set(rows.map((r) => r.key)).size).toBe(golden.totals.n);
    const manifestKept = rows.filter((r) => r.decision === 'keep').map((r) => r.key).sort();
    expect(manifestKept).toEqual(kept);
    expect(rows.every((r) => r.reason === 'dbp' && r.cluster >= 0 && r.distance !== null)).toBe(true);

    const onDisk = readJson<RunStats>(files.stats);
    expect(onDisk.clusters.quota).toEqual(golden.clusters.quota);
  });
});
