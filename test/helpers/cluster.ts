/**
 * Real components for the distributed-mode tests: Debian's redis-server on 127.0.0.1 (free port,
 * persistence off, stopped by PID), `dbprune worker` processes (the real CLI through tsx), and a
 * synthetic clip-retrieval-style input split into parts (npy + parquet metadata with DataComp uids).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import { Rng } from '../../src/core/rng.js';
import { writeNpy } from '../../src/io/npy.js';
import { repoRoot } from './fixture.js';
import { unitRows } from './vectors.js';

const tsxLoader = import.meta.resolve('tsx');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisHandle {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Starts redis-server on 127.0.0.1:<free port> with persistence off; resolves once it accepts connections. */
export async function startRedis(): Promise<RedisHandle> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid as number,
    stop: () => stopChild(child),
  };
}

function stopChild(child: { pid?: number; exitCode: number | null; signalCode: NodeJS.Signals | null; once: (e: 'exit', f: () => void) => unknown }, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid as number, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    process.kill(child.pid as number, signal);
  });
}

export interface CliProcess {
  child: ChildProcessWithoutNullStreams;
  pid: number;
  stderr: () => string;
  stdout: () => string;
  /** Resolves with the first stderr line matching `re` (rejects after `timeoutMs`). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns `dbprune worker --cluster <url> …` (the real CLI). */
export function spawnWorker(url: string, extra: string[] = []): CliProcess {
  return spawnDbprune(['worker', '--cluster', url, '--threads', '1', ...extra]);
}

/** Spawns the real `dbprune` CLI (through tsx) without waiting for it. */
export function spawnDbprune(args: string[]): CliProcess {
  const child = spawn(process.execPath, ['--import', tsxLoader, join(repoRoot, 'src', 'cli', 'main.ts'), ...args], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end();
  let err = '';
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of [...waiters]) {
      const line = err.split('\n').find((l) => w.re.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    pid: child.pid as number,
    stderr: () => err,
    stdout: () => out,
    waitFor: (re, timeoutMs = 60_000) =>
      new Promise<string>((resolve, reject) => {
        const line = err.split('\n').find((l) => re.test(l));
        if (line !== undefined) return resolve(line);
        const timer = setTimeout(() => reject(new Error(`worker ${child.pid}: no line matching ${re} in ${timeoutMs} ms; stderr:\n${err}`)), timeoutMs);
        waiters.push({
          re,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      }),
    exited,
    stop: (signal = 'SIGTERM') => stopChild(child, signal),
  };
}

function writeParquetFile(path: string, cols: Record<string, unknown[]>): void {
  const t = tableFromArrays(cols as Parameters<typeof tableFromArrays>[0]);
  writeFileSync(path, parquet.writeParquet(parquet.Table.fromIPCStream(tableToIPC(t, 'stream'))));
}

/**
 * A clip-retrieval folder (`img_emb/img_emb_N.npy` + `metadata/metadata_N.parquet` with key, uid,
 * url, caption) of `parts` files with the given row counts: points around `k` planted directions,
 * a few exact duplicates (ties), one zero row (an error row) and one repeated key in part 1 (an
 * `error:duplicate-key` row). Plus `centroids.npy`.
 */
export async function writeClusteredParts(dir: string, rowsPerPart: number[], opts: { dim?: number; k?: number; seed?: number } = {}): Promise<{ folder: string; centroids: string; total: number }> {
  const dim = opts.dim ?? 16;
  const k = opts.k ?? 12;
  const rng = new Rng(opts.seed ?? 5);
  const centers = unitRows(rng, k, dim);
  const folder = join(dir, 'emb');
  mkdirSync(join(folder, 'img_emb'), { recursive: true });
  mkdirSync(join(folder, 'metadata'), { recursive: true });
  let row = 0;
  for (let p = 0; p < rowsPerPart.length; p++) {
    const n = rowsPerPart[p];
    const a = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      const c = rng.int(k);
      const spread = 0.2 + 0.6 * (c / k);
      for (let t = 0; t < dim; t++) a[i * dim + t] = centers[c * dim + t] + spread * rng.normal() / Math.sqrt(dim);
      if (i > 0 && i % 97 === 0) a.copyWithin(i * dim, (i - 1) * dim, i * dim); // exact duplicate: equal δ
    }
    if (p === 0 && n > 5) a.fill(0, 5 * dim, 6 * dim); // a zero row: error:embedding
    await writeNpy(join(folder, 'img_emb', `img_emb_${p}.npy`), a, [n, dim]);
    const keys = Array.from({ length: n }, (_, i) => `p${p}-${String(row + i).padStart(7, '0')}`);
    if (p === 1 && n > 3) keys[3] = keys[2]; // a repeated (shard, key): error:duplicate-key in exact mode
    const uids = Array.from({ length: n }, (_, i) => (row + i).toString(16).padStart(32, '0'));
    writeParquetFile(join(folder, 'metadata', `metadata_${p}.parquet`), {
      key: keys,
      uid: uids,
      url: keys.map((x) => `https://example.com/${x}.jpg`),
      caption: keys.map((x) => `caption ${x}`),
    });
    row += n;
  }
  const centroids = join(dir, 'centroids.npy');
  await writeNpy(centroids, unitRows(rng, k, dim).map((v, i) => 0.7 * centers[i] + 0.3 * v), [k, dim]);
  return { folder, centroids, total: row };
}
