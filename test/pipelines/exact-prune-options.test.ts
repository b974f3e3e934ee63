// pruneExact validates its options before reading anything: the options that are CLI flags one to
// one fail with ERR_DBPRUNE_USAGE naming the flag, library-only ones with ERR_DBPRUNE_INVALID_OPTION;
// the limits in the message come from src/core/validate.ts.
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import type { ManifestFormat } from '../../src/io/manifest.js';
import { pruneExact, type ExactPruneOptions } from '../../pipelines/exact-prune.js';

const base: ExactPruneOptions = { embeddings: 'never.npy', centroids: 'never.npy', out: 'never', keepRatio: 0.5 };

describe('pruneExact options', () => {
  it.each<[Partial<ExactPruneOptions>, string, string, string]>([
    [{ format: 'csv' as ManifestFormat }, ErrorCodes.USAGE, 'format', '--format must be one of parquet | arrow | jsonl, got "csv"'],
    [{ keepRatio: undefined, target: 0 }, ErrorCodes.USAGE, 'target', '--target must be an integer ≥ 1, got 0'],
    [{ datacomp: 'dc', filters: { basic: 'all' as never } }, ErrorCodes.USAGE, 'basic-filter', '--basic-filter must be one of full | no-language'],
    [{ datacomp: 'dc', filters: { clipScore: { top: 1.5 } } }, ErrorCodes.USAGE, 'clip-score-top', '--clip-score-top must be a number > 0 and ≤ 1, got 1.5'],
    [{ datacomp: 'dc', filters: { clipScore: { min: Number.POSITIVE_INFINITY } } }, ErrorCodes.USAGE, 'clip-score-min', '--clip-score-min must be a finite number'],
    [{ datacomp: 'dc', filters: { clipScore: { top: 0.3, from: 'h14' as never } } }, ErrorCodes.USAGE, 'clip-score-from', '--clip-score-from must be one of l14 | b32'],
    [{ batchRows: 2 ** 20 + 1 }, ErrorCodes.INVALID_OPTION, 'batchRows', 'option batchRows must be an integer in 1..2^20'],
  ])('%j → %s', async (extra, code, option, message) => {
    const err: unknown = await pruneExact({ ...base, ...extra }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code, context: { option } });
    expect((err as Error).message).toContain(message);
  });
});
