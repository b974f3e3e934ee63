import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nearestBruteForceJs } from '../../src/core/nearest.js';
import { Rng } from '../../src/core/rng.js';
import {
  exactSemDedup,
  exactSemDedupByPasses,
  parseEpsList,
  planDedupPasses,
  semDedupCluster,
  semDedupReferenceMatrix,
  sortClusterMembers,
  streamingDedupBruteForce,
  type ClusterMembers,
  type RowChunk,
} from '../../src/core/semdedup.js';
import { readNpyFloat32 } from '../../src/io/npy.js';
import { dbpSmallDir } from '../helpers/fixture.js';

/** n unit rows around `k` centres (spread ~0.3), ~`dupRate` of them near copies of an earlier row. */
function synth(n: number, dim: number, k: number, dupRate: number, seed: number): { x: Float32Array; cluster: Int32Array; distance: Float32Array } {
  const rng = new Rng(seed);
  const centres = new Float32Array(k * dim).map(() => rng.normal());
  const x = new Float32Array(n * dim);
  const cluster = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = rng.int(k);
    cluster[i] = j;
    const src = i > 0 && rng.next() < dupRate ? rng.int(i) : -1;
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const v = src >= 0 ? x[src * dim + t] + 0.002 * rng.normal() : centres[j * dim + t] + 0.6 * rng.normal();
      x[i * dim + t] = v;
      s += v * v;
    }
    for (let t = 0; t < dim; t++) x[i * dim + t] /= Math.sqrt(s);
    if (src >= 0) cluster[i] = cluster[src];
  }
  const distance = Float32Array.from({ length: n }, () => rng.next() * 0.5);
  distance[3] = distance[5] = distance[7] = 0.25; // ties, to pin the tie rule
  return { x, cluster, distance };
}

function gather(x: Float32Array, rows: Int32Array, dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, p) => out.set(x.subarray(r * dim, (r + 1) * dim), p * dim));
  return out;
}

describe('parseEpsList', () => {
  it('accepts numbers, arrays and comma lists; rejects out-of-range values', () => {
    expect(parseEpsList(0.01)).toEqual([0.01]);
    expect(parseEpsList('0.01, 0.02,0.05')).toEqual([0.01, 0.02, 0.05]);
    expect(parseEpsList([0.1, 0.2])).toEqual([0.1, 0.2]);
    // Empty parts are refused (as the CLI's --dedup-eps always did), not skipped.
    for (const bad of [0, 1, -0.1, Number.NaN, [], '', 'x', [0.1, 2], '0.1,,0.2', '0.1,', ' , ', '0.5,1', Array(33).fill(0.1)]) {
      expect(() => parseEpsList(bad as never)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    }
  });
});

describe('sortClusterMembers', () => {
  const records = {
    cluster: Int32Array.from([1, 0, 1, 1, -1, 1, 0]),
    distance: Float32Array.from([0.2, 0.1, 0.5, 0.2, 0.9, 0.1, 0.3]),
    n: 7,
  };
  it('hard: farthest first, equal δ by ascending row (stable descending sort); skips cluster −1', () => {
    const m = sortClusterMembers(records, 2, 'hard');
    expect(Array.from(m.offsets)).toEqual([0, 2, 6]);
    expect(Array.from(m.rows)).toEqual([6, 1, 2, 0, 3, 5]);
  });
  it('easy: the hard list reversed (as the reference reverses it)', () => {
    expect(Array.from(sortClusterMembers(records, 2, 'easy').rows)).toEqual([1, 6, 5, 3, 0, 2]);
  });
  it('random: a seeded permutation of each cluster', () => {
    const a = sortClusterMembers(records, 2, 'random', 3);
    expect(Array.from(a.rows)).toEqual(Array.from(sortClusterMembers(records, 2, 'random', 3).rows));
    expect(Array.from(a.rows.subarray(2)).sort()).toEqual([0, 2, 3, 5]);
  });
  it('rejects cluster ids ≥ k and bad orders', () => {
    expect(() => sortClusterMembers(records, 1)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
    expect(() => sortClusterMembers(records, 2, 'x' as never)).toThrow(expect.objectContaining({ code: 'ERR_DBPRUNE_INVALID_OPTION' }));
  });
});

describe('exact SemDeDup equals the all-pairs reference rule', () => {
  const dim = 24;
  const n = 600;
  const k = 5;
  const eps = [0.001, 0.2, 0.5];
  const { x, cluster, distance } = synth(n, dim, k, 0.15, 11);

  it.each(['hard', 'easy', 'random'] as const)('order %s: M, removals for every ε and duplicateOf', async (order) => {
    const members = sortClusterMembers({ cluster, distance, n }, k, order, 5);
    const res = await exactSemDedup({ members, dim, eps, getEmbeddings: (rows) => gather(x, rows, dim) });
    const expectedRemoved = eps.map(() => 0);
    for (let j = 0; j < k; j++) {
      const rows = members.rows.subarray(members.offsets[j], members.offsets[j + 1]);
      const emb = gather(x, rows, dim);
      const ref = semDedupReferenceMatrix(emb, rows.length, dim, eps);
      const got = semDedupCluster(emb, rows.length, dim);
      expect(Array.from(got.maxSim)).toEqual(Array.from(ref.M));
      ref.removed.forEach((flags, e) => (expectedRemoved[e] += flags.reduce((a, b) => a + b, 0)));
      for (let p = 0; p < rows.length; p++) {
        const dupOf = res.duplicateOf[rows[p]];
        if (!ref.removed[0][p]) {
          expect(dupOf).toBe(-1);
          continue;
        }
        // duplicateOf is the earliest earlier item with the maximal similarity.
        const q = rows.indexOf(dupOf);
        expect(q).toBeGreaterThanOrEqual(0);
        expect(q).toBeLessThan(p);
        let s = 0;
        for (let t = 0; t < dim; t++) s += emb[q * dim + t] * emb[p * dim + t];
        expect(s).toBe(ref.M[p]);
      }
    }
    expect(res.removed).toEqual(expectedRemoved);
    expect(res.removed[0]).toBeGreaterThan(50); // the injected near copies
    expect(res.removed[0]).toBeLessThan(res.removed[1]);
    expect(res.keptFraction[0]).toBeCloseTo((n - res.removed[0]) / n, 12);
    expect(res.members).toBe(n);
  });

  it('removes an item whose only close earlier neighbour was itself removed (chain rule)', () => {
    const a = [1, 0, 0];
    const b = [Math.cos(0.1), Math.sin(0.1), 0];
    const c = [Math.cos(0.2), Math.sin(0.2), 0];
    const emb = Float32Array.from([...a, ...b, ...c]);
    const exact = semDedupReferenceMatrix(emb, 3, 3, [0.006]);
    expect(Array.from(exact.removed[0])).toEqual([0, 1, 1]); // exact: C removed through B
    const stream = streamingDedupBruteForce(emb, Int32Array.from([0, 0, 0]), 3, 3, 0.006);
    expect(Array.from(stream.duplicateOf)).toEqual([-1, 0, -1]); // streaming: B dropped, C kept
  });

  it('the pass-by-pass variant gives the same result with bounded groups', async () => {
    const members = sortClusterMembers({ cluster, distance, n }, k, 'hard');
    const direct = await exactSemDedup({ members, dim, eps, getEmbeddings: (rows) => gather(x, rows, dim) });
    let opened = 0;
    async function* readRows(): AsyncGenerator<RowChunk> {
      opened++;
      for (let start = 0; start < n; start += 97) {
        const rows = Math.min(97, n - start);
        yield await Promise.resolve({ start, rows, data: x.slice(start * dim, (start + rows) * dim) }); // a reader's await
      }
    }
    const groups = planDedupPasses(members, 150);
    expect(groups.length).toBeGreaterThan(2);
    const byPasses = await exactSemDedupByPasses({ members, dim, eps, readRows, maxRowsInMemory: 150 });
    expect(byPasses.passes).toBe(groups.length);
    expect(opened).toBe(groups.length);
    expect(Array.from(byPasses.duplicateOf)).toEqual(Array.from(direct.duplicateOf));
    expect(byPasses.removed).toEqual(direct.removed);
  });

  it('the pass-by-pass variant reports missing rows', async () => {
    const members: ClusterMembers = sortClusterMembers({ cluster, distance, n }, k, 'hard');
    async function* short(): AsyncGenerator<RowChunk> {
      yield await Promise.resolve({ start: 0, rows: 10, data: x.slice(0, 10 * dim) }); // a reader's await
    }
    await expect(exactSemDedupByPasses({ members, dim, eps, readRows: short })).rejects.toMatchObject({ code: 'ERR_DBPRUNE_ROW_COUNT_MISMATCH' });
  });
});

describe('golden fixture (dbp-small)', () => {
  it('finds the injected duplicates at ε = 0.01 and matches the reference matrix per cluster', async () => {
    const e = await readNpyFloat32(join(dbpSmallDir, 'embeddings.npy'));
    const c = await readNpyFloat32(join(dbpSmallDir, 'centroids.npy'));
    const dim = e.cols;
    const { cluster, distance } = nearestBruteForceJs(e.data, e.rows, c.data, c.rows, dim);
    const members = sortClusterMembers({ cluster, distance, n: e.rows }, c.rows, 'hard');
    const eps = [0.01, 0.001];
    const res = await exactSemDedup({ members, dim, eps, getEmbeddings: (rows) => gather(e.data, rows, dim) });
    let refRemoved = 0;
    for (let j = 0; j < c.rows; j++) {
      const rows = members.rows.subarray(members.offsets[j], members.offsets[j + 1]);
      if (rows.length > 1200) continue; // keep the O(m²) oracle small
      const ref = semDedupReferenceMatrix(gather(e.data, rows, dim), rows.length, dim, [eps[0]]);
      const got = rows.reduce((a, r) => a + (res.duplicateOf[r] >= 0 ? 1 : 0), 0);
      expect(got).toBe(ref.removed[0].reduce((a, b) => a + b, 0));
      refRemoved += got;
    }
    expect(refRemoved).toBeGreaterThan(0);
    // The fixture holds 5% (1,000) exact or near duplicates: ε = 0.001 removes exactly those,
    // ε = 0.01 also a few natural close pairs.
    expect(res.removed[1]).toBe(1000);
    expect(res.removed[0]).toBeGreaterThan(1000);
    expect(res.removed[0]).toBeLessThan(1200);
    expect(res.keptFraction[1]).toBeCloseTo(0.95, 6);
    expect(res.largestCluster).toBeGreaterThan(0);
  });
});
