import { describe, expect, it } from 'vitest';
import { largestRemainder, projectBoxSimplex, quotaBounds, solveQuotas } from '../../src/core/quota.js';
import { softmax } from '../../src/core/complexity.js';
import { Rng } from '../../src/core/rng.js';

/** Reference: λ by 200 bisection steps on f(λ) = Σ clip(a − λ, lb, ub). */
function bisectLambda(a: Float64Array, lb: Float64Array, ub: Float64Array, total: number): number {
  const f = (l: number) => a.reduce((s, v, j) => s + Math.min(ub[j], Math.max(lb[j], v - l)), 0);
  let lo = -1e9;
  let hi = 1e9;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) > total) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

function randomProblem(rng: Rng, k: number) {
  const size = new Float64Array(k).map(() => (rng.next() < 0.1 ? rng.int(3) : 1 + rng.int(2000)));
  const c = new Float64Array(k).map(() => rng.next());
  const prob = softmax(c, 0.1 + rng.next());
  const n = size.reduce((s, v) => s + v, 0);
  const nTarget = Math.floor(n * (0.05 + 0.9 * rng.next()));
  return { size, prob, nTarget };
}

describe('quota QP (water-filling)', () => {
  it('matches a bisection solution of the same projection on random problems', () => {
    const rng = new Rng(1);
    for (let trial = 0; trial < 200; trial++) {
      const { size, prob, nTarget } = randomProblem(rng, 2 + rng.int(300));
      const balance = trial % 3 === 0 ? 0 : 0.5;
      const sol = solveQuotas({ prob, size, nTarget, balance });
      const { lb, ub } = quotaBounds(size, nTarget, balance);
      const a = prob.map((p) => p * nTarget);
      const ref = bisectLambda(a, lb, ub, nTarget);
      const sum = sol.real.reduce((s, v) => s + v, 0);
      expect(Math.abs(sum - nTarget)).toBeLessThan(1e-6 * Math.max(1, nTarget));
      for (let j = 0; j < size.length; j++) {
        const refX = Math.min(ub[j], Math.max(lb[j], a[j] - ref));
        expect(Math.abs(sol.real[j] - refX)).toBeLessThan(1e-5);
        expect(sol.real[j]).toBeGreaterThanOrEqual(lb[j] - 1e-9);
        expect(sol.real[j]).toBeLessThanOrEqual(ub[j] + 1e-9);
      }
    }
  });

  it('integer quotas sum to exactly N_target, within bounds, and are the integer optimum', () => {
    const rng = new Rng(2);
    for (let trial = 0; trial < 200; trial++) {
      const { size, prob, nTarget } = randomProblem(rng, 2 + rng.int(100));
      const sol = solveQuotas({ prob, size, nTarget });
      const total = sol.quota.reduce((s, v) => s + v, 0);
      expect(total).toBe(nTarget);
      for (let j = 0; j < size.length; j++) {
        expect(sol.quota[j]).toBeGreaterThanOrEqual(sol.lb[j]);
        expect(sol.quota[j]).toBeLessThanOrEqual(sol.ub[j]);
        // Rounding never moves a quota by a whole unit away from the real optimum.
        expect(Math.abs(sol.quota[j] - sol.real[j])).toBeLessThan(1);
      }
      // Integer optimality of the separable objective Σ ½x² − a·x: no unit transfer improves it.
      const a = prob.map((p) => p * nTarget);
      let bestGainUp = -Infinity;
      let bestGainDown = -Infinity;
      for (let j = 0; j < size.length; j++) {
        if (sol.quota[j] < sol.ub[j]) bestGainUp = Math.max(bestGainUp, a[j] - sol.quota[j] - 0.5);
        if (sol.quota[j] > sol.lb[j]) bestGainDown = Math.max(bestGainDown, sol.quota[j] - 0.5 - a[j]);
      }
      expect(bestGainUp + bestGainDown).toBeLessThanOrEqual(1e-9);
    }
  });

  it('lower bound is min(m, n_j − 1), never below 0, with m = ⌊N_target/k · balance⌋', () => {
    const size = Float64Array.from([0, 1, 5, 1000]);
    const { lb, ub, minSamples } = quotaBounds(size, 400, 0.5);
    expect(minSamples).toBe(50);
    expect(Array.from(lb)).toEqual([0, 0, 4, 50]);
    expect(Array.from(ub)).toEqual([0, 1, 5, 1000]);
    expect(quotaBounds(size, 400, 0).minSamples).toBe(1);
  });

  it('handles a flat segment (all clusters clamped) and rejects infeasible boxes', () => {
    const a = Float64Array.from([10, 10]);
    const { x } = projectBoxSimplex(a, Float64Array.from([1, 1]), Float64Array.from([3, 3]), 6);
    expect(Array.from(x)).toEqual([3, 3]);
    expect(() => projectBoxSimplex(a, Float64Array.from([4, 4]), Float64Array.from([5, 5]), 6)).toThrow(
      expect.objectContaining({ code: 'ERR_DBPRUNE_INTERNAL' }),
    );
  });

  it('largest remainder breaks equal fractions toward the lower cluster index', () => {
    const q = largestRemainder(Float64Array.from([1.5, 1.5, 1.5, 1.5]), new Float64Array(4), Float64Array.from([9, 9, 9, 9]), 6);
    expect(Array.from(q)).toEqual([2, 2, 1, 1]);
  });
});
