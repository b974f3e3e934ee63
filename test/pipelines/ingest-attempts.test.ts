/**
 * Issue #11 item 1 (ingest half): an input at which the process keeps dying must not crash-loop the
 * daemon. Five earlier starts that ended at journal entry 0 (recorded the way ingest records them)
 * make the next start give the rest of that entry up as one error row and go on.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EntryAttempts, MAX_ENTRY_ATTEMPTS } from '../../pipelines/ingest/entry-attempts.js';
import { repoRoot } from '../helpers/fixture.js';
import { committedRows, spawnIngest } from '../helpers/ingest.js';

const SHARDS = join(repoRoot, 'data-samples', 'shards');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-ingest-attempts-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('ingest crash-loop guard', () => {
  it('counts starts at one position; a position that moved counts from 1 again; clear forgets', async () => {
    const state = join(dir, 'unit');
    await mkdir(state, { recursive: true });
    const a = EntryAttempts.open(state);
    expect(await a.begin(3, 0)).toBe(1);
    expect(await a.begin(3, 0)).toBe(2);
    expect(await a.begin(3, 40)).toBe(1);
    await a.clear();
    expect(await a.begin(3, 40)).toBe(1);
  });

  it('gives up an entry the process died on too often as one error row, and goes on', { timeout: 90_000 }, async () => {
    const state = join(dir, 'state');
    const out = join(dir, 'out');
    await mkdir(state, { recursive: true });
    const attempts = EntryAttempts.open(state);
    for (let i = 0; i < MAX_ENTRY_ATTEMPTS; i++) await attempts.begin(0, 0); // five starts that all died at entry 0

    const p = spawnIngest(['--state', state, '--out', out, '--stdin', '--exit-when-done', '--keep', '0.3', '--checkpoint-secs', '0.3'], `${SHARDS}/00000.tar\n${SHARDS}/00001.tar\n`);
    const e = await p.exited;
    expect(e.code, p.out.stderr).toBe(0);
    expect(p.out.stderr).toMatch(/00000\.tar \(journal entry 0\) was being processed when the process ended 5 times/);
    const rows = await committedRows(out);
    const given = rows.filter((r) => r.shard?.endsWith('00000.tar'));
    expect(given).toHaveLength(1);
    expect(given[0]).toMatchObject({ key: '00000.tar:input', reason: 'error:input' });
    expect(rows.filter((r) => r.shard?.endsWith('00001.tar') && !r.reason.startsWith('error:')).length).toBe(200);
    expect(existsSync(join(state, 'attempts.json'))).toBe(false); // a clean stop clears the count
  });
});
