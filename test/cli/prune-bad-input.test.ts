/**
 * Bad input to `dbprune prune`, through the real CLI: each gets a clear one-line message with a
 * stable code and the right exit code (2 usage, 1 other), never a stack trace; recoverable row
 * problems become counted rows instead of failures.
 */
import { mkdtempSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { readManifest } from '../../src/io/manifest.js';
import { writeNpy } from '../../src/io/npy.js';
import { runCli } from '../helpers/cli.js';
import type { RunStats } from '../../src/io/stats.js';
import { readJson } from '../helpers/json.js';
import { unitRows } from '../helpers/vectors.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-bad-'));
const n = 400;
const dim = 16;
const k = 8;

function expectOneLineError(stderr: string, code: string): void {
  const lines = stderr.trim().split('\n');
  expect(lines.length).toBe(1);
  expect(lines[0]).toContain(code);
  expect(stderr).not.toMatch(/\n\s+at /);
}

const emb = join(dir, 'emb.npy');
const cent = join(dir, 'cent.npy');
beforeAll(async () => {
  const rng = new Rng(5);
  await writeNpy(emb, unitRows(rng, n, dim), [n, dim]);
  await writeNpy(cent, unitRows(rng, k, dim), [k, dim]);
});

describe('dbprune prune: bad input', () => {
  it('embedding and centroid dimensions differ → names both dimensions and files, exit 1', async () => {
    const c4 = join(dir, 'cent4.npy');
    await writeNpy(c4, unitRows(new Rng(1), k, 4), [k, 4]);
    const r = await runCli(['prune', '--embeddings', emb, '--centroids', c4, '--keep', '0.5', '--out', join(dir, 'o1'), '-q']);
    expect(r.code).toBe(1);
    expectOneLineError(r.stderr, 'ERR_DBPRUNE_DIM_MISMATCH');
    expect(r.stderr).toContain(`${dim}`);
    expect(r.stderr).toContain('4');
    expect(r.stderr).toContain(emb);
    expect(r.stderr).toContain(c4);
  });

  it('rows that are not unit length are normalised and counted; NaN/Inf rows are dropped with error:embedding', async () => {
    const rng = new Rng(9);
    const x = unitRows(rng, n, dim);
    for (let i = 0; i < 10; i++) for (let t = 0; t < dim; t++) x[i * dim + t] *= 3; // 10 long rows
    x[20 * dim + 3] = NaN;
    x[21 * dim] = Infinity;
    for (let t = 0; t < dim; t++) x[22 * dim + t] = 0; // zero row
    const f = join(dir, 'messy.npy');
    await writeNpy(f, x, [n, dim]);
    const out = join(dir, 'o2');
    const r = await runCli(['prune', '--embeddings', f, '--centroids', cent, '--keep', '0.5', '--out', out, '--format', 'jsonl', '-q']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/re-normalised rows: 10/);
    const stats = readJson<RunStats>(join(out, 'stats.json'));
    expect(stats.totals.renormalized).toBe(10);
    expect(stats.totals.errors).toEqual({ 'error:embedding': 3 });
    expect(stats.totals.valid).toBe(n - 3);
    expect(stats.totals.kept).toBe(Math.floor(0.5 * (n - 3)));
    const rows = readManifest(join(out, 'manifest.jsonl'));
    expect(rows.length).toBe(n);
    const errs = rows.filter((row) => row.reason === 'error:embedding');
    expect(errs.map((row) => row.key)).toEqual(['000000020', '000000021', '000000022']);
    expect(errs.every((row) => row.decision === 'drop' && row.cluster === -1 && row.distance === null)).toBe(true);
  });

  it('keys row count ≠ embedding rows → names both counts, exit 1', async () => {
    const keys = join(dir, 'keys.txt');
    writeFileSync(keys, Array.from({ length: n - 1 }, (_, i) => `k${i}`).join('\n'));
    const r = await runCli(['prune', '--embeddings', emb, '--keys', keys, '--centroids', cent, '--keep', '0.5', '--out', join(dir, 'o3'), '-q']);
    expect(r.code).toBe(1);
    expectOneLineError(r.stderr, 'ERR_DBPRUNE_ROW_COUNT_MISMATCH');
    expect(r.stderr).toContain(String(n - 1));
    expect(r.stderr).toContain(String(n));
  });

  it.each([['0'], ['1.5'], ['-0.2'], ['abc']])('keep ratio %s outside (0, 1] → usage error, exit 2', async (keep) => {
    const r = await runCli(['prune', '--embeddings', emb, '--centroids', cent, '--keep', keep, '--out', join(dir, 'o4'), '-q']);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, 'ERR_DBPRUNE_USAGE');
    expect(r.stderr).toContain('--keep');
  });

  it('k larger than the sample → usage error, exit 2', async () => {
    const small = join(dir, 'small.npy');
    await writeNpy(small, unitRows(new Rng(3), 5, dim), [5, dim]);
    const r = await runCli(['prune', '--embeddings', small, '--centroids', cent, '--keep', '0.5', '--out', join(dir, 'o5'), '-q']);
    expect(r.code).toBe(2);
    expectOneLineError(r.stderr, 'ERR_DBPRUNE_USAGE');
  });

  it('a truncated .npy → names the file and the row where it ends, exit 1', async () => {
    const f = join(dir, 'trunc.npy');
    await writeNpy(f, unitRows(new Rng(4), n, dim), [n, dim]);
    const size = statSync(f).size;
    truncateSync(f, size - 100 * dim * 4 - 7); // 100 rows and a bit fewer
    const r = await runCli(['prune', '--embeddings', f, '--centroids', cent, '--keep', '0.5', '--out', join(dir, 'o6'), '-q']);
    expect(r.code).toBe(1);
    expectOneLineError(r.stderr, 'ERR_DBPRUNE_NPY_TRUNCATED');
    expect(r.stderr).toContain(f);
    expect(r.stderr).toContain(String(n - 101));
  });
});
