/** The DataComp flags of the real CLI: a recipe run, fit --datacomp, and usage errors (exit 2). */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { dataCompDir } from '../helpers/datacomp.js';

describe('dbprune --datacomp', () => {
  it('fit, then basic ∩ CLIP score → SemDeDup → DBP with --target, writing kept_uids.npy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbprune-dc-cli-'));
    const f = await runCli(['fit', '--datacomp', dataCompDir, '-k', '8', '--out', join(dir, 'c'), '-q'], { timeoutMs: 120_000 });
    expect(f.code).toBe(0);
    const p = await runCli(
      ['prune', '--datacomp', dataCompDir, '--centroids', join(dir, 'c', 'centroids.npy'), '--target', '20', '--clip-score-top', '0.3', '--basic-filter', '--dedup-eps', '0.05', '--out', join(dir, 'p'), '--json', '-q'],
      { timeoutMs: 120_000 },
    );
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    const totals = JSON.parse(p.stdout) as { kept: number; samples: number; errors: Record<string, number> };
    expect(totals.kept).toBe(20);
    expect(totals.samples).toBe(360);
    expect(totals.errors['filter:basic']).toBeGreaterThan(0);
    const stats = JSON.parse(readFileSync(join(dir, 'p', 'stats.json'), 'utf8')) as { filters: { order: string[] } };
    expect(stats.filters.order).toEqual(['basic', 'clip_score', 'semdedup', 'dbp']);
    expect(readFileSync(join(dir, 'p', 'kept_uids.npy')).length).toBe(128 + 16 * 20);
  }, 240_000);

  it.each([
    [['--clip-score-top', '0.3', '--clip-score-min', '0.2']],
    [['--basic-filter', '--basic-filter-no-language']],
    [['--clip-score-top', '1.5']],
    [['--clip-score-from', 'l14']],
  ])('rejects %j with exit 2 and one line', async (extra) => {
    const r = await runCli(['prune', '--datacomp', dataCompDir, '--centroids', 'x.npy', '--keep', '0.3', '--out', 'never', ...extra]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('ERR_DBPRUNE_USAGE');
  });

  it('prune refuses --text-model (it scores images) instead of ignoring the CLIP-score flags', async () => {
    const r = await runCli(['prune', '--embeddings', 'e.npy', '--centroids', 'x.npy', '--keep', '0.3', '--text-model', 'tm', '--clip-score-min', '0.2', '--out', 'never']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ERR_DBPRUNE_USAGE');
  });

  it('filters without --datacomp are a usage error', async () => {
    const r = await runCli(['prune', '--embeddings', 'e.npy', '--centroids', 'x.npy', '--keep', '0.3', '--basic-filter', '--out', 'never']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ERR_DBPRUNE_USAGE');
  });
});
