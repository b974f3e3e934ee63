/**
 * Issue #11 item 11 through the CLI: the hosts of shard URLs given as `run` arguments are trusted,
 * a redirect from them to another (private) host is refused, and shard URLs read from stdin are
 * guarded; `--allow-private` lifts the guard.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../src/io/manifest.js';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixture.js';
import { startServer, tempDir } from '../stages/image-fixtures.js';

const tmp = tempDir('dbprune-shard-ssrf-');
const shard = readFileSync(join(repoRoot, 'data-samples', 'shards', '00000.tar'));
let server: Awaited<ReturnType<typeof startServer>>;
let port = '';

beforeAll(async () => {
  server = await startServer((req, res) => {
    if (req.url === '/00000.tar') return void res.writeHead(200, { 'content-length': String(shard.length) }).end(shard);
    // 127.0.0.2 is loopback as well, on another "host": nothing listens there
    if (req.url === '/moved.tar') return void res.writeHead(302, { location: `http://127.0.0.2:${port}/00000.tar` }).end();
    if (req.url === '/meta.tar') return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    res.writeHead(404).end();
  });
  port = new URL(server.url).port;
});
afterAll(async () => {
  await server.close();
  tmp.cleanup();
});

const rowsOf = (out: string): { key: string; reason: string; error: string | null }[] => readManifest(join(out, 'manifest.jsonl')) as never;

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
});
