import type { Rng } from '../../src/core/rng.js';

/** `n` random unit rows of `dim` (Gaussian directions, normalised in float64), row-major. */
export function unitRows(rng: Rng, n: number, dim: number): Float32Array {
  const a = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = rng.normal();
      a[i * dim + t] = v;
      s += v * v;
    }
    const inv = 1 / Math.sqrt(s);
    for (let t = 0; t < dim; t++) a[i * dim + t] *= inv;
  }
  return a;
}
