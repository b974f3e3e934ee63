/**
 * Issue #12 item "one name per meaning": ingest's image downloads are `--download-concurrency`, as in
 * run and embed; the old `--concurrency` still works as a deprecated alias and says so once.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { committedRows, spawnIngest } from '../helpers/ingest.js';

let dir: string;
let list: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-ingest-flags-'));
  list = join(dir, 'urls.txt');
  // port 9 on loopback: nothing listens, every download fails fast (an error row each)
  await writeFile(list, Array.from({ length: 6 }, (_, i) => `http://127.0.0.1:9/${i}.jpg`).join('\n'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function run(name: string, flags: string[]): Promise<{ stderr: string; rows: number }> {
  const out = join(dir, `out-${name}`);
  const p = spawnIngest(['--state', join(dir, `state-${name}`), '--out', out, '--stdin', '--exit-when-done', '--keep', '0.5', '--allow-private', ...flags], `${list}\n`);
  const e = await p.exited;
  expect(e.code, p.out.stderr).toBe(0);
  return { stderr: p.out.stderr, rows: (await committedRows(out)).length };
}

describe('ingest download concurrency flags', () => {
  it('--download-concurrency sets image downloads; --concurrency is its deprecated alias with one note', { timeout: 90_000 }, async () => {
    const current = await run('new', ['--download-concurrency', '2']);
    expect(current.rows).toBe(6);
    expect(current.stderr).not.toMatch(/deprecated/);
    const old = await run('old', ['--concurrency', '2']);
    expect(old.rows).toBe(6);
    expect(old.stderr.match(/--concurrency is deprecated here; use --download-concurrency/g)).toHaveLength(1);
    const bad = spawnIngest(['--state', join(dir, 'st-bad'), '--out', join(dir, 'out-bad'), '--stdin', '--download-concurrency', '0'], '');
    expect((await bad.exited).code).toBe(2);
    expect(bad.out.stderr).toMatch(/--download-concurrency/);
  });
});
