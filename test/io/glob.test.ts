import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expandBraces, expandInputs, naturalCompare } from '../../src/io/glob.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-glob-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
for (const f of ['s2.tar', 's10.tar', 's1.tar', 'x.txt', '.hidden.tar', 'sub/a.tar', 'sub/deep/b.tar', 'sub/deep/c.npy']) {
  mkdirSync(join(dir, f, '..'), { recursive: true });
  writeFileSync(join(dir, f), '');
}
for (let i = 0; i < 3; i++) writeFileSync(join(dir, `${String(i).padStart(5, '0')}.tar`), '');

describe('expandBraces', () => {
  it('expands zero-padded ranges like webdataset, in order', () => {
    expect(expandBraces('shard-{00000..00003}.tar')).toEqual(['shard-00000.tar', 'shard-00001.tar', 'shard-00002.tar', 'shard-00003.tar']);
    expect(expandBraces('{8..11}')).toEqual(['8', '9', '10', '11']);
    expect(expandBraces('{3..1}')).toEqual(['3', '2', '1']);
    expect(expandBraces('{0..10..5}')).toEqual(['0', '5', '10']);
    expect(expandBraces('{098..100}')).toEqual(['098', '099', '100']);
  });
  it('expands alternation, nested and repeated groups; leaves odd braces literal', () => {
    expect(expandBraces('{a,b}-{0..1}')).toEqual(['a-0', 'a-1', 'b-0', 'b-1']);
    expect(expandBraces('x{a,b{1,2}}y')).toEqual(['xay', 'xb1y', 'xb2y']);
    expect(expandBraces('lit{x}{a,b}')).toEqual(['lit{x}a', 'lit{x}b']);
    expect(expandBraces('open{a,b')).toEqual(['open{a,b']);
  });
  it('refuses absurd ranges', () => {
    expect(() => expandBraces('{0..999999999}')).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });
});

describe('expandInputs', () => {
  it('globs local files, sorted naturally, skipping hidden files', async () => {
    expect(await expandInputs(join(dir, 's*.tar'))).toEqual(['s1.tar', 's2.tar', 's10.tar'].map((f) => join(dir, f)));
    expect(await expandInputs(join(dir, 's?.tar'))).toEqual(['s1.tar', 's2.tar'].map((f) => join(dir, f)));
    expect(await expandInputs(join(dir, '**', '*.tar'))).toContain(join(dir, 'sub', 'deep', 'b.tar'));
    expect(await expandInputs(join(dir, '**', '*.tar'))).not.toContain(join(dir, '.hidden.tar'));
    expect(await expandInputs(join(dir, 'sub', '*', '*.npy'))).toEqual([join(dir, 'sub', 'deep', 'c.npy')]);
  });
  it('expands brace ranges over local files and checks they exist', async () => {
    expect(await expandInputs(join(dir, '{00000..00002}.tar'))).toEqual(['00000', '00001', '00002'].map((f) => join(dir, `${f}.tar`)));
    await expect(expandInputs(join(dir, '{00000..00003}.tar'))).rejects.toMatchObject({
      code: 'ERR_DBPRUNE_INPUT_NOT_FOUND',
      context: { file: join(dir, '00003.tar') },
    });
  });
  it('passes URLs through with braces expanded and no globbing; keeps list order, drops duplicates', async () => {
    expect(await expandInputs(['https://h/x/{000..001}.tar', 'http://h/a*.tar', join(dir, 'x.txt'), join(dir, 'x.txt')])).toEqual([
      'https://h/x/000.tar',
      'https://h/x/001.tar',
      'http://h/a*.tar',
      join(dir, 'x.txt'),
    ]);
  });
  it('throws INPUT_NOT_FOUND when nothing matches', async () => {
    await expect(expandInputs(join(dir, '*.nothing'))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_NOT_FOUND' });
    await expect(expandInputs(join(dir, 'nope', '*.tar'))).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INPUT_NOT_FOUND' });
    await expect(expandInputs([])).rejects.toMatchObject({ code: 'ERR_DBPRUNE_INVALID_OPTION' });
  });
  it('naturalCompare orders numbers by value', () => {
    expect(['a10', 'a2', 'a1'].sort(naturalCompare)).toEqual(['a1', 'a2', 'a10']);
  });
});
