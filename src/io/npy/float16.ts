/** Element conversion: every supported dtype to float32, and float32 to IEEE half (float16) bits. */
import type { NpyDtype } from './header.js';

let HALF_TABLE: Float32Array | undefined;
function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  HALF_TABLE = t;
  return t;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
/** float32 → IEEE half bits, round to nearest even. */
export function toHalf(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** Converts raw little-endian element bytes to float32. `bytes` must start at an aligned offset. */
export function toFloat32(dtype: NpyDtype, bytes: Uint8Array, count: number, out: Float32Array): void {
  const buf = bytes.buffer;
  const off = bytes.byteOffset;
  switch (dtype) {
    case 'float16': {
      const src = new Uint16Array(buf, off, count);
      const t = halfTable();
      for (let i = 0; i < count; i++) out[i] = t[src[i]];
      return;
    }
    case 'float64':
      out.set(new Float64Array(buf, off, count));
      return;
    case 'int32':
      out.set(new Int32Array(buf, off, count));
      return;
    case 'int64': {
      const src = new BigInt64Array(buf, off, count);
      for (let i = 0; i < count; i++) out[i] = Number(src[i]);
      return;
    }
    case 'uint64': {
      const src = new BigUint64Array(buf, off, count);
      for (let i = 0; i < count; i++) out[i] = Number(src[i]);
      return;
    }
    case 'uint8':
      out.set(new Uint8Array(buf, off, count));
      return;
    case 'int8':
      out.set(new Int8Array(buf, off, count));
      return;
    case 'float32':
      out.set(new Float32Array(buf, off, count));
      return;
  }
}

/**
 * Converts `count` little-endian elements of `dtype` to float32 into `out`. `bytes` must start at an
 * offset aligned to the element size (copy it first otherwise).
 */
export function npyElementsToFloat32(dtype: NpyDtype, bytes: Uint8Array, count: number, out: Float32Array): void {
  toFloat32(dtype, bytes, count, out);
}
