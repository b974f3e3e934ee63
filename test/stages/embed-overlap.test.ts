/**
 * The embed stage with the real bundled encoder (MobileNetV2, 224 px): inference runs off the main
 * thread, a partial batch does not queue behind a running one, and the rows per session run do not
 * change the embeddings.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import type { DecodedSample, EmbeddingBatch } from '../../src/core/sample.js';
import { embed } from '../../src/stages/embed.js';
import { runThrough } from './image-fixtures.js';

const realModel = join(import.meta.dirname, '..', '..', 'data-samples', 'openclipart', 'model');
const SIDE = 224;

function samples(n: number, from = 0): DecodedSample[] {
  return Array.from({ length: n }, (_, j) => {
    const i = from + j;
    const px = new Float32Array(3 * SIDE * SIDE);
    for (let k = 0; k < px.length; k++) px[k] = ((k * (i + 3)) % 251) / 251;
    return { key: `k${i}`, pixels: px };
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('embed with the real encoder', () => {
  it('keeps the event loop free while the model runs (the session is on a worker thread)', async () => {
    const stage = embed({ model: realModel, batchSize: 48, rowsPerRun: 48 });
    const batches: EmbeddingBatch[] = [];
    stage.on('data', (b: EmbeddingBatch) => batches.push(b));
    await stage.ready;
    // A 48-row run of MobileNetV2 takes hundreds of ms on 2 cores: on the main thread, no timer
    // would fire until it returned.
    let ticks = 0;
    let longestGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const t0 = performance.now();
    for (const s of samples(48)) stage.write(s);
    stage.end();
    await new Promise((resolve) => stage.on('end', resolve));
    clearInterval(timer);
    const runMs = performance.now() - t0;
    expect(batches.map((b) => b.rows.length)).toEqual([48]);
    expect(runMs).toBeGreaterThan(100);
    // Timers kept firing through the run (generous bounds for a loaded machine).
    expect(ticks).toBeGreaterThan(runMs / 5 / 4);
    expect(longestGap).toBeLessThan(runMs / 2);
  });

  it('a partial batch whose delay passed waits for the running batch and keeps taking rows', async () => {
    const stage = embed({ model: realModel, batchSize: 64, maxDelayMs: 5 });
    const sizes: number[] = [];
    stage.on('data', (b: EmbeddingBatch) => sizes.push(b.rows.length));
    await stage.ready;
    for (const s of samples(24)) stage.write(s); // 16 rows run at once, for well over 100 ms
    await sleep(30);
    // Rows trickle in while the model is busy, one every 4 ms: each would have become a batch of one
    // or two queued behind the running one; now the open batch keeps taking them.
    for (const s of samples(24, 24)) {
      stage.write(s);
      await sleep(4);
    }
    stage.end();
    await new Promise((resolve) => stage.on('end', resolve));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(48);
    expect(sizes.length).toBeLessThanOrEqual(4);
  });

  it('gives the same embeddings whatever the rows per run; validates rowsPerRun', async () => {
    const input = samples(9);
    const rows = async (rowsPerRun: number): Promise<Float32Array> => {
      const out = await runThrough<EmbeddingBatch>(input, embed({ model: realModel, batchSize: 9, rowsPerRun }));
      expect(out.map((b) => b.rows.length)).toEqual([9]);
      return out[0].embeddings;
    };
    const one = await rows(1);
    expect(await rows(4)).toEqual(one);
    expect(await rows(9)).toEqual(one);
    expect(() => embed({ model: realModel, rowsPerRun: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });
});
