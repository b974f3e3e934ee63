/**
 * The README's custom-pipeline example runs, and its manifest has one row per input sample —
 * including the rows the user's own stage rejected, with the user's reason.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runCustomExample } from '../../pipelines/custom-example.js';
import type { ManifestRow } from '../../src/core/sample.js';
import { parseJsonLines } from '../helpers/json.js';
import { tempDir } from '../stages/image-fixtures.js';

const tmp = tempDir('dbprune-custom-');
afterAll(() => tmp.cleanup());

describe('pipelines/custom-example.ts', () => {
  it('a user filter between dbprune stages: rejects reach the manifest; own embeddings feed decide', async () => {
    const { filter, own } = await runCustomExample(tmp.dir);
    const rows = parseJsonLines<ManifestRow>(readFileSync(filter.manifest, 'utf8'));
    expect(rows.length).toBe(1200);
    expect(new Set(rows.map((r) => r.key)).size).toBe(1200);
    const rejected = rows.filter((r) => r.reason === 'filter:caption-length');
    expect(rejected.length).toBe(filter.byReason['filter:caption-length']);
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected.every((r) => r.decision === 'drop' && (r.caption ?? '').trim().length < 15 && /fewer than 15/.test(r.error ?? ''))).toBe(true);
    expect(rows.filter((r) => r.reason === 'dbp').length).toBe(1200 - rejected.length);
    expect(filter.kept).toBe(rows.filter((r) => r.decision === 'keep').length);

    const ownRows = parseJsonLines<ManifestRow>(readFileSync(own.manifest, 'utf8'));
    expect(ownRows.length).toBe(200);
    expect(ownRows.every((r) => r.reason === 'dbp' && r.cluster >= 0)).toBe(true);
    // A cold-start decider (no calibration) still keeps about the asked 30%.
    expect(own.kept / 200).toBeGreaterThan(0.2);
    expect(own.kept / 200).toBeLessThan(0.45);
  });
});
