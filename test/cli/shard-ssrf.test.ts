/**
 * Issue #11 item 11 and #12 through the CLI: the hosts of shard URLs given as `run` arguments are
 * trusted, a redirect from them to another (private) host is refused, and shard URLs read from
 * stdin or POSTed to `ingest` are guarded — IP literals before connecting, host names by the
 * addresses they resolve to (`localhost` through the real resolver); `--allow-private` lifts the guard.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/io/manifest.js';
import { runCli } from '../helpers/cli.js';
import { committedRows, spawnIngest, type IngestProc } from '../helpers/ingest.js';
import { repoRoot } from '../helpers/fixture.js';
import { startServer, tempDir } from '../stages/image-fixtures.js';

const tmp = tempDir('dbprune-shard-ssrf-');
const shard = readFileSync(join(repoRoot, 'data-samples', 'shards', '00000.tar'));
let server: Awaited<ReturnType<typeof startServer>>;
let port = '';
let served = 0; // successful shard answers
const daemons: IngestProc[] = [];

beforeAll(async () => {
  server = await startServer((req, res) => {
    if (req.url === '/00000.tar') {
      served++;
      return void res.writeHead(200, { 'content-length': String(shard.length) }).end(shard);
    }
    // 127.0.0.2 is loopback as well, on another "host": nothing listens there
    if (req.url === '/moved.tar') return void res.writeHead(302, { location: `http://127.0.0.2:${port}/00000.tar` }).end();
    if (req.url === '/meta.tar') return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    res.writeHead(404).end();
  });
  port = new URL(server.url).port;
});
afterAll(async () => {
  for (const p of daemons) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(daemons.map((p) => p.exited));
  await server.close();
  tmp.cleanup();
});

const rowsOf = (out: string): { key: string; reason: string; error: string | null }[] => readManifest(join(out, 'manifest.jsonl'));

describe('run: SSRF guard on shard URLs', () => {
  it('trusts the hosts of shard arguments, refuses their redirects to other private hosts', async () => {
    const out = join(tmp.dir, 'args');
    const r = await runCli(['run', `${server.url}/00000.tar`, `${server.url}/moved.tar`, `${server.url}/meta.tar`, '--out', out, '--format', 'jsonl', '-q']);
    expect(r.code, r.stderr).toBe(0);
    const rows = rowsOf(out);
    expect(rows.filter((row) => !row.reason.startsWith('error:'))).toHaveLength(200);
    const refused = rows.filter((row) => row.reason === 'error:ssrf').map((row) => row.key);
    expect(refused).toEqual(['moved.tar:shard', 'meta.tar:shard']);
  });

  it('guards shard URLs read from stdin unless --allow-private', async () => {
    const list = `${server.url}/00000.tar\n`;
    const guarded = await runCli(['run', '-', '--out', join(tmp.dir, 'stdin'), '--format', 'jsonl', '-q'], { input: list });
    expect(guarded.code, guarded.stderr).toBe(0);
    expect(rowsOf(join(tmp.dir, 'stdin')).map((row) => [row.key, row.reason])).toEqual([['00000.tar:shard', 'error:ssrf']]);
    const allowed = await runCli(['run', '-', '--allow-private', '--out', join(tmp.dir, 'allowed'), '--format', 'jsonl', '-q'], { input: list });
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(rowsOf(join(tmp.dir, 'allowed'))).toHaveLength(200);
  });

  it('judges host names by what they resolve to: localhost from stdin is refused at connect time, as an argument it is trusted', async () => {
    const named = `http://localhost:${port}/00000.tar`;
    const before = served;
    const guarded = await runCli(['run', '-', '--out', join(tmp.dir, 'named-stdin'), '--format', 'jsonl', '-q'], { input: `${named}\n` });
    expect(guarded.code, guarded.stderr).toBe(0);
    const rows = rowsOf(join(tmp.dir, 'named-stdin'));
    expect(rows.map((row) => [row.key, row.reason])).toEqual([['00000.tar:shard', 'error:ssrf']]);
    expect(rows[0].error).toMatch(/localhost resolves to .*loopback/);
    expect(served).toBe(before); // refused before any request went out
    const typed = await runCli(['run', named, '--out', join(tmp.dir, 'named-arg'), '--format', 'jsonl', '-q']);
    expect(typed.code, typed.stderr).toBe(0);
    expect(rowsOf(join(tmp.dir, 'named-arg')).filter((row) => !row.reason.startsWith('error:'))).toHaveLength(200);
  });
});

describe('ingest: SSRF guard on POSTed shard URLs', () => {
  it('a loopback shard URL POSTed to /shards becomes an error:ssrf row, and no request reaches the server (test/pipelines/ingest.test.ts runs the same with --allow-private)', { timeout: 60_000 }, async () => {
    const st = join(tmp.dir, 'ingest', 'state');
    const out = join(tmp.dir, 'ingest', 'out');
    const p = spawnIngest(['--state', st, '--out', out, '--listen', '127.0.0.1:0', '--checkpoint-secs', '0.2', '--format', 'jsonl']);
    daemons.push(p);
    const { listen } = JSON.parse((await p.waitFor(/dbprune ingest: ready (\{.*\})/))[1]) as { listen: { url: string } };
    const before = served;
    const post = await fetch(`${listen.url}/shards`, { method: 'POST', headers: { 'content-type': 'text/uri-list' }, body: `${server.url}/00000.tar\n` });
    expect(post.status).toBe(202);
    await p.waitFor(/dbprune ingest: commit .*"entry":1/);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    const rows = await committedRows(out);
    expect(rows.map((row) => [row.key, row.reason])).toEqual([['00000.tar:shard', 'error:ssrf']]);
    expect(served).toBe(before);
  });
});
