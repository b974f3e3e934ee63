// Float32ArrayPool with a bound on the buffers out (the streaming path's read-ahead limit) and
// readNpyRows reading through it: real .npy files, real waits.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Float32ArrayPool, readNpyRows, writeNpy, type NpyRowBatch } from '../../src/io/npy.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-npy-pool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Resolves to 'pending' when `p` has not settled after a few turns of the event loop. */
async function state(p: Promise<unknown>): Promise<'settled' | 'pending'> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, 30));
  return settled ? 'settled' : 'pending';
}

describe('Float32ArrayPool', () => {
  it('waits in acquireWhenFree while maxLive buffers are out, and a release lets one waiter in', async () => {
    const pool = new Float32ArrayPool(2, 2);
    const a = await pool.acquireWhenFree(8);
    const b = await pool.acquireWhenFree(8);
    expect(pool.live).toBe(2);
    const third = pool.acquireWhenFree(8);
    const fourth = pool.acquireWhenFree(8);
    expect(await state(third)).toBe('pending');
    pool.release(a);
    expect(await state(third)).toBe('settled');
    expect(await third).toBe(a); // the released buffer is handed out again
    expect(await state(fourth)).toBe('pending');
    pool.release(b);
    expect(await fourth).toBe(b);
    expect(pool.live).toBe(2);
  });

  it('close() ends every wait; an aborted wait rejects with ERR_DBPRUNE_ABORTED', async () => {
    const pool = new Float32ArrayPool(1, 1);
    await pool.acquireWhenFree(4);
    const ac = new AbortController();
    const aborted = pool.acquireWhenFree(4, ac.signal);
    const closed = pool.acquireWhenFree(4);
    ac.abort(new Error('stop'));
    await expect(aborted).rejects.toMatchObject({ code: 'ERR_DBPRUNE_ABORTED' });
    expect(await state(closed)).toBe('pending');
    pool.close();
    expect((await closed).length).toBe(4);
    expect((await pool.acquireWhenFree(4)).length).toBe(4); // closed: no more waiting
  });

  it('without maxLive never waits; a full pool drops an idle buffer of another length for a new one', async () => {
    const pool = new Float32ArrayPool(2);
    const bufs = await Promise.all(Array.from({ length: 10 }, () => pool.acquireWhenFree(16)));
    expect(pool.live).toBe(10);
    const short = pool.acquire(5);
    pool.release(short);
    pool.release(bufs[0]);
    pool.release(bufs[1]); // full: the short buffer makes room
    expect(pool.acquire(16)).toBe(bufs[0]);
    expect(pool.acquire(16)).toBe(bufs[1]);
    expect(pool.acquire(5)).not.toBe(short);
    expect(() => new Float32ArrayPool(2, 0)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });
});

describe('readNpyRows with a bounded pool', () => {
  it('reads no further ahead than the pool allows, and yields the same rows', async () => {
    const rows = 40;
    const cols = 3;
    const x = Float32Array.from({ length: rows * cols }, (_, i) => i * 0.5);
    const p = join(dir, 'x.npy');
    await writeNpy(p, x, [rows, cols], 'float32');
    const pool = new Float32ArrayPool(3, 3);
    const it = readNpyRows(p, { batchRows: 4, pool });
    const batchOf = (r: IteratorResult<NpyRowBatch>): NpyRowBatch => {
      if (r.done) throw new Error('ended early');
      return r.value;
    };
    const held = [batchOf(await it.next()), batchOf(await it.next())];
    // two batches held by the consumer, the read-ahead holds the third buffer: the next read waits
    expect(pool.live).toBe(3);
    const next = it.next();
    expect(await state(next)).toBe('settled'); // the third batch was read ahead
    const fourth = it.next();
    expect(await state(fourth)).toBe('pending'); // its buffer is not free
    expect(pool.live).toBe(3);
    const got: number[] = [];
    for (const b of held) {
      got.push(...b.data);
      pool.release(b.data);
    }
    const third = batchOf(await next);
    got.push(...third.data);
    pool.release(third.data);
    for (let r = await fourth; !r.done; r = await it.next()) {
      got.push(...r.value.data);
      pool.release(r.value.data);
      expect(pool.live).toBeLessThanOrEqual(3);
    }
    expect(got).toEqual(Array.from(x));
    expect(pool.live).toBe(0);
  });
});
