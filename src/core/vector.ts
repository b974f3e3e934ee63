/** Row-wise vector helpers on row-major Float32Array matrices. Pure math, no I/O. */

/** Float64 dot product of row `i` of `a` and row `j` of `b`, both with `dim` columns. */
export function dotRows(a: Float32Array, i: number, b: Float32Array, j: number, dim: number): number {
  let s = 0;
  const ai = i * dim;
  const bj = j * dim;
  for (let t = 0; t < dim; t++) s += a[ai + t] * b[bj + t];
  return s;
}

export interface NormalizeResult {
  /** Rows whose norm differed from 1 by more than `tolerance` and were rescaled. */
  renormalized: number;
  /** Rows holding NaN/Inf or a zero vector: left as they are, flagged in `invalid`. */
  invalidCount: number;
  /** invalid[i] = 1 when row i cannot be used. Allocated only when some row is invalid. */
  invalid: Uint8Array | null;
}

/**
 * L2-normalises the `n` rows of `x` (n×dim) in place, in float64 arithmetic.
 * Rows already within `tolerance` of unit length are left bit-for-bit untouched, so normalised
 * inputs (as the reference method assumes) give exactly the reference distances.
 */
export function normalizeRows(x: Float32Array, n: number, dim: number, tolerance = 1e-4): NormalizeResult {
  const r: NormalizeResult = { renormalized: 0, invalidCount: 0, invalid: null };
  // Squared norms four rows at a time: each row summed left to right as before (bit-identical),
  // as four independent chains the CPU overlaps (one chain waits on the adder's latency).
  const n4 = n - (n % 4);
  let i = 0;
  for (; i < n4; i += 4) {
    const o0 = i * dim;
    const o1 = o0 + dim;
    const o2 = o1 + dim;
    const o3 = o2 + dim;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let t = 0; t < dim; t++) {
      const a = x[o0 + t];
      const b = x[o1 + t];
      const c = x[o2 + t];
      const d = x[o3 + t];
      s0 += a * a;
      s1 += b * b;
      s2 += c * c;
      s3 += d * d;
    }
    scaleRow(x, i, dim, s0, n, tolerance, r);
    scaleRow(x, i + 1, dim, s1, n, tolerance, r);
    scaleRow(x, i + 2, dim, s2, n, tolerance, r);
    scaleRow(x, i + 3, dim, s3, n, tolerance, r);
  }
  for (; i < n; i++) {
    const o = i * dim;
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = x[o + t];
      s += v * v;
    }
    scaleRow(x, i, dim, s, n, tolerance, r);
  }
  return r;
}

/** Row `i` of `x` with squared norm `s`: marked invalid (NaN/Inf/zero), left as it is, or scaled to unit length. */
function scaleRow(x: Float32Array, i: number, dim: number, s: number, n: number, tolerance: number, r: NormalizeResult): void {
  if (!Number.isFinite(s) || s === 0) {
    r.invalid ??= new Uint8Array(n);
    r.invalid[i] = 1;
    r.invalidCount++;
    return;
  }
  const norm = Math.sqrt(s);
  if (Math.abs(norm - 1) > tolerance) {
    const inv = 1 / norm;
    const o = i * dim;
    for (let t = 0; t < dim; t++) x[o + t] *= inv;
    r.renormalized++;
  }
}

/** Returns a copy of `c` (k×dim) with every row scaled to unit length (float64 arithmetic). */
export function normalizedCopy(c: Float32Array, k: number, dim: number): Float32Array {
  const out = new Float32Array(k * dim);
  for (let j = 0; j < k; j++) {
    const o = j * dim;
    let s = 0;
    for (let t = 0; t < dim; t++) s += c[o + t] * c[o + t];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let t = 0; t < dim; t++) out[o + t] = c[o + t] * inv;
  }
  return out;
}

/** Result of {@link argmaxDot}; one object is reused per call site to keep hot loops allocation-free. */
export interface ArgmaxDot {
  best: number;
  arg: number;
}

/**
 * max_{i < count} ⟨q, m_i⟩ over the first `count` rows of `m` (count×dim, row-major), each dot product
 * summed left to right in float64; the earliest row wins ties (strict >). Writes into `out` and
 * returns it: { best: −Infinity, arg: −1 } when count = 0 or every product is NaN. 4 rows per pass
 * (the query is read once per 4 rows), the same sums as a plain loop. `m` is always a Float32Array:
 * one element kind keeps this hot loop monomorphic (a Float64 caller made it ~20% slower).
 */
export function argmaxDot(q: Float64Array, m: Float32Array, count: number, dim: number, out: ArgmaxDot): ArgmaxDot {
  let best = -Infinity;
  let arg = -1;
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const o0 = i * dim;
    const o1 = o0 + dim;
    const o2 = o1 + dim;
    const o3 = o2 + dim;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let t = 0; t < dim; t++) {
      const v = q[t];
      s0 += v * m[o0 + t];
      s1 += v * m[o1 + t];
      s2 += v * m[o2 + t];
      s3 += v * m[o3 + t];
    }
    if (s0 > best) {
      best = s0;
      arg = i;
    }
    if (s1 > best) {
      best = s1;
      arg = i + 1;
    }
    if (s2 > best) {
      best = s2;
      arg = i + 2;
    }
    if (s3 > best) {
      best = s3;
      arg = i + 3;
    }
  }
  for (; i < count; i++) {
    const o = i * dim;
    let s = 0;
    for (let t = 0; t < dim; t++) s += q[t] * m[o + t];
    if (s > best) {
      best = s;
      arg = i;
    }
  }
  out.best = best;
  out.arg = arg;
  return out;
}
