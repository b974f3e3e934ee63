// The streaming embeddings pipeline reads its .npy batches into a bounded buffer pool that the tail
// gives back past assign (issue 16, peak RSS). These check that a reader waiting for a free buffer
// never hangs a run that fails or is stopped, and that every row still comes out exactly once.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { writeNpy } from '../../src/io/npy.js';
import { embeddingsToManifest, READ_AHEAD_BATCHES } from '../../pipelines/embeddings-to-manifest.js';
import { unitRows } from '../helpers/vectors.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-e2m-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const k = 8;
const dim = 16;
const n = 600;

function lines(): { sink: Writable; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { sink, text: () => chunks.join('') };
}

/** Fails the test instead of hanging when `p` does not settle in time. */
function settlesWithin<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`did not settle in ${ms} ms`)), ms))]);
}

describe('embeddingsToManifest with pooled, bounded batches', () => {
  const rng = new Rng(7);
  const c = unitRows(rng, k, dim);
  const x = unitRows(rng, n, dim);

  it('writes every row once with batches far more numerous than the pool (same rows as a single batch)', async () => {
    await writeNpy(join(dir, 'x.npy'), x, [n, dim], 'float32');
    await writeNpy(join(dir, 'c.npy'), c, [k, dim], 'float32');
    const small = lines();
    const r = await embeddingsToManifest({ embeddings: join(dir, 'x.npy'), centroids: join(dir, 'c.npy'), keepRatio: 0.4, stdout: small.sink, batchRows: 7 });
    expect(r.stats.totals.samples).toBe(n);
    const keys = small
      .text()
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { key: string }).key);
    expect(keys).toEqual(Array.from({ length: n }, (_, i) => String(i).padStart(9, '0')));
    const one = lines();
    await embeddingsToManifest({ embeddings: join(dir, 'x.npy'), centroids: join(dir, 'c.npy'), keepRatio: 0.4, stdout: one.sink, batchRows: n });
    expect(small.text()).toBe(one.text());
  });

  it('a batch that fails in assign ends the run with its error', async () => {
    const wrong = unitRows(rng, n, 8);
    await writeNpy(join(dir, 'x8.npy'), wrong, [n, 8], 'float32');
    await writeNpy(join(dir, 'c16.npy'), c, [k, dim], 'float32');
    const out = lines();
    const run = embeddingsToManifest({ embeddings: join(dir, 'x8.npy'), centroids: join(dir, 'c16.npy'), keepRatio: 0.4, stdout: out.sink, batchRows: 2 });
    await expect(settlesWithin(run, 20_000)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_DIM_MISMATCH' });
  });

  it('an output that stalls and then fails ends the run with its error, no reader left waiting', async () => {
    await writeNpy(join(dir, 'x.npy'), x, [n, dim], 'float32');
    await writeNpy(join(dir, 'c.npy'), c, [k, dim], 'float32');
    // Every write is held, then fails: the stages fill up behind it while the pool (2 per worker +
    // READ_AHEAD_BATCHES buffers) bounds the reader, which must not keep the run from ending.
    const stalled = new Writable({
      write(_chunk: Buffer | string, _enc, cb) {
        setTimeout(() => cb(new Error('disk full')), 300);
      },
    });
    const run = embeddingsToManifest({ embeddings: join(dir, 'x.npy'), centroids: join(dir, 'c.npy'), keepRatio: 0.4, stdout: stalled, batchRows: 2 });
    await expect(settlesWithin(run, 20_000)).rejects.toThrow(/disk full/);
    expect(READ_AHEAD_BATCHES).toBeGreaterThanOrEqual(1);
  });

  it('stopping a run mid-way ends it with ERR_DBPRUNE_ABORTED, not a hang', async () => {
    await writeNpy(join(dir, 'x.npy'), x, [n, dim], 'float32');
    await writeNpy(join(dir, 'c.npy'), c, [k, dim], 'float32');
    const ac = new AbortController();
    const out = lines();
    const run = embeddingsToManifest({
      embeddings: join(dir, 'x.npy'),
      centroids: join(dir, 'c.npy'),
      keepRatio: 0.4,
      stdout: out.sink,
      batchRows: 3,
      signal: ac.signal,
      onTail: (tail) => tail.onRows(() => ac.abort(new Error('enough'))),
    });
    await expect(settlesWithin(run, 20_000)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_ABORTED' });
  });
});
describe('embeddingsToManifest key check', () => {
  it('flags repeated keys of a keys file by default; checkKeys: false lets them through; row-index keys need none', async () => {
    const rng = new Rng(8);
    const m = 40;
    await writeNpy(join(dir, 'kx.npy'), unitRows(rng, m, dim), [m, dim], 'float32');
    await writeNpy(join(dir, 'kc.npy'), unitRows(rng, k, dim), [k, dim], 'float32');
    const keys = Array.from({ length: m }, (_, i) => `key-${i % 30}`); // the last 10 repeat the first 10
    writeFileSync(join(dir, 'keys.txt'), `${keys.join('\n')}\n`);
    const common = { embeddings: join(dir, 'kx.npy'), centroids: join(dir, 'kc.npy'), keepRatio: 0.5, batchRows: 8 };
    const checked = await embeddingsToManifest({ ...common, keys: join(dir, 'keys.txt'), stdout: lines().sink });
    expect(checked.stats.totals.errors).toEqual({ 'error:duplicate-key': 10 });
    const unchecked = await embeddingsToManifest({ ...common, keys: join(dir, 'keys.txt'), checkKeys: false, stdout: lines().sink });
    expect(unchecked.stats.totals.errors).toEqual({});
    const byIndex = lines();
    const rows = await embeddingsToManifest({ ...common, stdout: byIndex.sink });
    const seen = byIndex.text().trim().split('\n').map((l) => (JSON.parse(l) as { key: string }).key);
    expect(rows.stats.totals.samples).toBe(m);
    expect(new Set(seen).size).toBe(m); // row indices: distinct by construction
  });
});
