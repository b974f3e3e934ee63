import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import type { ImageSample } from '../../src/core/sample.js';
import { untar } from '../../src/stages/untar.js';
import { makeTar, runThrough, sampleMembers, tempDir, writeFile } from './image-fixtures.js';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => {
  tmp = tempDir();
});
afterAll(() => tmp.cleanup());

describe('untar', () => {
  it('reads a tar file stream into samples', async () => {
    const { members, keys } = await sampleMembers(7);
    const path = writeFile(tmp.dir, '00000.tar', await makeTar(members));
    const out = await runThrough<ImageSample>(createReadStream(path, { highWaterMark: 999 }), untar({ shard: path }));
    expect(out.map((s) => s.key)).toEqual(keys);
    expect(out.every((s) => s.shard === path && s.image && !s.error)).toBe(true);
  });

  it('a truncated tar gives the samples before the cut plus one error:untar row', async () => {
    const { members, keys } = await sampleMembers(8);
    const tar = await makeTar(members);
    const out = await runThrough<ImageSample>([tar.subarray(0, Math.floor(tar.length * 0.55))], untar({ shard: 'cut.tar' }));
    const last = out.at(-1) as ImageSample;
    expect(last).toMatchObject({ key: 'cut.tar:shard', error: { reason: 'error:untar', code: ErrorCodes.UNTAR } });
    expect(out.slice(0, -1).map((s) => s.key)).toEqual(keys.slice(0, out.length - 1));
    expect(out.length - 1).toBeGreaterThan(0);
  });
});
