import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in test/helpers). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** ../shared/fixtures/dbp-small beside the checkout: the golden case from an independent implementation. */
export const dbpSmallDir = resolve(repoRoot, '..', 'shared', 'fixtures', 'dbp-small');

export interface GoldenCase {
  params: { keep_ratio: number; temperature: number; num_nns: number; cls_bal_ratio: number; which: 'hard' | 'easy' | 'random' };
  totals: { n: number; k: number; n_target: number; n_kept: number; min_samples: number; lambda: number };
  clusters: {
    size: number[];
    d_intra: number[];
    d_inter: number[];
    complexity: number[];
    prob: number[];
    lb: number[];
    ub: number[];
    quota_real: number[];
    quota: number[];
  };
  kept_keys: string[];
}

export function loadGolden(name: string): GoldenCase {
  const path = join(dbpSmallDir, name);
  if (!existsSync(path)) throw new Error(`golden fixture missing: ${path} (tests expect ../shared beside the checkout)`);
  return JSON.parse(readFileSync(path, 'utf8')) as GoldenCase;
}

export function loadFixtureKeys(): string[] {
  return readFileSync(join(dbpSmallDir, 'keys.txt'), 'utf8').split('\n').filter((l) => l.length > 0);
}
