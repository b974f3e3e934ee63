/**
 * Crash test of `dbprune ingest`: shards served by a loopback HTTP server, the process killed with
 * SIGKILL at random moments (during start-up/recovery, mid-shard, mid-commit) at least 10 times and
 * restarted each time; afterwards the committed segments hold every input key exactly once, with
 * the decisions of an uninterrupted run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { readManifest } from '../../src/io/manifest.js';
import { repoRoot } from '../helpers/fixture.js';

const SHARDS = join(repoRoot, 'data-samples', 'shards');

/** The real CLI once `ingest` is registered in commands.ts; until then an equivalent entry point. */
async function cliEntry(dir: string): Promise<string> {
  if (readFileSync(join(repoRoot, 'src', 'cli', 'commands.ts'), 'utf8').includes('registerIngest')) return join(repoRoot, 'src', 'cli', 'main.ts');
  const entry = join(dir, 'ingest-entry.ts');
  const abs = (p: string): string => JSON.stringify(join(repoRoot, p));
  await writeFile(
    entry,
    `import { Command, CommanderError } from ${abs('node_modules/commander/index.js')};
import { registerIngest } from ${abs('src/cli/ingest.ts')};
import { exitCodeFor, oneLine } from ${abs('src/cli/errors.ts')};
const c = new AbortController();
const on = () => { if (c.signal.aborted) process.exit(130); c.abort(new Error('signal')); };
process.on('SIGINT', on); process.on('SIGTERM', on);
const program = new Command('dbprune').exitOverride();
registerIngest(program, { signal: c.signal });
program.parseAsync(process.argv).then(() => { process.exitCode = 0; }, (e) => {
  if (e instanceof CommanderError) { process.exitCode = e.exitCode === 0 ? 0 : 2; return; }
  process.stderr.write(oneLine(e) + '\\n'); process.exitCode = exitCodeFor(e);
});
`,
  );
  return entry;
}

interface Proc {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnIngest(entry: string, args: string[], stdin: string): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'ingest', ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(stdin);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  return { child, out, exited };
}

/** Committed rows: segments numbered up to committed.json's seq. */
async function committedRows(out: string): Promise<{ key: string; shard: string | null; decision: string; reason: string; cluster: number }[]> {
  const idx = join(out, 'committed.json');
  if (!existsSync(idx)) return [];
  const seq = (JSON.parse(await readFile(idx, 'utf8')) as { seq: number }).seq;
  const parts = (await readdir(out)).filter((f) => /^part-\d{12}\./.test(f) && Number(f.slice(5, 17)) <= seq).sort();
  return parts.flatMap((f) => readManifest(join(out, f)));
}

let server: Server;
let base: string;
let dir: string;
let entry: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dbprune-ingest-crash-'));
  entry = await cliEntry(dir);
  server = createServer((req, res) => {
    const name = (req.url ?? '').replace(/^\//, '');
    if (!/^\d{5}\.tar$/.test(name)) {
      res.writeHead(404).end();
      return;
    }
    const bytes = readFileSync(join(SHARDS, name));
    res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': bytes.length });
    // stream in chunks so that kills also land mid-download
    let o = 0;
    const step = (): void => {
      if (res.destroyed) return;
      if (o >= bytes.length) return void res.end();
      res.write(bytes.subarray(o, o + 128 * 1024));
      o += 128 * 1024;
      setTimeout(step, 5);
    };
    step();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
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
      '--checkpoint-every',
      '40',
      '--checkpoint-secs',
      '0.2',
      '--keep',
      '0.3',
    ];

    // the uninterrupted reference
    const ref = spawnIngest(entry, args('ref'), list);
    const refExit = await ref.exited;
    expect(refExit.code, ref.out.stderr).toBe(0);
    const refRows = await committedRows(join(dir, 'ref', 'out'));
    const refMap = new Map(refRows.map((r) => [`${r.shard}|${r.key}`, `${r.decision}|${r.reason}|${r.cluster}`]));
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
      const p = spawnIngest(entry, args('crash'), list);
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
    const seen = new Map<string, string>();
    const twice: string[] = [];
    for (const r of rows) {
      const id = `${r.shard}|${r.key}`;
      if (seen.has(id)) twice.push(id);
      seen.set(id, `${r.decision}|${r.reason}|${r.cluster}`);
    }
    expect(twice).toEqual([]);
    expect(rows.length).toBe(refRows.length);
    const differ = [...refMap].filter(([id, d]) => seen.get(id) !== d);
    expect(differ).toEqual([]);
    // no uncommitted leftovers
    expect((await readdir(join(dir, 'crash', 'out'))).filter((f) => f.startsWith('.'))).toEqual([]);
  });
});
