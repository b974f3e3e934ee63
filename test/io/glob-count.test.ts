/** Issue #11 item 9: brace patterns are counted before they are expanded. */
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { countBraces, expandBraces } from '../../src/io/glob.js';
import { thrownBy } from '../helpers/errors.js';

describe('countBraces / expandBraces', () => {
  it('counts exactly what expansion produces', () => {
    for (const p of ['plain', 'shard-{00000..00099}.tar', '{a,b}-{0..10..5}', 'x{a,b{1,2}}y', 'lit{x}{a,b}', '{3..1}{a,b,c}', '{a,b', '{0..4..0}z']) {
      expect(countBraces(p)).toBe(expandBraces(p).length);
    }
  });

  it('refuses {a,b} repeated 24 times (16.7 M results) before allocating them', () => {
    const pattern = '{a,b}'.repeat(24);
    const heapBefore = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const err = thrownBy(() => expandBraces(pattern));
    expect(err.code).toBe(ErrorCodes.INVALID_OPTION);
    expect(err.message).toContain('16777216');
    expect(performance.now() - t0).toBeLessThan(500);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
  });
});
