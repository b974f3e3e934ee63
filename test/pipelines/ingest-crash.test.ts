/**
 * Crash test of `dbprune ingest`: shards served by a loopback HTTP server, the process killed with
 * SIGKILL at random moments (during start-up/recovery, mid-shard, mid-commit) at least 10 times and
 * restarted each time; afterwards the committed segments hold every input key exactly once, with
 * the decisions of an uninterrupted run.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { repoRoot } from '../helpers/fixture.js';
import { committedRows, decisionsById, serveShardsSlowly, spawnIngest } from '../helpers/ingest.js';

const SHARDS = join(repoRoot, 'data-samples', 'shards');

let server: Awaited<ReturnType<typeof serveShardsSlowly>>;
let base: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-ingest-crash-'));
  server = await serveShardsSlowly(128 * 1024, 5);
  base = server.base;
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('dbprune ingest under SIGKILL', () => {
  it('loses and repeats nothing across ≥10 kill -9s, and decides like an uninterrupted run', { timeout: 150_000 }, async () => {
    const names = (await readdir(SHARDS)).filter((f) => f.endsWith('.tar')).sort();
    const list = `${names.map((n) => `${base}/${n}`).join('\n')}\n`;
    const args = (name: string): string[] => [
      '--state',
      join(dir, name, 'state'),
      '--out',
      join(dir, name, 'out'),
      '--stdin',
      '--exit-when-done',
      '--allow-private',
      '--checkpoint-every',
      '40',
      '--checkpoint-secs',
      '0.2',
      '--keep',
      '0.3',
    ];

    // the uninterrupted reference
    const ref = spawnIngest(args('ref'), list);
    const refExit = await ref.exited;
    expect(refExit.code, ref.out.stderr).toBe(0);
    const refRows = await committedRows(join(dir, 'ref', 'out'));
    const refMap = decisionsById(refRows).byId;
    expect(refRows.length).toBe(names.length * 200);
    expect(refMap.size).toBe(refRows.length);

    // kill -9 at random moments, restarting each time
    const rng = new Rng(20240611);
    let kills = 0;
    let killsAfterCommit = 0;
    let midEntryResumes = 0;
    let attempts = 0;
    let final: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let lastErr = '';
    while (final === undefined && attempts < 40) {
      attempts++;
      const p = spawnIngest(args('crash'), list);
      if (kills < 12) {
        // half the kills during start-up / recovery, half after processing has begun
        const early = kills % 2 === 0;
        const started = early
          ? Promise.resolve()
          : new Promise<void>((r) => {
              const check = setInterval(() => {
                if (p.out.stderr.includes('dbprune ingest: commit') || p.child.exitCode !== null) {
                  clearInterval(check);
                  r();
                }
              }, 10);
            });
        await started;
        await new Promise((r) => setTimeout(r, early ? 200 + rng.int(1300) : rng.int(500)));
        if (p.child.exitCode === null && p.child.signalCode === null) {
          p.child.kill('SIGKILL');
          const e = await p.exited;
          if (e.signal === 'SIGKILL') kills++;
          if (p.out.stderr.includes('dbprune ingest: commit')) killsAfterCommit++;
          const ready = /dbprune ingest: ready (\{.*\})/.exec(p.out.stderr);
          if (ready && (JSON.parse(ready[1]) as { position: { sample: number } }).position.sample > 0) midEntryResumes++;
          continue;
        }
      }
      const e = await p.exited;
      lastErr = p.out.stderr;
      if (e.code === 0) final = e;
      else expect.fail(`ingest exited ${e.code}/${e.signal}: ${p.out.stderr}`);
    }
    expect(kills).toBeGreaterThanOrEqual(10);
    expect(killsAfterCommit).toBeGreaterThanOrEqual(5); // killed while deciding and committing
    expect(midEntryResumes).toBeGreaterThanOrEqual(1); // resumed inside a shard (samples skipped)
    expect(final?.code, lastErr).toBe(0);

    const rows = await committedRows(join(dir, 'crash', 'out'));
    const { byId: seen, repeated: twice } = decisionsById(rows);
    expect(twice).toEqual([]);
    expect(rows.length).toBe(refRows.length);
    const differ = [...refMap].filter(([id, d]) => seen.get(id) !== d);
    expect(differ).toEqual([]);
    // no uncommitted leftovers (and no lock once the last run stopped); the owner record stays
    expect((await readdir(join(dir, 'crash', 'out'))).filter((f) => f.startsWith('.'))).toEqual(['.dbprune-ingest.json']);
  });
});
