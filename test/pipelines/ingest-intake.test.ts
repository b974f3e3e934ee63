/**
 * `dbprune ingest` intake under stress (issue #11): identical URL batches posted concurrently, the
 * state folder deleted under a running daemon, and two daemons pointed at one output folder.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { writeNpy } from '../../src/io/npy.js';
import { repoRoot } from '../helpers/fixture.js';
import { committedRows, spawnIngest as spawnIngestProc, type IngestProc } from '../helpers/ingest.js';

/** Every daemon a test starts, killed (by its pid) in teardown even when the test failed midway. */
const started: IngestProc[] = [];
const spawnIngest = (args: string[], stdin = ''): IngestProc => {
  const p = spawnIngestProc(args, stdin);
  started.push(p);
  return p;
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-ingest-intake-'));
});
afterAll(async () => {
  for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(started.map((p) => p.exited));
  await rm(dir, { recursive: true, force: true });
});

const common = ['--checkpoint-every', '64', '--checkpoint-secs', '0.3', '--keep', '0.3', '--format', 'jsonl'];
type Accepted = { accepted: { i: number; src: string; duplicate: boolean }[] };

describe('dbprune ingest intake', () => {
  it('20 concurrent identical POST /urls: one accepted, 19 duplicates of it, no 500', { timeout: 30_000 }, async () => {
    const st = join(dir, 'race', 'state');
    const p = spawnIngest(['--state', st, '--out', join(dir, 'race', 'out'), '--listen', '127.0.0.1:0', ...common]);
    const { listen } = JSON.parse((await p.waitFor(/dbprune ingest: ready (\{.*\})/))[1]) as { listen: { url: string } };
    const body = 'http://127.0.0.1:9/a.jpg\nhttp://127.0.0.1:9/b.jpg\n';
    const replies = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const r = await fetch(`${listen.url}/urls`, { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body });
        return { status: r.status, body: (await r.json()) as Accepted };
      }),
    );
    expect(replies.map((r) => r.status).sort()).toEqual([...Array<number>(19).fill(200), 202]);
    const entries = replies.flatMap((r) => r.body.accepted);
    expect(new Set(entries.map((a) => a.i))).toEqual(new Set([0]));
    expect(entries.filter((a) => !a.duplicate)).toHaveLength(1);
    const journal = (await readFile(join(st, 'journal.jsonl'), 'utf8')).split('\n').filter(Boolean);
    expect(journal).toHaveLength(1);
    expect(await readdir(join(st, 'tmp'))).toEqual([]);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });

  it('a deleted state folder: the next POST is refused with ERR_DBPRUNE_STATE, and the daemon stops with one coded line', { timeout: 30_000 }, async () => {
    const st = join(dir, 'gone', 'state');
    const p = spawnIngest(['--state', st, '--out', join(dir, 'gone', 'out'), '--listen', '127.0.0.1:0', ...common]);
    const { listen } = JSON.parse((await p.waitFor(/dbprune ingest: ready (\{.*\})/))[1]) as { listen: { url: string } };
    await rm(st, { recursive: true, force: true });
    const r = await fetch(`${listen.url}/shards`, { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body: 'http://127.0.0.1:9/00000.tar\n' });
    expect(r.status).toBe(500); // not 202: the input was not journaled
    expect(await r.json()).toMatchObject({ error: 'ERR_DBPRUNE_STATE' });
    const e = await p.exited;
    expect(e.code).toBe(1);
    const lines = p.out.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^dbprune: .*journal\.jsonl was removed or replaced while in use.*\[ERR_DBPRUNE_STATE\]$/);
    expect(p.out.stderr).not.toMatch(/\n\s+at /); // no stack
    expect(existsSync(join(st, 'journal.jsonl'))).toBe(false);
  });

  it('a deleted state folder under --watch: the next file stops ingest with ERR_DBPRUNE_STATE (exit 1), not endless warnings', { timeout: 30_000 }, async () => {
    const st = join(dir, 'gone-watch', 'state');
    const watch = join(dir, 'gone-watch', 'in');
    await mkdir(watch, { recursive: true });
    const p = spawnIngest(['--state', st, '--out', join(dir, 'gone-watch', 'out'), '--watch', watch, '--poll-ms', '50', ...common]);
    await p.waitFor(/dbprune ingest: ready/);
    await rm(st, { recursive: true, force: true });
    writeFileSync(join(watch, 'list.txt'), 'http://127.0.0.1:9/a.jpg\n');
    const e = await p.exited;
    expect(e.code).toBe(1);
    expect(p.out.stderr.trim().split('\n').at(-1)).toMatch(/^dbprune: .*journal\.jsonl was removed or replaced.*\[ERR_DBPRUNE_STATE\]$/);
  });

  it('a second daemon with another --state on the same --out is refused; so is a restart after the state was deleted', { timeout: 60_000 }, async () => {
    const out = join(dir, 'two', 'out');
    const shard = join(repoRoot, 'data-samples', 'shards', '00000.tar');
    const a = spawnIngest(['--state', join(dir, 'two', 'sa'), '--out', out, '--stdin', ...common], `${shard}\n`);
    await a.waitFor(/dbprune ingest: commit .*"entry":1,"sample":0/);
    const b = spawnIngest(['--state', join(dir, 'two', 'sb'), '--out', out, '--stdin', ...common]);
    expect((await b.exited).code).toBe(1);
    expect(b.out.stderr).toMatch(/output folder .* is in use by process \d+.*\[ERR_DBPRUNE_STATE\]/);
    a.child.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    const parts = (await readdir(out)).filter((f) => f.startsWith('part-'));
    const before = await Promise.all(parts.map((f) => readFile(join(out, f), 'utf8')));
    expect(before.join('').trim().split('\n').length).toBeGreaterThan(0);
    // a (stopped) daemon's OUT taken by another state folder: refused, nothing deleted
    const c = spawnIngest(['--state', join(dir, 'two', 'sc'), '--out', out, '--stdin', ...common], `${shard}\n`);
    expect((await c.exited).code).toBe(1);
    expect(c.out.stderr).toMatch(/holds \d+ committed segment\(s\) of another state folder.*\[ERR_DBPRUNE_STATE\]/);
    // the state folder deleted, then restarted with the same flags: refused, nothing overwritten
    await rm(join(dir, 'two', 'sa'), { recursive: true, force: true });
    const d = spawnIngest(['--state', join(dir, 'two', 'sa'), '--out', out, '--stdin', ...common], `${shard}\n`);
    expect((await d.exited).code).toBe(1);
    expect(d.out.stderr).toMatch(/refusing to delete or overwrite them.*\[ERR_DBPRUNE_STATE\]/);
    expect(await Promise.all(parts.map((f) => readFile(join(out, f), 'utf8')))).toEqual(before);
  });

  it('repeated keys within an input are error:duplicate-key rows, also across a stop and resume mid-input', { timeout: 120_000 }, async () => {
    const d = join(dir, 'dupkeys');
    await mkdir(d, { recursive: true });
    const n = 200_000;
    const rng = new Rng(3);
    await writeNpy(join(d, 'emb.npy'), new Float32Array(n * 64).map(() => rng.normal()), [n, 64]);
    writeFileSync(join(d, 'emb.keys.txt'), `${Array.from({ length: n }, (_, i) => `k${i % 150_000}`).join('\n')}\n`);
    const args = ['--state', join(d, 'state'), '--out', join(d, 'out'), '--embeddings', '--stdin', '--exit-when-done', '--centroids', join(repoRoot, 'data-samples', 'centroids', 'centroids.npy'), '--checkpoint-every', '4096', '--checkpoint-secs', '30', '--format', 'jsonl'];
    const first = spawnIngest(args, `${join(d, 'emb.npy')}\n`);
    await first.waitFor(/dbprune ingest: commit /);
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    const stoppedAt = JSON.parse(first.out.stdout.trim().split('\n').at(-1) as string) as { position: { entry: number; sample: number } };
    expect(stoppedAt.position.entry).toBe(0); // stopped inside the input: the resume replays its keys
    expect(stoppedAt.position.sample).toBeGreaterThan(0);
    expect(stoppedAt.position.sample).toBeLessThan(150_000);
    const second = spawnIngest(args);
    expect((await second.exited).code, second.out.stderr).toBe(0);
    const rows = await committedRows(join(d, 'out'));
    expect(rows).toHaveLength(n);
    const dup = rows.map((r, i) => [i, r.reason] as const).filter(([, reason]) => reason === 'error:duplicate-key').map(([i]) => i);
    expect(dup.length).toBe(n - 150_000);
    expect(dup[0]).toBe(150_000);
  });
});

