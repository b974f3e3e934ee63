import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { shardSource, type ShardRef } from '../../src/stages/shard-source.js';
import { tempDir, writeFile } from './image-fixtures.js';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir();
  for (const n of ['00000.tar', '00001.tar', '00002.tar', '00010.tar', '00000.parquet']) writeFile(tmp.dir, n, Buffer.from('x'));
});
afterAll(() => tmp.cleanup());

async function all(r: Readable): Promise<string[]> {
  const out: string[] = [];
  for await (const x of r) out.push((x as ShardRef).shard);
  return out;
}

describe('shardSource', () => {
  it('expands brace ranges, passes URLs through, lists .tar files of a directory', async () => {
    expect(await all(shardSource({ inputs: `${tmp.dir}/0000{0..1}.tar` }))).toEqual([`${tmp.dir}/00000.tar`, `${tmp.dir}/00001.tar`]);
    expect(await all(shardSource({ inputs: ['http://h/{00000..00002}.tar'] }))).toEqual(['http://h/00000.tar', 'http://h/00001.tar', 'http://h/00002.tar']);
    expect(await all(shardSource({ inputs: tmp.dir }))).toEqual(['00000', '00001', '00002', '00010'].map((n) => `${tmp.dir}/${n}.tar`));
  });

  it('reads one pattern per line from a stream, skipping blanks and comments', async () => {
    const stdin = Readable.from([`# shards\n${tmp.dir}/00000.tar\n\n  http://h/a.tar  \n`, `http://h/{b,c}.tar\n`]);
    expect(await all(shardSource({ inputs: stdin }))).toEqual([`${tmp.dir}/00000.tar`, 'http://h/a.tar', 'http://h/b.tar', 'http://h/c.tar']);
  });

  it('fails on inputs that match nothing, and on bad options', async () => {
    await expect(all(shardSource({ inputs: `${tmp.dir}/nothing-*.tar` }))).rejects.toMatchObject({ code: ErrorCodes.INPUT_NOT_FOUND });
    expect(() => shardSource({ inputs: [] })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });
});
