/**
 * SemDeDup wired into both modes:
 * - exact `prune --dedup-eps` on the golden fixture: the reference rule's duplicates, N_target over
 *   the deduplicated rows, one manifest row per sample with `duplicate_of`;
 * - streaming `run` over real shards into which exact and near duplicates of bundled images were
 *   injected: they are found from the images, end to end.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { pruneExact } from '../../pipelines/exact-prune.js';
import { shardsToManifest } from '../../pipelines/shards-to-manifest.js';
import type { ImageSample } from '../../src/core/sample.js';
import { readManifest } from '../../src/io/manifest.js';
import { readTarSamples } from '../../src/io/tar.js';
import { dbpSmallDir, repoRoot } from '../helpers/fixture.js';
import { readJson } from '../helpers/json.js';
import { makeTar, tempDir, writeFile, type Member } from '../stages/image-fixtures.js';

const tmp = tempDir('dbprune-dedup-e2e-');
afterAll(() => tmp.cleanup());

describe('SemDeDup end to end', () => {
  it('exact prune --dedup-eps removes the fixture duplicates before DBP and reports every ε', async () => {
    const out = join(tmp.dir, 'exact');
    const { stats, files } = await pruneExact({
      embeddings: join(dbpSmallDir, 'embeddings.npy'),
      keys: join(dbpSmallDir, 'keys.txt'),
      centroids: join(dbpSmallDir, 'centroids.npy'),
      out,
      keepRatio: 0.3,
      dedupEps: [0.001, 0.01],
      format: 'jsonl',
      report: false,
    });
    const dd = stats.dedup as { removed: number[]; kept_fraction: number[]; eps: number[] };
    expect(dd.eps).toEqual([0.001, 0.01]);
    expect(dd.removed[0]).toBe(1000); // the fixture's 5% exact or near duplicates
    expect(dd.removed[1]).toBeGreaterThanOrEqual(dd.removed[0]);
    expect(stats.totals.duplicates).toBe(1000);
    expect(stats.totals.valid).toBe(19000);
    expect(stats.totals.n_target).toBe(Math.floor(0.3 * 19000));
    expect(stats.totals.kept).toBe(stats.totals.n_target);
    const rows = readManifest(files.manifest);
    expect(rows.length).toBe(20000);
    const dups = rows.filter((r) => r.reason === 'duplicate');
    expect(dups.length).toBe(1000);
    const keys = new Set(rows.map((r) => r.key));
    expect(dups.every((r) => r.decision === 'drop' && r.cluster >= 0 && r.duplicate_of !== null && keys.has(r.duplicate_of) && r.duplicate_of !== r.key)).toBe(true);
    // A duplicate and what it duplicates share a cluster.
    const clusterOf = new Map(rows.map((r) => [r.key, r.cluster]));
    expect(dups.every((r) => clusterOf.get(r.duplicate_of as string) === r.cluster)).toBe(true);
  });

  it('streaming run finds exact and near duplicates injected into shards, from the images', async () => {
    const originals: ImageSample[] = [];
    for await (const s of readTarSamples(createReadStream(join(repoRoot, 'data-samples', 'shards', '00001.tar')))) originals.push(s);
    const picked = [originals[3], originals[40], originals[77], originals[150]];
    const members: Member[] = [];
    const injected = new Map<string, string>(); // copy key → original key
    for (const [i, s] of picked.entries()) {
      const exact = `dupx${i}`;
      members.push({ name: `${exact}.${s.imageExt}`, data: s.image as Buffer }, { name: `${exact}.txt`, data: `copy of ${s.key}` });
      injected.set(exact, s.key);
      // A near duplicate: the same picture re-encoded as a lower-quality JPEG.
      const near = `dupn${i}`;
      members.push({ name: `${near}.jpg`, data: await sharp(s.image as Buffer).flatten({ background: '#ffffff' }).jpeg({ quality: 70 }).toBuffer() });
      injected.set(near, s.key);
    }
    const dupShard = writeFile(tmp.dir, 'dups.tar', await makeTar(members));
    const r = await shardsToManifest({
      inputs: [join(repoRoot, 'data-samples', 'shards', '00001.tar'), dupShard],
      model: join(repoRoot, 'data-samples', 'model'),
      centroids: join(repoRoot, 'data-samples', 'centroids', 'centroids.npy'),
      keepRatio: 0.3,
      // Re-encoding at JPEG q70 moves these images by up to δ ≈ 0.003 in the tiny model's space.
      dedupEps: [0.005],
      out: join(tmp.dir, 'stream'),
      format: 'jsonl',
    });
    const rows = readManifest(r.files.manifest as string);
    expect(rows.length).toBe(200 + members.filter((m) => !m.name.endsWith('.txt')).length);
    const byKey = new Map(rows.map((row) => [row.key, row]));
    for (const [copy, original] of injected) {
      const row = byKey.get(copy);
      expect(row?.reason, copy).toBe('duplicate');
      // It points at the original, or — when the original was itself dropped as a duplicate — at
      // the kept sample the original duplicates (only kept samples are compared against).
      const orig = byKey.get(original);
      const expected = orig?.reason === 'duplicate' ? orig.duplicate_of : original;
      expect(row?.duplicate_of, copy).toBe(expected);
      expect(byKey.get(row?.duplicate_of as string)?.reason).not.toBe('duplicate');
    }
    expect(r.stats.totals.duplicates).toBeGreaterThanOrEqual(injected.size);
    expect(readJson<{ dedup: { eps: number[] } }>(r.files.stats as string).dedup.eps).toEqual([0.005]);
  });
});
