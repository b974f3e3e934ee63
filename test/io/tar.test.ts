import { gzipSync } from 'node:zlib';
import sharp, { type AvailableFormatInfo } from 'sharp';
import { describe, expect, it } from 'vitest';
import { decode } from '../../src/stages/decode.js';
import { ErrorCodes } from '../../src/core/errors.js';
import type { ImageSample } from '../../src/core/sample.js';
import { IMAGE_EXTENSIONS, readTarSamples, shardBasename, shardErrorSample, splitMemberName, type TarWarning } from '../../src/io/tar.js';
import { makeTar, runThrough, sampleMembers, solidImage } from '../stages/image-fixtures.js';

async function* chunked(buf: Buffer, size = 700): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) {
    await Promise.resolve(); // each chunk arrives in a later microtask, as from a stream
    yield buf.subarray(i, i + size);
  }
}

async function collect(src: AsyncIterable<Uint8Array>, opts = {}): Promise<{ samples: ImageSample[]; error?: unknown }> {
  const samples: ImageSample[] = [];
  try {
    for await (const s of readTarSamples(src, opts)) samples.push(s);
    return { samples };
  } catch (error) {
    return { samples, error };
  }
}

describe('splitMemberName', () => {
  it('splits webdataset style at the first dot of the basename', () => {
    expect(splitMemberName('000010012.jpg')).toEqual({ key: '000010012', ext: 'jpg' });
    expect(splitMemberName('dir/a.seg.PNG')).toEqual({ key: 'dir/a', ext: 'seg.png' });
    expect(splitMemberName('./x.txt')).toEqual({ key: 'x', ext: 'txt' });
    expect(splitMemberName('.hidden')).toBeUndefined();
    expect(splitMemberName('noext')).toBeUndefined();
  });
});

describe('readTarSamples', () => {
  it('groups members by key, keeps tar order, parses sidecars, skips strays', async () => {
    const { members, keys } = await sampleMembers(5);
    members.splice(3, 0, { name: 'k0001.cls', data: '7' }); // stray member of a known key
    members.push({ name: 'README', data: 'not a member' });
    const tar = await makeTar(members);
    const { samples, error } = await collect(chunked(tar), { shard: 's.tar' });
    expect(error).toBeUndefined();
    expect(samples.map((s) => s.key)).toEqual(keys);
    for (const [i, s] of samples.entries()) {
      expect(s.shard).toBe('s.tar');
      expect(s.caption).toBe(`caption ${i}`);
      expect(s.url).toBe(`http://img.invalid/${s.key}.jpg`);
      expect(s.json?.status).toBe('success');
      expect(s.imageExt).toBe('jpg');
      expect(s.image?.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
      expect(s.error).toBeUndefined();
    }
  });

  it('marks a key without image, keeps a sample with bad JSON and warns', async () => {
    const img = await solidImage([10, 200, 30], 'png');
    const tar = await makeTar([
      { name: 'a.png', data: img },
      { name: 'a.json', data: '{not json' },
      { name: 'b.txt', data: 'only a caption' },
      { name: 'c.webp', data: await solidImage([1, 2, 3], 'webp') },
    ]);
    const warnings: TarWarning[] = [];
    const { samples, error } = await collect(chunked(tar), { shard: 's.tar', onWarning: (w: TarWarning) => warnings.push(w) });
    expect(error).toBeUndefined();
    expect(samples.map((s) => s.key)).toEqual(['a', 'b', 'c']);
    expect(samples[0].error).toBeUndefined();
    expect(samples[0].json).toBeUndefined();
    expect(samples[1].error?.reason).toBe('error:missing-image');
    expect(samples[1].caption).toBe('only a caption');
    expect(samples[2].imageExt).toBe('webp');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ key: 'a', member: 'a.json' });
  });

  it('marks a member above maxMemberBytes as error:untar without reading it', async () => {
    const tar = await makeTar([
      { name: 'big.jpg', data: Buffer.alloc(5000, 1) },
      { name: 'small.jpg', data: Buffer.alloc(10, 1) },
    ]);
    const { samples } = await collect(chunked(tar), { maxMemberBytes: 1000 });
    expect(samples.map((s) => [s.key, s.error?.reason])).toEqual([
      ['big', 'error:untar'],
      ['small', undefined],
    ]);
  });

  it('yields the samples before a truncation, then throws ERR_DBPRUNE_UNTAR', async () => {
    const { members, keys } = await sampleMembers(6);
    const tar = await makeTar(members);
    const cut = tar.subarray(0, Math.floor(tar.length * 0.6));
    const { samples, error } = await collect(chunked(cut), { shard: 'cut.tar' });
    expect(error).toMatchObject({ code: ErrorCodes.UNTAR });
    expect(samples.length).toBeGreaterThan(0);
    expect(samples.length).toBeLessThan(keys.length);
    expect(samples.map((s) => s.key)).toEqual(keys.slice(0, samples.length));
    expect(samples.every((s) => !s.error)).toBe(true);
  });

  it('throws ERR_DBPRUNE_UNTAR on bytes that are not a tar', async () => {
    const { samples, error } = await collect(chunked(Buffer.from('<html>not found</html>'.repeat(100))));
    expect(samples).toEqual([]);
    expect(error).toMatchObject({ code: ErrorCodes.UNTAR });
  });

  it('reports a failing byte source as ERR_DBPRUNE_DOWNLOAD after the samples read', async () => {
    const { members, keys } = await sampleMembers(4);
    const tar = await makeTar(members);
    async function* failing(): AsyncGenerator<Buffer> {
      yield tar.subarray(0, Math.floor(tar.length / 2));
      await Promise.resolve();
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    }
    const { samples, error } = await collect(failing(), { shard: 'x.tar' });
    expect(error).toMatchObject({ code: ErrorCodes.DOWNLOAD });
    expect((error as Error).message).toMatch(/socket hang up/);
    expect(samples.map((s) => s.key)).toEqual(keys.slice(0, samples.length));
  });
});

describe('shardErrorSample', () => {
  it('names the shard and maps codes to reasons', () => {
    expect(shardBasename('http://h/x/00003.tar?sig=1')).toBe('00003.tar');
    const row = shardErrorSample('http://h/x/00003.tar', new Error('boom'));
    expect(row).toMatchObject({ key: '00003.tar:shard', url: 'http://h/x/00003.tar', error: { reason: 'error:download' } });
    expect(row.error?.message).toContain('http://h/x/00003.tar');
  });

  it('every format sharp decodes is an image member; any other KEY.ext member still gives its key a row', async () => {
    // every recognised extension is a buffer-decodable input suffix of this sharp build (a build on a
    // global libvips may decode more: those extensions then stay unrecognised, as error rows)
    const sharpSuffixes = (Object.values(sharp.format) as AvailableFormatInfo[])
      .filter((f) => f.input.buffer)
      .flatMap((f) => f.input.fileSuffix ?? [])
      .map((x) => x.slice(1))
      .filter((x) => !x.includes('.'));
    for (const ext of IMAGE_EXTENSIONS) expect(sharpSuffixes).toContain(ext);
    for (const ext of ['jpg', 'png', 'webp', 'gif', 'tiff', 'svg', 'avif']) expect(IMAGE_EXTENSIONS.has(ext)).toBe(true);
    const base = () => sharp({ create: { width: 20, height: 12, channels: 3, background: { r: 200, g: 30, b: 30 } } });
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="12"><rect width="20" height="12" fill="red"/></svg>';
    const members = [
      { name: 'a.jpg', data: await base().jpeg().toBuffer() },
      { name: 'b.gif', data: await base().gif().toBuffer() },
      { name: 'c.tiff', data: await base().tiff().toBuffer() },
      { name: 'd.tif', data: await base().tiff().toBuffer() },
      { name: 'e.svg', data: svg },
      { name: 'f.svgz', data: gzipSync(svg) },
      { name: 'g.avif', data: await base().avif().toBuffer() },
      { name: 'h.bmp', data: Buffer.from('424d00000000', 'hex') }, // not decodable by sharp
      { name: 'h.txt', data: 'a bitmap' },
      { name: 'i.cls', data: '3' }, // a key with no image at all
    ];
    const { samples, error } = await collect(chunked(await makeTar(members)), { shard: 'f.tar' });
    expect(error).toBeUndefined();
    expect(samples.map((x) => x.key)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
    expect(samples.slice(0, 7).every((x) => x.image && !x.error)).toBe(true);
    expect(samples[7].error?.reason).toBe('error:missing-image');
    expect(samples[7].error?.message).toMatch(/h\.bmp/);
    expect(samples[7].caption).toBe('a bitmap');
    expect(samples[8].error?.reason).toBe('error:missing-image');
    // and they decode
    const decoded = await runThrough<{ key: string; pixels?: Float32Array; error?: unknown }>(samples, decode({ size: 8 }));
    expect(decoded.map((d) => [d.key, d.pixels !== undefined])).toEqual([
      ['a', true], ['b', true], ['c', true], ['d', true], ['e', true], ['f', true], ['g', true], ['h', false], ['i', false],
    ]);
  });

  it('an empty shard (0 bytes) or one with no KEY.ext member is ERR_DBPRUNE_UNTAR, not zero rows', async () => {
    const empty = await collect(chunked(Buffer.alloc(0)), { shard: 'e.tar' });
    expect(empty.samples).toEqual([]);
    expect(empty.error).toMatchObject({ code: ErrorCodes.UNTAR, context: { shard: 'e.tar' } });
    expect((empty.error as Error).message).toMatch(/e\.tar is empty \(0 bytes\)/);
    const noKeys = await collect(chunked(await makeTar([{ name: 'README', data: 'x' }])), { shard: 'n.tar' });
    expect(noKeys.error).toMatchObject({ code: ErrorCodes.UNTAR });
    expect((noKeys.error as Error).message).toMatch(/holds no sample/);
    expect(shardErrorSample('n.tar', noKeys.error).key).toBe('n.tar:shard');
  });
});
