/** End to end over the bundled data-samples: shards → samples → tensors → embeddings. */
import { describe, expect, it } from 'vitest';
import type { EmbeddingBatch, ImageSample } from '../../src/core/sample.js';
import { resolveModel } from '../../src/io/model-config.js';
import { decode } from '../../src/stages/decode.js';
import { embed } from '../../src/stages/embed.js';
import { shardsToSamples } from '../../src/stages/fetch-shard.js';
import { shardSource } from '../../src/stages/shard-source.js';
import { runThrough } from './image-fixtures.js';

describe('data-samples through shardSource → shardsToSamples → decode → embed', () => {
  it('embeds all 1,200 samples; concepts separate in the tiny model', async () => {
    const samples = await runThrough<ImageSample>(shardSource({ inputs: 'data-samples/shards/{00000..00005}.tar' }), shardsToSamples());
    expect(samples).toHaveLength(1200);
    expect(samples.every((s) => !s.error && s.image && typeof s.json?.concept === 'string' && s.caption)).toBe(true);
    const exts = new Set(samples.map((s) => s.imageExt));
    expect([...exts].sort()).toEqual(['jpg', 'png', 'webp']);
    const concept = new Map(samples.map((s) => [s.key, s.json?.concept as string]));

    const { preprocessing } = await resolveModel('data-samples/model');
    expect(preprocessing?.size).toBe(32);
    const batches = await runThrough<EmbeddingBatch>(
      shardSource({ inputs: 'data-samples/shards' }),
      shardsToSamples(),
      decode({ ...preprocessing }),
      embed({ model: 'data-samples/model', batchSize: 64 }),
    );
    const keys = batches.flatMap((b) => b.rows.map((r) => r.key));
    expect(keys).toEqual(samples.map((s) => s.key)); // rows in = rows out, same order
    expect(batches.every((b) => !b.errors)).toBe(true);

    // Concept centroids from the embeddings. Tight concepts must be tight and recognisable;
    // diverse ones (noise, confetti) must be spread: that is what DBP's complexity measures.
    const dim = batches[0].dim;
    const byConcept = new Map<string, Float32Array[]>();
    for (const b of batches)
      b.rows.forEach((r, i) => {
        const c = concept.get(r.key) as string;
        byConcept.set(c, [...(byConcept.get(c) ?? []), b.embeddings.subarray(i * dim, (i + 1) * dim)]);
      });
    expect(byConcept.size).toBe(12);
    const centroid = new Map<string, Float64Array>();
    for (const [c, vs] of byConcept) {
      const s = new Float64Array(dim);
      for (const v of vs) v.forEach((x, k) => (s[k] += x));
      const n = Math.hypot(...s);
      centroid.set(c, s.map((x) => x / n));
    }
    const dot = (v: Float32Array, c: Float64Array): number => v.reduce((a, x, k) => a + x * c[k], 0);
    const spread = (c: string): number => {
      const vs = byConcept.get(c) as Float32Array[];
      return vs.reduce((a, v) => a + 1 - dot(v, centroid.get(c) as Float64Array), 0) / vs.length;
    };
    const accuracy = (c: string): number => {
      const vs = byConcept.get(c) as Float32Array[];
      let ok = 0;
      for (const v of vs) {
        let best = '';
        let bestDot = -Infinity;
        for (const [name, cen] of centroid) if (dot(v, cen) > bestDot) [best, bestDot] = [name, dot(v, cen)];
        if (best === c) ok++;
      }
      return ok / vs.length;
    };
    for (const c of ['red-square', 'blue-circle', 'night-sky', 'yellow-gradient', 'document', 'forest', 'waves', 'sunset']) {
      expect(accuracy(c), c).toBeGreaterThan(0.95);
    }
    expect(spread('red-square')).toBeLessThan(0.02);
    expect(spread('noise')).toBeGreaterThan(0.3);
    expect(spread('confetti')).toBeGreaterThan(0.3);
  });
});
