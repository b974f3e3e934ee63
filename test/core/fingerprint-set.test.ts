import { describe, expect, it } from 'vitest';
import { FingerprintSet, fingerprint96 } from '../../src/core/fingerprint-set.js';

describe('FingerprintSet', () => {
  it('adds, finds and refuses repeats across growth, for img2dataset-like numeric keys', () => {
    const s = new FingerprintSet();
    const n = 200_000;
    for (let i = 0; i < n; i++) expect(s.add(String(i).padStart(9, '0'))).toBe(true);
    expect(s.size).toBe(n);
    for (let i = 0; i < n; i += 997) expect(s.add(String(i).padStart(9, '0'))).toBe(false);
    expect(s.has('000000123')).toBe(true);
    expect(s.has('00000123')).toBe(false); // another string of the same digits
    expect(s.has('')).toBe(false);
    expect(s.add('')).toBe(true);
    expect(s.has('')).toBe(true);
    expect(s.size).toBe(n + 1);
  });

  it('gives distinct 96-bit fingerprints to near-identical strings, never all zero', () => {
    const seen = new Set<string>();
    const fp = new Uint32Array(3);
    for (const k of ['a', 'b', 'ab', 'ba', 'a\u0000', '\u0000a', 'x'.repeat(200), `${'x'.repeat(199)}y`]) {
      fingerprint96(k, fp);
      expect(fp[2]).not.toBe(0);
      seen.add([...fp].join(','));
    }
    expect(seen.size).toBe(8);
  });
});
