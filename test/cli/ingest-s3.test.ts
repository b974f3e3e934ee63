/**
 * `dbprune ingest --out s3://…` through the real CLI against a real S3 server on loopback (s3rver
 * in a child process, path-style on 127.0.0.1): the bundled shards give the same segment objects
 * (rows) and committed.json as a local --out; kill -9 at random moments, an orphan segment object planted
 * above the last commit, and restarts give every sample exactly once with the decisions of an
 * uninterrupted run, and the orphan is neither counted nor left behind; a missing bucket fails with
 * ERR_DBPRUNE_STORAGE naming the URI (exit 1).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { readManifest, type ManifestRecord } from '../../src/io/manifest.js';
import { listLocation, readLocation, writeLocation } from '../../src/io/storage/index.js';
import { repoRoot } from '../helpers/fixture.js';
import { committedRows, decisionsById, serveShardsSlowly, spawnIngest, type IngestProc } from '../helpers/ingest.js';
import { startS3Server, type S3TestServer } from '../helpers/s3.js';

const SHARDS = join(repoRoot, 'data-samples', 'shards');
const shardNames = readdirSync(SHARDS).filter((f) => f.endsWith('.tar')).sort();
let srv: S3TestServer;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'dbprune-ingest-s3-'));
  srv = await startS3Server(['bucket']);
  Object.assign(process.env, srv.env); // this process (reads) and the spawned CLIs (inherit it)
}, 60_000);

afterAll(async () => {
  await srv?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The `part-*` object names directly under `prefix` (no trailing slash), sorted. */
async function partNames(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of listLocation(`${prefix}/`)) names.push(e.location.slice(prefix.length + 1));
  return names.filter((n) => /^part-\d{12}\./.test(n)).sort();
}

async function committedIndex(prefix: string): Promise<{ seq: number; segments: number; last: string | null }> {
  return JSON.parse((await readLocation(`${prefix}/committed.json`)).toString('utf8')) as { seq: number; segments: number; last: string | null };
}

/** Committed rows of an s3:// OUT: the segment objects numbered up to committed.json's seq, in order. */
async function committedRowsS3(prefix: string): Promise<ManifestRecord[]> {
  const { seq } = await committedIndex(prefix);
  const rows: ManifestRecord[] = [];
  for (const name of await partNames(prefix)) {
    if (Number(name.slice(5, 17)) > seq) continue;
    const local = join(tmp, `dl-${name}`);
    writeFileSync(local, await readLocation(`${prefix}/${name}`));
    rows.push(...readManifest(local));
  }
  return rows;
}

async function exitOf(p: IngestProc): Promise<number | null> {
  return (await p.exited).code;
}

describe('dbprune ingest --out s3:// (s3rver on loopback)', () => {
  it('writes byte-equal segment objects and the same committed.json as a local --out', { timeout: 120_000 }, async () => {
    // Two sessions of three shards each, each ending with its one commit (no row- or timer-driven
    // commits: their boundaries depend on timing), so both --out get the same two segments.
    const lists = [shardNames.slice(0, 3), shardNames.slice(3)].map((names) => `${names.map((n) => join(SHARDS, n)).join('\n')}\n`);
    const common = ['--stdin', '--exit-when-done', '--checkpoint-every', '1000000', '--checkpoint-secs', '86400', '--keep', '0.3', '-q'];
    let local: IngestProc | undefined;
    let remote: IngestProc | undefined;
    for (const list of lists) {
      local = spawnIngest(['--state', join(tmp, 'eq-local-state'), '--out', join(tmp, 'eq-local-out'), ...common], list);
      expect(await exitOf(local), local.out.stderr).toBe(0);
      remote = spawnIngest(['--state', join(tmp, 'eq-s3-state'), '--out', 's3://bucket/ing/', ...common], list);
      expect(await exitOf(remote), remote.out.stderr).toBe(0);
    }
    const localParts = readdirSync(join(tmp, 'eq-local-out')).filter((n) => n.startsWith('part-')).sort();
    expect(localParts).toEqual(['part-000000000001.parquet', 'part-000000000002.parquet']);
    expect(await partNames('s3://bucket/ing')).toEqual(localParts);
    for (const name of localParts) {
      const got = join(tmp, `eq-${name}`);
      writeFileSync(got, await readLocation(`s3://bucket/ing/${name}`));
      expect(readManifest(got), name).toEqual(readManifest(join(tmp, 'eq-local-out', name)));
      expect(readFileSync(got).equals(readFileSync(join(tmp, 'eq-local-out', name))), `${name} bytes`).toBe(true);
    }
    expect((await readLocation('s3://bucket/ing/committed.json')).toString('utf8')).toBe(readFileSync(join(tmp, 'eq-local-out', 'committed.json'), 'utf8'));
    const rows = await committedRowsS3('s3://bucket/ing');
    expect(rows).toEqual(await committedRows(join(tmp, 'eq-local-out')));
    expect(rows.length).toBe(shardNames.length * 200);
    // the run's result on stdout counts the same rows
    const result = (out: string): { rows: number; lastSeq: number } => JSON.parse(out.trim().split('\n').at(-1) as string) as { rows: number; lastSeq: number };
    expect(result(remote?.out.stdout ?? '')).toMatchObject({ rows: 600, lastSeq: 2 });
    expect(result(local?.out.stdout ?? '')).toMatchObject({ rows: 600, lastSeq: 2 });
    // no lock object on s3 (STATE/LOCK is the lock): only the owner record besides segments and index
    const hidden: string[] = [];
    for await (const e of listLocation('s3://bucket/ing/')) if (!/\/(part-\d{12}\.parquet|committed\.json)$/.test(e.location)) hidden.push(e.location);
    expect(hidden).toEqual(['s3://bucket/ing/.dbprune-ingest.json']);
  });

  it('loses and repeats nothing across kill -9s and an orphan segment object above the last commit', { timeout: 240_000 }, async () => {
    const server = await serveShardsSlowly(128 * 1024, 5);
    try {
      const list = `${shardNames.map((n) => `${server.base}/${n}`).join('\n')}\n`;
      const args = (state: string, out: string): string[] => [
        '--state', state, '--out', out, '--stdin', '--exit-when-done', '--allow-private', '--checkpoint-every', '40', '--checkpoint-secs', '0.2', '--keep', '0.3',
      ];
      const ref = spawnIngest(args(join(tmp, 'crash-ref-state'), join(tmp, 'crash-ref-out')), list);
      expect(await exitOf(ref), ref.out.stderr).toBe(0);
      const refRows = await committedRows(join(tmp, 'crash-ref-out'));
      const refMap = decisionsById(refRows).byId;
      expect(refMap.size).toBe(shardNames.length * 200);

      const out = 's3://bucket/crash';
      const state = join(tmp, 'crash-state');
      const rng = new Rng(20261127);
      let kills = 0;
      let killsAfterCommit = 0;
      for (let attempt = 0; kills < 6 && attempt < 20; attempt++) {
        const p = spawnIngest(args(state, out), list);
        const early = kills % 3 === 0; // a third during start-up / recovery, the rest while deciding and committing
        if (!early) {
          await new Promise<void>((r) => {
            const t = setInterval(() => {
              if (p.out.stderr.includes('dbprune ingest: commit') || p.child.exitCode !== null) {
                clearInterval(t);
                r();
              }
            }, 10);
          });
        }
        await new Promise((r) => setTimeout(r, early ? 300 + rng.int(1500) : rng.int(600)));
        if (p.child.exitCode !== null) {
          expect(p.child.exitCode, p.out.stderr).toBe(0);
          break; // finished before the kill
        }
        p.child.kill('SIGKILL');
        if ((await p.exited).signal === 'SIGKILL') kills++;
        if (p.out.stderr.includes('dbprune ingest: commit')) killsAfterCommit++;
      }
      expect(kills).toBeGreaterThanOrEqual(4);
      expect(killsAfterCommit).toBeGreaterThanOrEqual(2);

      // A killed run whose segment upload completed before its commit record leaves such an object:
      // plant one (a copy of the last committed segment: counting it would repeat rows).
      const before = await committedIndex(out);
      expect(before.last).not.toBeNull();
      const orphan = `part-${String(before.seq + 1).padStart(12, '0')}.parquet`;
      const farOrphan = `part-${String(before.seq + 500).padStart(12, '0')}.parquet`;
      const copy = await readLocation(`${out}/${before.last as string}`);
      await writeLocation(`${out}/${orphan}`, copy);
      await writeLocation(`${out}/${farOrphan}`, copy);

      const last = spawnIngest(args(state, out), list);
      expect(await exitOf(last), last.out.stderr).toBe(0);
      const rows = await committedRowsS3(out);
      const { byId: seen, repeated: twice } = decisionsById(rows);
      expect(twice).toEqual([]);
      expect(rows.length).toBe(refRows.length);
      expect([...refMap].filter(([id, d]) => seen.get(id) !== d)).toEqual([]);
      // every part object is committed and counted once: the orphans were removed or overwritten
      const index = await committedIndex(out);
      const parts = await partNames(out);
      expect(parts).not.toContain(farOrphan);
      expect(parts.every((n) => Number(n.slice(5, 17)) <= index.seq)).toBe(true);
      expect(index.segments).toBe(parts.length);
      expect(index.last).toBe(parts.at(-1));
    } finally {
      await server.close();
    }
  });

  it('fails with ERR_DBPRUNE_STORAGE naming the URI when the bucket does not exist (exit 1)', { timeout: 60_000 }, async () => {
    const p = spawnIngest(['--state', join(tmp, 'nob-state'), '--out', 's3://no-such-bucket/ing', '--stdin', '--exit-when-done', '--keep', '0.3'], `${join(SHARDS, shardNames[0])}\n`);
    expect(await exitOf(p)).toBe(1);
    const lines = p.out.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ERR_DBPRUNE_STORAGE/);
    expect(lines[0]).toContain('s3://no-such-bucket/ing');
    expect(lines[0]).toMatch(/bucket no-such-bucket does not exist/);
  });
});
