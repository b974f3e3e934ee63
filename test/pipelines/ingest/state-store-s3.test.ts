/**
 * The state store with an s3:// OUT against s3rver on loopback: segments are objects at their
 * final names, written before the commit record; a damaged segment object makes its commit invalid
 * (reported, fallen back from, the object removed); an object store that fails mid-verify is a
 * failure of the open, not a corrupt commit (nothing is set aside or deleted).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../src/core/errors.js';
import { configureS3, listLocation, readLocation, writeLocation } from '../../../src/io/storage/index.js';
import { StateStore } from '../../../pipelines/ingest/state-store.js';
import { startFaultProxy, startS3Server, type S3TestServer } from '../../helpers/s3.js';

let srv: S3TestServer;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-state-s3-'));
  srv = await startS3Server(['bucket']);
  Object.assign(process.env, srv.env);
}, 60_000);

afterAll(async () => {
  await srv?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function names(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of listLocation(`${prefix}/`)) out.push(e.location.slice(prefix.length + 1));
  return out.sort();
}

/** Writes the next segment where the store says (on s3://: its final object) and returns it for commit. */
async function segment(store: StateStore<{ n: number }>, text: string): Promise<{ tempPath: string; rows: number }> {
  const p = store.segmentTempPath();
  await writeLocation(p, text);
  return { tempPath: p, rows: text.split('\n').filter(Boolean).length };
}

describe('StateStore with an s3:// OUT', () => {
  it('commits segment objects at their final names and falls back from a damaged one', { timeout: 60_000 }, async () => {
    const out = 's3://bucket/st-damaged';
    const open = (): Promise<StateStore<{ n: number }>> => StateStore.open<{ n: number }>({ dir: join(dir, 'st1'), outDir: `${out}/`, segmentExt: 'jsonl' });
    const s = await open();
    expect(s.outDir).toBe(out);
    expect(s.segmentTempPath()).toBe(`${out}/part-000000000001.jsonl`);
    for (let n = 1; n <= 3; n++) await s.commit({ segment: await segment(s, `row${n}\n`), state: { n } });
    await s.close();
    expect(await names(out)).toEqual(['.dbprune-ingest.json', 'committed.json', 'part-000000000001.jsonl', 'part-000000000002.jsonl', 'part-000000000003.jsonl']);
    expect(JSON.parse((await readLocation(`${out}/committed.json`)).toString('utf8'))).toEqual({ seq: 3, segments: 3, last: 'part-000000000003.jsonl' });

    await writeLocation(`${out}/part-000000000003.jsonl`, 'r'); // half-written (another size)
    const warnings: string[] = [];
    const t = await StateStore.open<{ n: number }>({ dir: join(dir, 'st1'), outDir: out, segmentExt: 'jsonl', warn: (w) => warnings.push(w) });
    expect(t.last?.record.seq).toBe(2);
    expect(t.problems).toHaveLength(1);
    expect(t.problems[0]).toMatchObject({ code: ErrorCodes.STATE, reason: expect.stringMatching(/size 1 != recorded 5/) as unknown });
    expect(warnings[0]).toMatch(/commit-000000000003\.json is invalid/);
    expect(await names(out)).toEqual(['.dbprune-ingest.json', 'committed.json', 'part-000000000001.jsonl', 'part-000000000002.jsonl']);
    const r = await t.commit({ segment: await segment(t, 'row3again\n'), state: { n: 3 } });
    expect(r.segment).toMatchObject({ file: 'part-000000000003.jsonl', bytes: 10 });
    await t.close();
  });

  it('fails the open (not the commit) when the object store fails while verifying', { timeout: 60_000 }, async () => {
    const out = 's3://bucket/st-flaky';
    const st = join(dir, 'st2');
    const s = await StateStore.open<{ n: number }>({ dir: st, outDir: out, segmentExt: 'jsonl' });
    for (let n = 1; n <= 2; n++) await s.commit({ segment: await segment(s, `row${n}\n`), state: { n } });
    await s.close();
    // every GET of a segment object answers 500: listings and HEADs pass
    const proxy = await startFaultProxy(srv.endpoint, (req) => (req.method === 'GET' && /part-\d{12}/.test(req.url ?? '') ? 500 : undefined));
    try {
      configureS3({ endpoint: proxy.endpoint, maxAttempts: 1 });
      await expect(StateStore.open<{ n: number }>({ dir: st, outDir: out, segmentExt: 'jsonl' })).rejects.toMatchObject({
        code: ErrorCodes.STORAGE,
        message: expect.stringContaining(`${out}/part-000000000002.jsonl`) as unknown,
      });
      expect(proxy.faults).toBeGreaterThan(0);
    } finally {
      configureS3({ endpoint: srv.endpoint, maxAttempts: 5 });
      await proxy.stop();
    }
    // nothing was set aside or deleted: the next open resumes from commit 2
    expect(await readdir(join(st, 'commits'))).toEqual(['commit-000000000001.json', 'commit-000000000002.json']);
    const t = await StateStore.open<{ n: number }>({ dir: st, outDir: out, segmentExt: 'jsonl' });
    expect(t.last?.record.seq).toBe(2);
    expect(t.problems).toEqual([]);
    await t.close();
  });
});
