/** The split of SemDeDup into dedup jobs: every item of every cluster scored exactly once, jobs within budget. */
import { describe, expect, it } from 'vitest';
import { planDedupTasks } from '../../src/cluster/dedup-job.js';
import { sortClusterMembers } from '../../src/core/semdedup.js';
import { Rng } from '../../src/core/rng.js';

function members(sizes: number[]): ReturnType<typeof sortClusterMembers> {
  const rng = new Rng(3);
  const cluster = Int32Array.from(sizes.flatMap((m, j) => Array.from({ length: m }, () => j)));
  for (let i = cluster.length - 1; i > 0; i--) {
    const t = rng.int(i + 1);
    [cluster[i], cluster[t]] = [cluster[t], cluster[i]];
  }
  const distance = Float32Array.from(cluster, () => rng.next());
  return sortClusterMembers({ cluster, distance, n: cluster.length }, sizes.length);
}

describe('planDedupTasks', () => {
  it('packs small clusters, splits large ones, and covers items [0, m) of each cluster once', () => {
    const sizes = [1, 30, 40, 0, 2, 900, 10, 3000];
    const m = members(sizes);
    const budget = 50_000;
    const tasks = planDedupTasks(m, budget);
    const covered = sizes.map(() => [] as [number, number][]);
    for (const task of tasks) {
      let at = 0;
      let work = 0;
      for (const s of task) {
        expect(s.at).toBe(at); // the task's rows file holds each slice's members [0, to)
        at += s.to;
        covered[s.cluster].push([s.from, s.to]);
        work += (s.to * (s.to - 1) - s.from * (s.from - 1)) / 2;
      }
      // a task is within budget, or a single slice of a split cluster (about the budget)
      if (task.length > 1) expect(work).toBeLessThanOrEqual(budget);
      else expect(work).toBeLessThanOrEqual(budget * 1.2);
    }
    sizes.forEach((size, j) => {
      if (size < 2) return expect(covered[j]).toEqual([]);
      const slices = covered[j].sort((a, b) => a[0] - b[0]);
      expect(slices[0][0]).toBe(0);
      for (let t = 1; t < slices.length; t++) expect(slices[t][0]).toBe(slices[t - 1][1]);
      expect(slices[slices.length - 1][1]).toBe(size);
    });
    expect(covered[1].length + covered[2].length).toBe(2); // packed, not split
    expect(covered[7].length).toBeGreaterThan(50); // 3000 members ≈ 4.5M pairs: split
    expect(tasks.filter((t) => t.some((s) => s.cluster === 1))[0].some((s) => s.cluster === 2)).toBe(true);
  });
});
