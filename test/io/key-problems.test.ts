import { describe, expect, it } from 'vitest';
import type { SampleRef } from '../../src/core/sample.js';
import { findKeyProblems, hash52, KEY_DUPLICATE, KEY_OK, KEY_UNWRITABLE } from '../../src/io/key-problems.js';
import { asAsync } from '../helpers/iter.js';

function batches(refs: SampleRef[], size = 3): AsyncIterable<SampleRef[]> {
  const slices: SampleRef[][] = [];
  for (let i = 0; i < refs.length; i += size) slices.push(refs.slice(i, i + size));
  return asAsync(slices);
}

describe('findKeyProblems', () => {
  it('flags every later occurrence of a (shard, key) and keys with line breaks, exactly', async () => {
    const refs: SampleRef[] = [
      { shard: 'a', key: 'k1' },
      { shard: 'a', key: 'k2' },
      { shard: 'b', key: 'k1' }, // another shard: another sample
      { shard: 'a', key: 'k1' },
      { shard: 'a', key: 'x\ny' },
      { shard: 'a', key: 'k1' },
      { shard: 'a', key: 'x\ny' }, // unwritable first, not counted as a duplicate as well
    ];
    let reads = 0;
    const r = await findKeyProblems(() => (reads++, batches(refs)), refs.length);
    expect([...(r.flags ?? [])]).toEqual([KEY_OK, KEY_OK, KEY_OK, KEY_DUPLICATE, KEY_UNWRITABLE, KEY_DUPLICATE, KEY_UNWRITABLE]);
    expect([r.duplicates, r.unwritable, reads]).toEqual([2, 2, 2]);
  });

  it('reads the keys once and allocates no flags when every key is unique', async () => {
    const refs = Array.from({ length: 10_000 }, (_, i) => ({ shard: `s${i % 7}`, key: String(i) }));
    let reads = 0;
    const r = await findKeyProblems(() => (reads++, batches(refs, 1000)), refs.length);
    expect(r).toEqual({ flags: undefined, duplicates: 0, unwritable: 0 });
    expect(reads).toBe(1);
    const h = hash52('a\u0000b');
    expect(Number.isSafeInteger(h) && h >= 0 && h < 2 ** 52).toBe(true);
    expect(hash52('a\u0000b')).not.toBe(hash52('a\u0000c'));
  });
});
