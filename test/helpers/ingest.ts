/** Running the real `dbprune ingest` CLI in tests, and reading what it committed. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest, type ManifestRecord } from '../../src/io/manifest.js';
import { repoRoot } from './fixture.js';

export interface IngestProc {
  child: ChildProcess;
  out: { stdout: string; stderr: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first match of `re` in stderr; rejects if the process exits first. */
  waitFor(re: RegExp): Promise<RegExpExecArray>;
}

/** Starts `dbprune ingest ...args` (TypeScript sources through tsx) with `stdin` as its input. */
export function spawnIngest(args: string[], stdin = ''): IngestProc {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'main.ts'), 'ingest', ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(stdin);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  const waitFor = (re: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const t = setInterval(() => {
        const m = re.exec(out.stderr);
        if (m) {
          clearInterval(t);
          resolve(m);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          clearInterval(t);
          reject(new Error(`exited before ${re}: ${out.stderr}`));
        }
      }, 10);
    });
  return { child, out, exited, waitFor };
}

/** Committed rows: the segments numbered up to committed.json's seq, in order. */
export async function committedRows(out: string): Promise<ManifestRecord[]> {
  const idx = join(out, 'committed.json');
  if (!existsSync(idx)) return [];
  const seq = (JSON.parse(await readFile(idx, 'utf8')) as { seq: number }).seq;
  const parts = (await readdir(out)).filter((f) => /^part-\d{12}\./.test(f) && Number(f.slice(5, 17)) <= seq).sort();
  return parts.flatMap((f) => readManifest(join(out, f)));
}

/**
 * Each row's decision (`decision|reason|cluster`) by its identity (`shard|key`), and the identities
 * that occur on more than one row (the crash tests' "exactly once" check).
 */
export function decisionsById(rows: readonly ManifestRecord[]): { byId: Map<string, string>; repeated: string[] } {
  const byId = new Map<string, string>();
  const repeated: string[] = [];
  for (const r of rows) {
    const id = `${r.shard}|${r.key}`;
    if (byId.has(id)) repeated.push(id);
    byId.set(id, `${r.decision}|${r.reason}|${r.cluster}`);
  }
  return { byId, repeated };
}

/**
 * Serves the bundled data-samples shards (`/00000.tar` …) on 127.0.0.1, slowly: `chunkBytes` every
 * `delayMs`, so kills and SIGTERMs land mid-download. Other paths answer 404.
 */
export async function serveShardsSlowly(chunkBytes: number, delayMs: number): Promise<{ base: string; close: () => Promise<void> }> {
  const shards = join(repoRoot, 'data-samples', 'shards');
  const server = createServer((req, res) => {
    const name = (req.url ?? '').replace(/^\//, '');
    if (!/^\d{5}\.tar$/.test(name)) return void res.writeHead(404).end();
    const bytes = readFileSync(join(shards, name));
    res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': bytes.length });
    let o = 0;
    const step = (): void => {
      if (res.destroyed) return;
      if (o >= bytes.length) return void res.end();
      res.write(bytes.subarray(o, o + chunkBytes));
      o += chunkBytes;
      setTimeout(step, delayMs);
    };
    step();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return {
    base: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
