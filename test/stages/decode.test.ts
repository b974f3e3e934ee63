import { Readable } from 'node:stream';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import type { DecodedSample, ImageSample } from '../../src/core/sample.js';
import { CLIP_MEAN, CLIP_STD } from '../../src/io/model-config.js';
import { decode } from '../../src/stages/decode.js';
import { untar } from '../../src/stages/untar.js';
import { makeTar, pngClaiming, runThrough, solidImage } from './image-fixtures.js';


describe('decode', () => {
  it('normalises a solid colour to (v/255 − mean)/std in CHW order, for jpeg/png+alpha/webp/grey', async () => {
    const rgba = await sharp({ create: { width: 50, height: 20, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.3 } } }).png().toBuffer();
    const grey = await sharp(Buffer.alloc(30 * 30, 128), { raw: { width: 30, height: 30, channels: 1 } }).png().toBuffer();
    const inputs: ImageSample[] = [
      { key: 'j', image: await solidImage([255, 0, 0], 'png'), imageExt: 'png' },
      { key: 'a', image: rgba, imageExt: 'png' },
      { key: 'w', image: await solidImage([255, 0, 0], 'webp'), imageExt: 'webp' },
      { key: 'g', image: grey, imageExt: 'png', caption: 'grey', url: 'http://x/g.png', shard: 's.tar' },
    ];
    const out = await runThrough<DecodedSample>(inputs, decode({ size: 8, thumbnail: 16 }));
    expect(out.map((s) => s.key)).toEqual(['j', 'a', 'w', 'g']);
    const expectPlane = (px: Float32Array, c: number, v: number, tol: number): void => {
      for (let i = c * 64; i < (c + 1) * 64; i++) expect(Math.abs(px[i] - (v / 255 - CLIP_MEAN[c]) / CLIP_STD[c])).toBeLessThan(tol);
    };
    for (const s of out.slice(0, 3)) {
      expect(s.error).toBeUndefined();
      expect(s.pixels).toHaveLength(3 * 8 * 8);
      expectPlane(s.pixels as Float32Array, 0, 255, 0.1);
      // 30% opaque red over the white background: green = 0.7 · 255
      expectPlane(s.pixels as Float32Array, 1, s.key === 'a' ? 0.7 * 255 : 0, 0.1);
      expect(s.thumbnail?.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    }
    const g = out[3];
    for (let c = 0; c < 3; c++) expectPlane(g.pixels as Float32Array, c, 128, 0.02);
    expect(g).toMatchObject({ caption: 'grey', url: 'http://x/g.png', shard: 's.tar' });
  });

  it('turns a corrupt image inside a tar into an error:decode row and keeps order', async () => {
    const good = await solidImage([0, 0, 255]);
    const corrupt = Buffer.concat([good.subarray(0, 20), Buffer.alloc(200, 7)]);
    const tar = await makeTar([
      { name: 'a.jpg', data: good },
      { name: 'b.jpg', data: corrupt },
      { name: 'c.txt', data: 'no image' },
      { name: 'd.jpg', data: good },
    ]);
    const out = await runThrough<DecodedSample>([tar.subarray(0, 1000), tar.subarray(1000)], untar({ shard: 't.tar' }), decode({ size: 16, concurrency: 3 }));
    expect(out.map((s) => [s.key, s.error?.reason])).toEqual([
      ['a', undefined],
      ['b', 'error:decode'],
      ['c', 'error:missing-image'],
      ['d', undefined],
    ]);
    expect(out[1].error?.code).toBe(ErrorCodes.DECODE);
    expect(out[1].error?.message).toContain('t.tar');
    expect(out[1].pixels).toBeUndefined();
  });

  it('refuses images above maxPixels with a message giving the size and the limit', async () => {
    const big = await solidImage([1, 2, 3], 'png', 300, 200);
    const out = await runThrough<DecodedSample>(
      [
        { key: 'huge', image: pngClaiming(20000, 20000) },
        { key: 'big', image: big },
      ],
      decode({ size: 8, maxPixels: 50_000 }),
    );
    expect(out).toHaveLength(2);
    expect(out[0].error).toMatchObject({ reason: 'error:decode', code: ErrorCodes.DECODE });
    expect(out[0].error?.message).toMatch(/20000×20000 = 400000000 pixels, above maxPixels 50000/);
    expect(out[1].error?.message).toMatch(/300×200 = 60000 pixels, above maxPixels 50000/);
  });

  it('squash and crop differ on a non-square image; errors pass through', async () => {
    // 40×20, the left quarter white, the rest black: the centre crop (x 10..30) sees no white,
    // squash keeps the white quarter as the first of 4 columns.
    const raw = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++) raw.fill(255, y * 40 * 3, (y * 40 + 10) * 3);
    const img = await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } }).png().toBuffer();
    const inputs: ImageSample[] = [
      { key: 'x', image: img },
      { key: 'e', error: { reason: 'error:download', message: 'gone' } },
    ];
    const plain = { size: 4, mean: [0, 0, 0], std: [1, 1, 1], kernel: 'nearest' } as const;
    const [crop, e1] = await runThrough<DecodedSample>(inputs, decode({ ...plain, mode: 'shortest-center-crop' }));
    const [squash] = await runThrough<DecodedSample>(inputs, decode({ ...plain, mode: 'squash' }));
    expect(Array.from((crop.pixels as Float32Array).slice(0, 4))).toEqual([0, 0, 0, 0]);
    expect(Array.from((squash.pixels as Float32Array).slice(0, 4))).toEqual([1, 0, 0, 0]);
    expect(e1).toMatchObject({ key: 'e', error: { reason: 'error:download' } });
    expect(e1.pixels).toBeUndefined();
  });

  it('report thumbnails keep the picture: left half red, right half blue at 224 → 40 px', async () => {
    const raw = Buffer.alloc(100 * 60 * 3);
    for (let y = 0; y < 60; y++) for (let x = 0; x < 100; x++) raw.set(x < 50 ? [255, 0, 0] : [0, 0, 255], (y * 100 + x) * 3);
    const img = await sharp(raw, { raw: { width: 100, height: 60, channels: 3 } }).png().toBuffer();
    const [s] = await runThrough<DecodedSample>([{ key: 'rb', image: img }], decode({ size: 224, mode: 'squash', thumbnail: 40 }));
    const { data, info } = await sharp(s.thumbnail).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([40, 40, 3]);
    const at = (x: number, y: number): number[] => Array.from(data.subarray((y * 40 + x) * 3, (y * 40 + x) * 3 + 3));
    for (const y of [2, 20, 37]) {
      const [r1, , b1] = at(8, y);
      const [r2, , b2] = at(31, y);
      expect(r1).toBeGreaterThan(200);
      expect(b1).toBeLessThan(60);
      expect(b2).toBeGreaterThan(200);
      expect(r2).toBeLessThan(60);
    }
  });

  it('rejects bad options and fails with ERR_DBPRUNE_ABORTED on signal', async () => {
    expect(() => decode({ size: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    expect(() => decode({ std: [1, 0, 1] })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
    const ac = new AbortController();
    ac.abort();
    await expect(runThrough([{ key: 'a', image: await solidImage([1, 1, 1]) }], decode({ signal: ac.signal }))).rejects.toMatchObject({
      code: ErrorCodes.ABORTED,
    });
    void Readable;
  });
});

describe('decode on a stream that pauses', () => {
  it('emits every sample it has without waiting for more input or the end (no stall at concurrency 2)', async () => {
    const { PassThrough } = await import('node:stream');
    const input = new PassThrough({ objectMode: true });
    const stage = decode({ size: 16, concurrency: 2 });
    input.pipe(stage);
    const got: string[] = [];
    const three = new Promise<void>((resolve) => {
      stage.on('data', (d: { key: string }) => {
        got.push(d.key);
        if (got.length === 3) resolve();
      });
    });
    for (const key of ['a', 'b', 'c']) input.write({ key, image: await solidImage([10, 20, 30]) });
    // The input stays open (a continuous source between bursts): all three must still come out.
    await Promise.race([three, new Promise((_, reject) => setTimeout(() => reject(new Error(`stalled with ${got.length} of 3`)), 10_000))]);
    expect(got).toEqual(['a', 'b', 'c']);
    input.end();
    stage.destroy();
  });
});
