import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import type { EmbeddingBatch, RowError } from '../../src/core/sample.js';
import { isWritableKey, keyGuard } from '../../src/stages/key-guard.js';
import { runThrough } from './image-fixtures.js';

const batch = (rows: [string, string][], errors?: (RowError | undefined)[]): EmbeddingBatch => ({
  rows: rows.map(([shard, key]) => ({ shard, key })),
  dim: 1,
  embeddings: new Float32Array(rows.length),
  ...(errors ? { errors } : {}),
});

const reasons = (out: EmbeddingBatch[]): string[] => out.flatMap((b) => b.rows.map((_, i) => b.errors?.[i]?.reason ?? 'ok'));

describe('keyGuard', () => {
  it('flags a key repeated within a shard, every row of a shard read again, and keys with line breaks', async () => {
    const g = keyGuard();
    const out = await runThrough<EmbeddingBatch>(
      [
        batch([['a.tar', 'k1'], ['a.tar', 'k2'], ['a.tar', 'k1']]),
        batch([['a.tar', 'k3'], ['copy.tar', 'k1'], ['copy.tar', 'k2']]), // same keys in another shard: distinct samples
        batch([['a.tar', 'k9'], ['a.tar', 'k1'], ['b.tar', 'x\ny'], ['b.tar', 'r\r']]), // a.tar again after copy.tar
      ],
      g,
    );
    expect(reasons(out)).toEqual(['ok', 'ok', 'error:duplicate-key', 'ok', 'ok', 'ok', 'error:duplicate-key', 'error:duplicate-key', 'error:invalid-key', 'error:invalid-key']);
    expect(out[0].errors?.[2]).toMatchObject({ code: ErrorCodes.DUPLICATE_KEY });
    expect(out[0].errors?.[2]?.message).toMatch(/key k1 repeats in shard a\.tar/);
    expect(out[2].errors?.[0]?.message).toMatch(/shard a\.tar was already read/);
    expect(out[2].errors?.[2]).toMatchObject({ code: ErrorCodes.INPUT_FORMAT });
    expect([g.duplicates, g.invalid]).toEqual([3, 2]);
  });

  it('keeps earlier errors, counts their keys, and warns once past maxKeysPerShard', async () => {
    const warnings: string[] = [];
    const prior: RowError = { reason: 'error:decode', message: 'bad' };
    const out = await runThrough<EmbeddingBatch>(
      [batch([['s', 'a'], ['s', 'a'], ['s', 'b'], ['s', 'c'], ['s', 'c']], [prior, undefined])],
      keyGuard({ maxKeysPerShard: 2, onWarning: (w) => warnings.push(w) }),
    );
    // a (error kept) · a (duplicate of an error row) · b · c (past the bound: not remembered) · c (undetected)
    expect(reasons(out)).toEqual(['error:decode', 'error:duplicate-key', 'ok', 'ok', 'ok']);
    expect(warnings).toHaveLength(1);
    expect(() => keyGuard({ maxKeysPerShard: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    expect([isWritableKey('a b'), isWritableKey('a\nb'), isWritableKey('a\rb')]).toEqual([true, false, false]);
  });
});

describe('keyGuard on keys in increasing order (the list before the fingerprint sets)', () => {
  it('passes 100,000 ordered keys, then finds a repeat that breaks the order, and keeps checking after it', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 100_000; i++) keys.push(String(i).padStart(9, '0'));
    keys.push('000000005', '000100000', '000099999', '000100000', '000000006');
    const rows = keys.map((key): [string, string] => ['keys.txt', key]);
    const batches: EmbeddingBatch[] = [];
    for (let s = 0; s < rows.length; s += 2048) batches.push(batch(rows.slice(s, s + 2048)));
    const g = keyGuard();
    const r = reasons(await runThrough<EmbeddingBatch>(batches, g));
    expect(r.slice(0, 100_000).every((x) => x === 'ok')).toBe(true);
    expect(r.slice(100_000)).toEqual(['error:duplicate-key', 'ok', 'error:duplicate-key', 'error:duplicate-key', 'error:duplicate-key']);
    expect(g.duplicates).toBe(4);
  });

  it('past maxKeysPerShard: a later key is not a member, an earlier one is found; remember() counts for order', async () => {
    const out = await runThrough<EmbeddingBatch>([batch([['s', 'a'], ['s', 'b'], ['s', 'c'], ['s', 'd'], ['s', 'b'], ['s', 'd']])], keyGuard({ maxKeysPerShard: 3 }));
    // a b c remembered · d past the bound (not remembered) · b found among the three · d undetected
    expect(reasons(out)).toEqual(['ok', 'ok', 'ok', 'ok', 'error:duplicate-key', 'ok']);
    const g = keyGuard();
    g.remember('k2', 's');
    const again = await runThrough<EmbeddingBatch>([batch([['s', 'k3'], ['s', 'k2'], ['s', 'k1']])], g);
    expect(reasons(again)).toEqual(['ok', 'error:duplicate-key', 'ok']);
  });
});

describe('keyGuard with many keys in one shard', () => {
  it('finds exactly the repeated keys among 120,000 (keys spread over its sub-sets), and forgets them at the next shard', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 100_000; i++) keys.push(`img-${i}.jpg`);
    for (let i = 0; i < 20_000; i++) keys.push(`img-${(i * 4999) % 100_000}.jpg`); // 20,000 repeats, all distinct
    const rows = keys.map((key): [string, string] => ['big.tar', key]);
    const batches: EmbeddingBatch[] = [];
    for (let s = 0; s < rows.length; s += 4096) batches.push(batch(rows.slice(s, s + 4096)));
    batches.push(batch([['next.tar', 'img-1.jpg'], ['next.tar', 'img-1.jpg']]));
    const g = keyGuard();
    const out = await runThrough<EmbeddingBatch>(batches, g);
    const r = reasons(out);
    expect(r.slice(0, 100_000).every((x) => x === 'ok')).toBe(true);
    expect(r.slice(100_000, 120_000).every((x) => x === 'error:duplicate-key')).toBe(true);
    expect(r.slice(120_000)).toEqual(['ok', 'error:duplicate-key']);
    expect(g.duplicates).toBe(20_001);
  });
});
