/** Running the real `dbprune ingest` CLI in tests, and reading what it committed. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
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
