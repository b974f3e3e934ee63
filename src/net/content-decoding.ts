/**
 * Undoing a response's `Content-Encoding` (gzip, deflate with or without the zlib wrapper, br),
 * with the decoded size capped, for bodies read whole (images).
 */
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, inflateRaw, type BrotliOptions, type ZlibOptions } from 'node:zlib';
import { describeError, errorCodeOf } from './http.js';

const gunzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gunzip);
const inflateAsync = promisify<Buffer, ZlibOptions, Buffer>(inflate);
const inflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(inflateRaw);
const brotliAsync = promisify<Buffer, BrotliOptions, Buffer>(brotliDecompress);

/** A body that cannot be decoded: an unsupported coding, a corrupt stream, or a result above the cap. The message names the URL and status. */
export class ContentDecodingError extends Error {}

/** True for a zlib-wrapped deflate stream (CMF/FLG header), false for raw deflate. */
function hasZlibHeader(b: Buffer): boolean {
  return b.length >= 2 && (b[0] & 0x0f) === 8 && ((b[0] << 8) | b[1]) % 31 === 0;
}

/**
 * Decodes `bytes` per the `Content-Encoding` header (codings applied in reverse order of listing;
 * `identity` skipped). Throws {@link ContentDecodingError} naming `where` (the URL and status).
 */
export async function decodeContentEncoding(bytes: Buffer, encoding: string | undefined, maxBytes: number, where: { url: string; status: number }): Promise<Buffer> {
  if (!encoding) return bytes;
  let out = bytes;
  const codings = encoding
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s && s !== 'identity')
    .reverse();
  const limits = { maxOutputLength: maxBytes };
  for (const c of codings) {
    if (c !== 'gzip' && c !== 'x-gzip' && c !== 'deflate' && c !== 'br') {
      throw new ContentDecodingError(`unsupported Content-Encoding ${c} from ${where.url} (HTTP ${where.status})`);
    }
    try {
      if (c === 'br') out = await brotliAsync(out, limits);
      else if (c === 'deflate') out = hasZlibHeader(out) ? await inflateAsync(out, limits) : await inflateRawAsync(out, limits);
      else out = await gunzipAsync(out, limits);
    } catch (e) {
      const big = errorCodeOf(e) === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError;
      throw new ContentDecodingError(
        big
          ? `decompressed body of ${where.url} is larger than maxBodyBytes ${maxBytes} (HTTP ${where.status})`
          : `cannot decode ${c} body of ${where.url}: ${describeError(e)} (HTTP ${where.status})`,
      );
    }
  }
  return out;
}
