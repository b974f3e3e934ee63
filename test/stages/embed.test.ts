import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import type { DecodedSample, EmbeddingBatch } from '../../src/core/sample.js';
import { embed } from '../../src/stages/embed.js';
import { buildTinyVisionModel, writeTinyModel } from '../../scripts/make-model.js';
import { runThrough, tempDir } from './image-fixtures.js';
import { Rng } from '../../src/core/rng.js';

let tmp: ReturnType<typeof tempDir>;
let modelDir: string;
beforeAll(() => {
  tmp = tempDir();
  modelDir = join(tmp.dir, 'model');
  writeTinyModel(modelDir);
});
afterAll(() => tmp.cleanup());

function samples(n: number, size = 32, seed = 1): DecodedSample[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const px = new Float32Array(3 * size * size);
    const base = [rng.normal(), rng.normal(), rng.normal()];
    for (let c = 0; c < 3; c++) for (let j = 0; j < size * size; j++) px[c * size * size + j] = base[c] + 0.3 * rng.normal();
    return { key: `k${i}`, shard: 's.tar', caption: `c${i}`, pixels: px };
  });
}

function rowsOf(batches: EmbeddingBatch[]): { key: string; vec: Float32Array; err?: string }[] {
  return batches.flatMap((b) =>
    b.rows.map((r, i) => ({ key: r.key, vec: b.embeddings.subarray(i * b.dim, (i + 1) * b.dim), err: b.errors?.[i]?.reason })),
  );
}

const norm = (v: Float32Array): number => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

describe('embed', () => {
  it('emits L2-normalised rows in input order, error rows as zeros with errors[i]', async () => {
    const input: DecodedSample[] = samples(70);
    input.splice(5, 0, { key: 'bad', error: { reason: 'error:decode', message: 'corrupt' } });
    const out = await runThrough<EmbeddingBatch>(input, embed({ model: modelDir, batchSize: 32 }));
    const rows = rowsOf(out);
    expect(rows.map((r) => r.key)).toEqual(input.map((s) => s.key)); // rows in = rows out
    expect(out.every((b) => b.dim === 64 && b.rows.length <= 32)).toBe(true);
    for (const r of rows) {
      if (r.key === 'bad') {
        expect(r.err).toBe('error:decode');
        expect(norm(r.vec)).toBe(0);
      } else {
        expect(r.err).toBeUndefined();
        expect(Math.abs(norm(r.vec) - 1)).toBeLessThan(1e-5);
      }
    }
    expect(out[0].rows[0]).toEqual({ key: 'k0', shard: 's.tar', caption: 'c0' });
    // Different inputs, different embeddings; same input, same embedding (batch-independent).
    const again = rowsOf(await runThrough<EmbeddingBatch>(input.slice(10, 13), embed({ model: modelDir, batchSize: 1 })));
    const byKey = new Map(rows.map((r) => [r.key, r.vec]));
    for (const r of again) for (let k = 0; k < 64; k++) expect(r.vec[k]).toBeCloseTo((byKey.get(r.key) as Float32Array)[k], 5);
    const cos = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i], 0);
    expect(cos(rows[0].vec, rows[1].vec)).toBeLessThan(0.999);
  });

  it('flushes a partial batch after maxDelayMs without waiting for the end of input', async () => {
    const stage = embed({ model: join(modelDir, 'onnx', 'vision_model.onnx'), batchSize: 256, maxDelayMs: 20 });
    for (const s of samples(3)) stage.write(s);
    const [batch] = (await once(stage, 'data')) as [EmbeddingBatch];
    expect(batch.rows.map((r) => r.key)).toEqual(['k0', 'k1', 'k2']);
    stage.end();
    const rest: EmbeddingBatch[] = [];
    stage.on('data', (b: EmbeddingBatch) => rest.push(b));
    await once(stage, 'end');
    expect(rest).toEqual([]);
  });

  it('reads token-sequence outputs [N, T, D] by their first token, and static batch models', async () => {
    const dir = join(tmp.dir, 'tokens');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.onnx'), buildTinyVisionModel({ output: 'last_hidden_state' }));
    writeFileSync(join(dir, 'fixed.onnx'), buildTinyVisionModel({ batch: 4 }));
    const input = samples(10);
    const ref = rowsOf(await runThrough<EmbeddingBatch>(input, embed({ model: modelDir })));
    const tok = rowsOf(await runThrough<EmbeddingBatch>(input, embed({ model: join(dir, 'model.onnx'), imageSize: 32 })));
    const fixed = rowsOf(await runThrough<EmbeddingBatch>(input, embed({ model: join(dir, 'fixed.onnx'), batchSize: 7 })));
    for (const rows of [tok, fixed]) {
      expect(rows.map((r) => r.key)).toEqual(ref.map((r) => r.key));
      rows.forEach((r, i) => r.vec.forEach((v, k) => expect(v).toBeCloseTo(ref[i].vec[k], 5)));
    }
  });

  it('fails loudly when the decode size does not match the model, or the model is missing', async () => {
    await expect(runThrough(samples(2, 16), embed({ model: modelDir }))).rejects.toMatchObject({ code: ErrorCodes.DIM_MISMATCH });
    await expect(runThrough(samples(1), embed({ model: join(tmp.dir, 'nope') }))).rejects.toMatchObject({ code: ErrorCodes.MODEL });
    await expect(runThrough(samples(1), embed({ model: modelDir, outputName: 'logits' }))).rejects.toMatchObject({ code: ErrorCodes.MODEL });
    expect(() => embed({ model: modelDir, batchSize: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });

  it('an all-error batch needs no inference and still comes out', async () => {
    const input: DecodedSample[] = [
      { key: 'x', error: { reason: 'error:download', message: 'gone' } },
      { key: 'y', error: { reason: 'error:missing-image', message: 'none' } },
    ];
    const out = await runThrough<EmbeddingBatch>(input, embed({ model: modelDir }));
    expect(rowsOf(out).map((r) => [r.key, r.err])).toEqual([
      ['x', 'error:download'],
      ['y', 'error:missing-image'],
    ]);
    expect(out[0].embeddings).toHaveLength(2 * 64);
  });
});
