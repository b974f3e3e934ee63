import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ContentDecodingError, decodeContentEncoding } from '../../src/net/content-decoding.js';

const where = { url: 'http://a.test/x.jpg', status: 200 };
const body = Buffer.from('an image, pretend'.repeat(50));

describe('decodeContentEncoding', () => {
  it('undoes gzip, deflate (zlib-wrapped and raw) and br; identity and no header are no-ops', async () => {
    expect((await decodeContentEncoding(gzipSync(body), 'gzip', 1 << 20, where)).equals(body)).toBe(true);
    expect((await decodeContentEncoding(gzipSync(body), 'x-gzip', 1 << 20, where)).equals(body)).toBe(true);
    expect((await decodeContentEncoding(deflateSync(body), 'deflate', 1 << 20, where)).equals(body)).toBe(true);
    expect((await decodeContentEncoding(deflateRawSync(body), 'deflate', 1 << 20, where)).equals(body)).toBe(true);
    expect((await decodeContentEncoding(brotliCompressSync(body), 'BR', 1 << 20, where)).equals(body)).toBe(true);
    expect((await decodeContentEncoding(body, 'identity', 1 << 20, where)).equals(body)).toBe(true);
    expect(await decodeContentEncoding(body, undefined, 1 << 20, where)).toBe(body);
  });

  it('applies stacked codings in reverse order of listing', async () => {
    const twice = brotliCompressSync(gzipSync(body)); // gzip first, then br: "gzip, br"
    expect((await decodeContentEncoding(twice, 'gzip, br', 1 << 20, where)).equals(body)).toBe(true);
  });

  it('fails with a message naming the URL and status: unsupported, corrupt, or above the cap', async () => {
    await expect(decodeContentEncoding(body, 'compress', 1 << 20, where)).rejects.toThrow(ContentDecodingError);
    await expect(decodeContentEncoding(body, 'compress', 1 << 20, where)).rejects.toThrow(/unsupported Content-Encoding compress from http:\/\/a.test\/x.jpg \(HTTP 200\)/);
    await expect(decodeContentEncoding(body, 'gzip', 1 << 20, where)).rejects.toThrow(/cannot decode gzip body of http:\/\/a.test\/x.jpg/);
    const bomb = gzipSync(Buffer.alloc(4 << 20)); // 4 MiB of zeros in a few KiB
    await expect(decodeContentEncoding(bomb, 'gzip', 1 << 20, where)).rejects.toThrow(/decompressed body of http:\/\/a.test\/x.jpg is larger than maxBodyBytes 1048576/);
  });
});
