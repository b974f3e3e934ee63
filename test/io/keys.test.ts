import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { BatchTaker, countKeys, readKeyBatches } from '../../src/io/keys.js';
import { MAX_LINE_CHARS } from '../../src/io/lines.js';
import { rejectionOf } from '../helpers/errors.js';
import { asAsync } from '../helpers/iter.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function all(path: string, batchRows: number): Promise<string[][]> {
  const out: string[][] = [];
  for await (const b of readKeyBatches(path, { batchRows })) out.push(b);
  return out;
}

describe('readKeyBatches', () => {
  it('yields exact-size batches; handles CRLF, BOM and a missing final newline', async () => {
    const p = join(dir, 'k.txt');
    writeFileSync(p, '\ufeffa\r\nb\nc\nd\ne');
    expect(await all(p, 2)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(await countKeys(p)).toBe(5);
    writeFileSync(p, 'a\nb\n');
    expect(await all(p, 10)).toEqual([['a', 'b']]);
    expect(await countKeys(p)).toBe(2);
  });
  it('streams a large file across read chunks without losing or splitting keys', async () => {
    const p = join(dir, 'big.txt');
    const n = 300_000;
    const keys = Array.from({ length: n }, (_, i) => `key-${i}-${'x'.repeat(i % 7)}`);
    writeFileSync(p, keys.join('\n') + '\n');
    const batches = await all(p, 8192);
    expect(batches.slice(0, -1).every((b) => b.length === 8192)).toBe(true);
    expect(batches.flat()).toEqual(keys);
    expect(await countKeys(p)).toBe(n);
  });
  it('rejects empty lines (INPUT_FORMAT with row) and missing files (INPUT_NOT_FOUND)', async () => {
    const p = join(dir, 'blank.txt');
    writeFileSync(p, 'a\n\nb\n');
    await expect(all(p, 5)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_FORMAT', context: { file: p, row: 1 } });
    await expect(all(join(dir, 'nope.txt'), 5)).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_NOT_FOUND' });
    await expect(countKeys(join(dir, 'nope.txt'))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_NOT_FOUND' });
  });
  it('a key file that is one huge line fails fast on the line bound, naming the file and line', async () => {
    const p = join(dir, 'one-line.txt');
    writeFileSync(p, `a\n${'k'.repeat(MAX_LINE_CHARS + 1024)}`);
    const t0 = performance.now();
    const err = await rejectionOf(all(p, 10));
    expect(err).toMatchObject({ code: ErrorCodes.INPUT_FORMAT, context: { file: p, row: 2 } });
    expect(err.message).toContain('longer than');
    expect(performance.now() - t0).toBeLessThan(5000);
  });
  it('an empty file has no keys', async () => {
    const p = join(dir, 'empty.txt');
    writeFileSync(p, '');
    expect(await all(p, 5)).toEqual([]);
    expect(await countKeys(p)).toBe(0);
  });
});

describe('BatchTaker', () => {
  it('re-cuts batches of any size into requested sizes', async () => {
    function* src(): Generator<number[]> {
      yield [1, 2, 3];
      yield [];
      yield [4];
      yield [5, 6, 7, 8];
    }
    const t = new BatchTaker(asAsync(src()));
    expect(await t.take(2)).toEqual([1, 2]);
    expect(await t.take(3)).toEqual([3, 4, 5]);
    expect(await t.take(10)).toEqual([6, 7, 8]);
    expect(await t.take(1)).toEqual([]);
  });
});
