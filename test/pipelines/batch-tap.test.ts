import { describe, expect, it } from 'vitest';
import { BatchTap } from '../../pipelines/batch-tap.js';

describe('BatchTap', () => {
  it('hands every batch over in order while the producer runs, holding at most maxQueued', async () => {
    const tap = new BatchTap<number>(2);
    const seen: number[] = [];
    let maxQueuedSeen = 0;
    let pushed = 0;
    const consumer = (async () => {
      for await (const b of tap) {
        maxQueuedSeen = Math.max(maxQueuedSeen, pushed - seen.length);
        seen.push(b);
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < 50; i++) {
      await tap.push(i);
      pushed++;
    }
    tap.end();
    await consumer;
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(maxQueuedSeen).toBeLessThanOrEqual(2);
  });

  it('a consumer that stops early never blocks the producer', async () => {
    const tap = new BatchTap<number>(1);
    const consumer = (async () => {
      for await (const b of tap) if (b === 3) break;
    })();
    for (let i = 0; i < 20; i++) await tap.push(i);
    tap.end();
    await consumer;
  });

  it("the producer's failure reaches the consumer after the queued batches", async () => {
    const tap = new BatchTap<number>(8);
    await tap.push(1);
    await tap.push(2);
    tap.fail(new Error('read failed'));
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const b of tap) seen.push(b);
      })(),
    ).rejects.toThrow('read failed');
    expect(seen).toEqual([1, 2]);
  });
});
