/**
 * Seeding of spherical k-means (kmeans.ts): k-means++ on cosine distance and faiss-style random
 * rows. Pure math, seeded by {@link Rng}.
 */
import type { Rng } from './rng.js';

/** Float64 dot product with four partial sums (seeding only; exact order does not matter here). */
function dotRow(a: Float32Array, ao: number, b: Float64Array, bo: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const d4 = dim - (dim % 4);
  let t = 0;
  for (; t < d4; t += 4) {
    s0 += a[ao + t] * b[bo + t];
    s1 += a[ao + t + 1] * b[bo + t + 1];
    s2 += a[ao + t + 2] * b[bo + t + 2];
    s3 += a[ao + t + 3] * b[bo + t + 3];
  }
  for (; t < dim; t++) s0 += a[ao + t] * b[bo + t];
  return s0 + s1 + (s2 + s3);
}

/**
 * k-means++ seeding on cosine distance: the first centre uniform, each next one drawn with
 * probability ∝ δ to the nearest centre chosen so far, over a seeded uniform subset of
 * `sampleRows` rows (all rows when sampleRows ≥ n). Returns k × dim float32 copies of the rows.
 */
export function kmeansPlusPlus(data: Float32Array, n: number, dim: number, k: number, rng: Rng, sampleRows: number = n): Float32Array {
  const m = Math.max(k, Math.min(n, sampleRows));
  // Seeded subset: partial Fisher–Yates over 0..n−1.
  let rows: Uint32Array;
  if (m >= n) {
    rows = new Uint32Array(n);
    for (let i = 0; i < n; i++) rows[i] = i;
  } else {
    const perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    for (let i = 0; i < m; i++) {
      const r = i + rng.int(n - i);
      const tmp = perm[i];
      perm[i] = perm[r];
      perm[r] = tmp;
    }
    rows = perm.slice(0, m);
  }
  const out = new Float32Array(k * dim);
  const d = new Float64Array(m).fill(Infinity);
  const chosen = new Uint8Array(m);
  const centre = new Float64Array(dim);
  let pick = rng.int(m);
  for (let c = 0; c < k; c++) {
    chosen[pick] = 1;
    const src = rows[pick] * dim;
    out.set(data.subarray(src, src + dim), c * dim);
    if (c === k - 1) break;
    for (let t = 0; t < dim; t++) centre[t] = data[src + t];
    let total = 0;
    for (let i = 0; i < m; i++) {
      if (chosen[i]) {
        d[i] = 0;
        continue;
      }
      let di = 1 - dotRow(data, rows[i] * dim, centre, 0, dim);
      if (di < 0) di = 0;
      if (di < d[i]) d[i] = di;
      total += d[i];
    }
    if (total > 0) {
      let u = rng.next() * total;
      pick = -1;
      let lastPositive = -1;
      for (let i = 0; i < m; i++) {
        if (d[i] <= 0) continue;
        lastPositive = i;
        u -= d[i];
        if (u < 0) {
          pick = i;
          break;
        }
      }
      if (pick < 0) pick = lastPositive;
    } else {
      // Every remaining row coincides with a centre: take any unchosen row.
      let r = rng.int(m - c - 1);
      pick = 0;
      for (let i = 0; i < m; i++) {
        if (chosen[i]) continue;
        if (r-- === 0) {
          pick = i;
          break;
        }
      }
    }
  }
  return out;
}

/** k distinct rows chosen uniformly (seeded), copied: the faiss-style initialisation. */
export function randomRows(data: Float32Array, n: number, dim: number, k: number, rng: Rng): Float32Array {
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const out = new Float32Array(k * dim);
  for (let c = 0; c < k; c++) {
    const r = c + rng.int(n - c);
    const tmp = perm[c];
    perm[c] = perm[r];
    perm[r] = tmp;
    out.set(data.subarray(perm[c] * dim, perm[c] * dim + dim), c * dim);
  }
  return out;
}
