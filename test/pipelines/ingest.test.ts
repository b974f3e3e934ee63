/**
 * `dbprune ingest` as a service: HTTP intake + metrics, graceful SIGTERM and restart, a corrupted
 * state folder, the watched-folder embeddings path, and the listener's bind policy.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { writeNpy } from '../../src/io/npy.js';
import { repoRoot } from '../helpers/fixture.js';
import { committedRows, serveShardsSlowly, spawnIngest } from '../helpers/ingest.js';


type Row = { key: string; shard: string | null; decision: string; reason: string; cluster: number; duplicate_of: string | null };

function decisions(rows: Row[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const r of rows) {
    const id = `${r.shard}|${r.key}`;
    expect(m.has(id), `${id} committed twice`).toBe(false);
    m.set(id, `${r.decision}|${r.reason}|${r.cluster}|${r.duplicate_of ?? ''}`);
  }
  return m;
}

let server: Awaited<ReturnType<typeof serveShardsSlowly>>;
let base: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-ingest-'));
  // a slow shard server: SIGTERM lands mid-stream
  server = await serveShardsSlowly(32 * 1024, 10);
  base = server.base;
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const common = ['--allow-private', '--checkpoint-every', '64', '--checkpoint-secs', '0.3', '--keep', '0.3'];

describe('dbprune ingest', () => {
  it('takes shards over HTTP, serves metrics, stops gracefully on SIGTERM and resumes; a corrupted state falls back', { timeout: 90_000 }, async () => {
    const shards = ['00000.tar', '00001.tar'].map((n) => `${base}/${n}`);
    const st = join(dir, 'svc', 'state');
    const out = join(dir, 'svc', 'out');
    const p = spawnIngest(['--state', st, '--out', out, '--listen', '127.0.0.1:0', ...common]);
    const ready = JSON.parse((await p.waitFor(/dbprune ingest: ready (\{.*\})/))[1]) as { listen: { url: string } };
    const url = ready.listen.url;
    const post = await fetch(`${url}/shards`, { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body: `${shards.join('\n')}\n` });
    expect(post.status).toBe(202);
    expect(((await post.json()) as { accepted: { i: number }[] }).accepted.map((a) => a.i)).toEqual([0, 1]);
    const again = await fetch(`${url}/shards`, { method: 'POST', body: JSON.stringify(shards), headers: { 'content-type': 'application/json' } });
    expect(((await again.json()) as { accepted: { duplicate: boolean }[] }).accepted.every((a) => a.duplicate)).toBe(true);
    expect((await fetch(`${url}/shards`, { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body: 'file:///etc/passwd\n' })).status).toBe(400);
    await p.waitFor(/dbprune ingest: commit .*"seq":2/);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^dbprune_ingest_samples_total\{decision="keep",reason="dbp"\} \d+$/m);
    expect(metrics).toMatch(/^dbprune_ingest_kept_ratio [\d.]+$/m);
    expect(metrics).toMatch(/^dbprune_ingest_queue_depth\{stage="embed"\} \d+$/m);
    expect(metrics).toMatch(/^dbprune_ingest_samples_per_second [\d.e+-]+$/m);
    expect(metrics).toMatch(/^dbprune_ingest_last_commit_age_seconds [\d.e+-]+$/m);
    // SIGTERM mid-stream: commit and exit 0
    p.child.kill('SIGTERM');
    const e = await p.exited;
    expect(e.code, p.out.stderr).toBe(0);
    const result = JSON.parse(p.out.stdout.trim().split('\n').at(-1) as string) as { position: { entry: number; sample: number }; rows: number };
    expect(result.position.entry * 200 + result.position.sample).toBeLessThan(400); // stopped mid-stream
    expect((await committedRows(out)).length).toBe(result.rows);

    // restart: continues from the commit and finishes the journal
    const q = spawnIngest(['--state', st, '--out', out, '--exit-when-done', ...common]);
    expect((await q.exited).code, q.out.stderr).toBe(0);
    const rows = await committedRows(out);
    const got = decisions(rows);
    expect(got.size).toBe(400);

    // the same inputs uninterrupted
    const ref = spawnIngest(['--state', join(dir, 'ref', 'state'), '--out', join(dir, 'ref', 'out'), '--stdin', '--exit-when-done', ...common], `${shards.join('\n')}\n`);
    expect((await ref.exited).code).toBe(0);
    const want = decisions(await committedRows(join(dir, 'ref', 'out')));
    expect([...want].filter(([id, d]) => got.get(id) !== d)).toEqual([]);

    // corrupt the newest state: reported, the previous commit is used and the tail is redone identically
    const commits = (await readdir(join(st, 'commits'))).sort();
    const newest = commits.at(-1) as string;
    const stateFile = join(st, 'states', newest.replace('commit-', 'state-'));
    const text = await readFile(stateFile, 'utf8');
    await writeFile(stateFile, text.slice(0, text.length >> 1)); // half-written
    const r = spawnIngest(['--state', st, '--out', out, '--exit-when-done', ...common]);
    expect((await r.exited).code, r.out.stderr).toBe(0);
    expect(r.out.stderr).toMatch(new RegExp(`${newest.replace('.', '\\.')} is invalid \\(.*size .*\\); falling back to the previous commit \\[ERR_DBPRUNE_STATE\\]`));
    const after = decisions(await committedRows(out));
    expect(after.size).toBe(400);
    expect([...want].filter(([id, d]) => after.get(id) !== d)).toEqual([]);
  });

  it.each([
    ['', []],
    [' with SemDeDup (--dedup-eps)', ['--dedup-eps', '0.001']],
  ] as const)('ingests .npy embeddings from a watched folder%s; a kill -9 mid-way loses and repeats nothing', { timeout: 60_000 }, async (label, extra) => {
    const tag = label ? 'dd' : 'plain';
    const watch = join(dir, `npy-in-${tag}`);
    await mkdir(watch, { recursive: true });
    const rng = new Rng(3);
    const c = readFileSync(join(repoRoot, 'data-samples', 'centroids', 'centroids.npy'));
    const dim = Number(/'shape': \((\d+), (\d+)\)/.exec(c.toString('latin1', 0, 128))?.[2]);
    for (let f = 0; f < 4; f++) {
      const n = 3000;
      const x = new Float32Array(n * dim);
      for (let i = 0; i < x.length; i++) x[i] = rng.next() * 2 - 1;
      // ~5% exact copies of earlier rows of this file, so SemDeDup has duplicates to find.
      for (let i = 100; i < n; i += 20) x.copyWithin(i * dim, (i - 1 - rng.int(99)) * dim, (i - 1 - rng.int(99)) * dim + dim);
      await writeNpy(join(watch, `.emb_${f}.npy`), x, [n, dim]);
      await writeFile(join(watch, `emb_${f}.keys.txt`), Array.from({ length: n }, (_, i) => `f${f}-${i}`).join('\n') + '\n');
      await rename(join(watch, `.emb_${f}.npy`), join(watch, `emb_${f}.npy`));
    }
    const args = (name: string): string[] => [
      '--state',
      join(dir, name, 'state'),
      '--out',
      join(dir, name, 'out'),
      '--embeddings',
      '--watch',
      watch,
      '--poll-ms',
      '20',
      '--exit-when-done',
      '--format',
      'jsonl',
      '--checkpoint-every',
      '500',
      '--checkpoint-secs',
      '0.1',
      ...extra,
    ];
    const ref = spawnIngest(args(`npy-ref-${tag}`));
    expect((await ref.exited).code, ref.out.stderr).toBe(0);
    const want = decisions(await committedRows(join(dir, `npy-ref-${tag}`, 'out')));
    expect(want.size).toBe(12_000);
    expect(want.get('emb_2|f2-17')).toBeDefined();
    const duplicates = [...want.values()].filter((d) => d.includes('|duplicate|')).length;
    if (extra.length > 0) expect(duplicates).toBeGreaterThan(400);
    else expect(duplicates).toBe(0);

    let kills = 0;
    for (let i = 0; i < 40 && kills < 3; i++) {
      const p = spawnIngest(args(`npy-crash-${tag}`));
      await p.waitFor(/dbprune ingest: commit/).catch(() => undefined);
      await new Promise((r) => setTimeout(r, rng.int(150)));
      if (p.child.exitCode === null) {
        p.child.kill('SIGKILL');
        if ((await p.exited).signal === 'SIGKILL') kills++;
      } else break;
    }
    expect(kills).toBeGreaterThanOrEqual(1);
    const last = spawnIngest(args(`npy-crash-${tag}`));
    expect((await last.exited).code, last.out.stderr).toBe(0);
    const got = decisions(await committedRows(join(dir, `npy-crash-${tag}`, 'out')));
    expect(got.size).toBe(12_000);
    expect([...want].filter(([id, d]) => got.get(id) !== d)).toEqual([]);
  });

  it('takes a posted URL batch durably and decides every row (failed downloads as error rows)', { timeout: 30_000 }, async () => {
    const st = join(dir, 'urls', 'state');
    const out = join(dir, 'urls', 'out');
    const p = spawnIngest(['--state', st, '--out', out, '--listen', '127.0.0.1:0', '--format', 'jsonl', ...common]);
    const { listen } = JSON.parse((await p.waitFor(/dbprune ingest: ready (\{.*\})/))[1]) as { listen: { url: string } };
    const body = ['a', 'b', 'c'].map((n) => `${base}/missing-${n}.jpg`).join('\n') + '\n';
    expect((await fetch(`${listen.url}/urls`, { method: 'POST', headers: { 'content-type': 'application/x-unknown' }, body })).status).toBe(415);
    const r = await fetch(`${listen.url}/urls`, { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body });
    expect(r.status).toBe(202);
    const src = ((await r.json()) as { accepted: { src: string }[] }).accepted[0].src;
    expect(readFileSync(src, 'utf8')).toBe(body); // stored in the state folder before the reply
    await p.waitFor(/dbprune ingest: commit .*"entry":1,"sample":0/);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    const rows = await committedRows(out);
    expect(rows.map((x) => [x.key, x.shard, x.decision, x.reason])).toEqual([
      ['000000000', src, 'drop', 'error:download'],
      ['000000001', src, 'drop', 'error:download'],
      ['000000002', src, 'drop', 'error:download'],
    ]);
  });

  it('refuses to listen beyond loopback without a token (exit 2)', async () => {
    const p = spawnIngest(['--state', join(dir, 'tok', 'state'), '--out', join(dir, 'tok', 'out'), '--listen', '0.0.0.0:0']);
    const e = await p.exited;
    expect(e.code).toBe(2);
    expect(p.out.stderr).toMatch(/not a loopback address: give --token .*\[ERR_DBPRUNE_USAGE\]/);
  });
});
