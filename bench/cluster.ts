/**
 * Distributed mode (`--cluster`, issue 14): whole CLI processes (the built `dist/` CLI) against a
 * real redis-server on loopback, with 1, 2 and 4 warm `dbprune worker` processes (1 ORT thread,
 * concurrency 1 each). Each configuration runs REPS times, alternating, medians reported; every
 * cluster submission uses a fresh `--seed` (a new run id, nothing resumed).
 *
 * - latency-bound: `run <shard URLs> --cluster` over 20 shards of 10 images served by a loopback
 *   HTTP server that sends each shard in 10 pieces 50 ms apart (≈ 50 ms per image response);
 * - CPU-bound: `prune --cluster` over 8 embeddings parts (320k × 256-d, k = 256) vs single-machine
 *   `prune` on the same files;
 * - queue overhead: `prune --cluster` over 64 tiny parts (100 rows, d = 16, k = 8; 325 jobs) with one
 *   worker vs single-machine `prune`: (cluster − single) / jobs.
 * - merge (`… merge`): `prune --cluster` over a 200k-row clip-retrieval folder (8 parts, d = 64, k = 64,
 *   parquet metadata with key/url/caption/uid), 2 workers: the work dir's bytes by phase and the
 *   submitter's assembly time (stats.json `timings.assemble_s`).
 *
 * Usage: npx tsx bench/cluster.ts [REPS=3]   (needs redis-server and `npm run build`)
 * Prints ONE JSON object as the last stdout line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import * as parquet from 'parquet-wasm';
import tar from 'tar-stream';
import { readNpyRows, writeNpy } from '../src/io/npy.js';
import { synthEmbeddings } from './synth.js';
import { median, parseTimeV } from './time-v.js';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const reps = Number(process.argv[2] ?? 3);
/** `latency`, `cpu` or `overhead` to run one part only. */
const only = process.argv[3];
const dir = mkdtempSync(join(tmpdir(), 'dbprune-bench-cluster-'));
let seed = 100;


/** Runs the CLI under /usr/bin/time -v (asynchronously: this process also serves the shards); wall seconds and peak RSS (MB). */
async function timed(args: string[], cliPath = cli): Promise<{ wall: number; rssMB: number }> {
  const child = spawn('/usr/bin/time', ['-v', process.execPath, cliPath, ...args, '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`dbprune ${args.join(' ')} exited ${code}: ${stderr}`);
  const t = parseTimeV(stderr);
  return { wall: t.wallS, rssMB: t.maxRssMB };
}

/** The map phase's wall time of a cluster run (its stats.json `timings.map_s`). */
function mapSeconds(out: string): number {
  return (JSON.parse(readFileSync(join(dir, out, 'stats.json'), 'utf8')) as { timings: { map_s: number } }).timings.map_s;
}

async function startRedis(): Promise<{ url: string; child: ChildProcess }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout?.on('data', (d: Buffer) => d.toString().includes('Ready to accept') && resolve()));
  return { url: `redis://127.0.0.1:${port}`, child };
}

async function startWorkers(url: string, n: number, cliPath = cli, queue = 'dbprune'): Promise<ChildProcess[]> {
  const ws = Array.from({ length: n }, () => spawn(process.execPath, [cliPath, 'worker', '--cluster', url, '--threads', '1', '--queue', queue], { stdio: ['ignore', 'ignore', 'pipe'] }));
  await Promise.all(ws.map((w) => new Promise<void>((resolve) => w.stderr?.on('data', (d: Buffer) => d.toString().includes('taking jobs') && resolve()))));
  return ws;
}

async function stopWorkers(ws: ChildProcess[]): Promise<void> {
  await Promise.all(ws.map((w) => new Promise<void>((resolve) => {
    w.once('exit', () => resolve());
    w.kill('SIGTERM');
  })));
}

/** Splits one synthetic set into `parts` .npy files (same centroids). */
async function partsOf(n: number, dim: number, k: number, parts: number, name: string): Promise<{ folder: string; centroids: string }> {
  const set = await synthEmbeddings(n, dim, k, 7);
  const folder = join(dir, name);
  mkdirSync(folder);
  let p = 0;
  for await (const b of readNpyRows(set.embeddings, { batchRows: Math.ceil(n / parts) })) await writeNpy(join(folder, `part_${p++}.npy`), b.data, [b.rows, dim]);
  return { folder, centroids: set.centroids };
}

/** A clip-retrieval folder (img_emb/ + metadata/ with key, url, caption, uid) of one synthetic set in `parts` parts. */
async function clipRetrievalFolder(n: number, dim: number, k: number, parts: number, name: string): Promise<{ folder: string; centroids: string }> {
  const set = await synthEmbeddings(n, dim, k, 11);
  const folder = join(dir, name);
  mkdirSync(join(folder, 'img_emb'), { recursive: true });
  mkdirSync(join(folder, 'metadata'), { recursive: true });
  let p = 0;
  for await (const b of readNpyRows(set.embeddings, { batchRows: Math.ceil(n / parts) })) {
    await writeNpy(join(folder, 'img_emb', `img_emb_${p}.npy`), b.data, [b.rows, dim]);
    const rows = Array.from({ length: b.rows }, (_, i) => b.start + i);
    const key = rows.map((r) => String(r).padStart(9, '0'));
    const t = tableFromArrays({ key, url: key.map((x) => `https://images.example.com/photos/${x}.jpg`), caption: key.map((x) => `a photo of thing ${x} on a table`), uid: rows.map((r) => r.toString(16).padStart(32, '0')) });
    writeFileSync(join(folder, 'metadata', `metadata_${p}.parquet`), parquet.writeParquet(parquet.Table.fromIPCStream(tableToIPC(t, 'stream'))));
    p++;
  }
  return { folder, centroids: set.centroids };
}

/** Bytes of the files under `root`, by first-level folder of the run (map, decide, …; files directly in the run: `run`). */
function bytesByPhase(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const rel = join(e.parentPath, e.name).slice(root.length + 1).split('/');
    const phase = rel.length > 2 ? rel[1] : 'run';
    out[phase] = (out[phase] ?? 0) + statSync(join(e.parentPath, e.name)).size;
  }
  return out;
}

/** 20 shards of 10 samples, re-packed from the bundled shards. */
async function smallShards(): Promise<Buffer[]> {
  const members: { name: string; data: Buffer }[] = [];
  for (const f of ['00000.tar', '00001.tar']) {
    const ex = tar.extract();
    const done = new Promise<void>((resolve, reject) => {
      ex.on('entry', (h, stream, next) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: unknown) => chunks.push(c as Buffer));
        stream.on('end', () => {
          members.push({ name: h.name, data: Buffer.concat(chunks) });
          next();
        });
      });
      ex.on('finish', resolve);
      ex.on('error', reject);
    });
    ex.end(readFileSync(join(root, 'data-samples', 'shards', f)));
    await done;
  }
  const keys = [...new Set(members.map((m) => m.name.replace(/\..*$/, '')))];
  const shards: Buffer[] = [];
  for (let s = 0; s < 20; s++) {
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    const ended = new Promise<void>((resolve) => pack.on('end', resolve));
    for (const key of keys.slice(s * 10, s * 10 + 10)) for (const m of members.filter((x) => x.name.startsWith(`${key}.`))) pack.entry({ name: m.name }, m.data);
    pack.finalize();
    await ended;
    shards.push(Buffer.concat(chunks));
  }
  return shards;
}

/** Serves shard i at /i.tar in 10 pieces, 50 ms apart. */
async function slowServer(shards: Buffer[]): Promise<{ base: string; server: Server }> {
  const serve = async (url: string | undefined, res: ServerResponse): Promise<void> => {
    const i = Number(/\/(\d+)\.tar$/.exec(url ?? '')?.[1]);
    const body = shards[i];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': body.length });
    const step = Math.ceil(body.length / 10);
    for (let o = 0; o < body.length; o += step) {
      await sleep(50);
      res.write(body.subarray(o, o + step));
    }
    res.end();
  };
  const server = createServer((req, res) => void serve(req.url, res).catch(() => res.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const result: Record<string, unknown> = { cores: (await import('node:os')).cpus().length, reps, note: 'shared 2-core machine: other engineers ran builds and tests at the same time' };
  try {
    // CPU-bound embeddings workload.
    if (!only || only === 'cpu') {
    const cpu = await partsOf(320_000, 256, 256, 8, 'cpu');
    const cpuArgs = (out: string) => ['prune', '--embeddings', cpu.folder, '--centroids', cpu.centroids, '--keep', '0.3', '--out', join(dir, out), '--no-report'];
    const cpuRuns: Record<string, number[]> = { single: [] };
    for (const n of [1, 2, 4]) {
      cpuRuns[`workers_${n}`] = [];
      const ws = await startWorkers(redis.url, n);
      for (let r = 0; r < reps; r++) {
        cpuRuns.single.push((await timed(cpuArgs('s'))).wall);
        cpuRuns[`workers_${n}`].push((await timed([...cpuArgs(`c${n}-${r}`), '--cluster', redis.url, '--seed', String(seed++)])).wall);
      }
      await stopWorkers(ws);
    }
    result.cpu = Object.fromEntries(Object.entries(cpuRuns).map(([k, v]) => [k, { median_s: median(v), samples_per_s: Math.round(320_000 / median(v)), runs: v }]));
    process.stderr.write(`cpu ${JSON.stringify(result.cpu)}\n`);
    }

    // Queue overhead per job.
    if (!only || only === 'overhead') {
    const tiny = await partsOf(6_400, 16, 8, 64, 'tiny');
    const tinyArgs = (out: string) => ['prune', '--embeddings', tiny.folder, '--centroids', tiny.centroids, '--keep', '0.3', '--out', join(dir, out), '--no-report'];
    const ws1 = await startWorkers(redis.url, 1);
    const single: number[] = [];
    const cluster: number[] = [];
    for (let r = 0; r < reps; r++) {
      single.push((await timed(tinyArgs('ts'))).wall);
      cluster.push((await timed([...tinyArgs(`tc-${r}`), '--cluster', redis.url, '--seed', String(seed++)])).wall);
    }
    await stopWorkers(ws1);
    const jobs = 64 * 5 + 5;
    process.stderr.write(`overhead single ${JSON.stringify(single)} cluster ${JSON.stringify(cluster)}\n`);
    result.overhead = { jobs, single_s: median(single), cluster_s: median(cluster), ms_per_job: Math.round((1000 * (median(cluster) - median(single))) / jobs * 10) / 10, single, cluster };
    }

    // The distributed merge: work-dir bytes and assembly time on 200k rows; with BASELINE_ROOT (another
    // checkout, built), its CLI and workers (own queue) run alternately with this one's.
    if (only === 'merge') {
      const m = await clipRetrievalFolder(200_000, 64, 64, 8, 'merge');
      const base = process.env.BASELINE_ROOT;
      const variants = [{ name: 'this', cli, queue: 'dbprune' }, ...(base ? [{ name: 'baseline', cli: join(base, 'dist', 'src', 'cli', 'main.js'), queue: 'baseline' }] : [])];
      const ws = (await Promise.all(variants.map((v) => startWorkers(redis.url, 2, v.cli, v.queue)))).flat();
      const runs: Record<string, { wall: number; assemble_s: number; decide_s: number; work: Record<string, number> }[]> = {};
      for (let r = 0; r < reps; r++) {
        for (const v of variants) {
          const out = join(dir, `m-${v.name}-${r}`);
          const work = join(dir, `mw-${v.name}-${r}`);
          const args = ['prune', '--embeddings', m.folder, '--centroids', m.centroids, '--keep', '0.3', '--out', out, '--work-dir', work, '--no-report', '--cluster', redis.url, '--queue', v.queue, '--seed', String(seed++)];
          const { wall } = await timed(args, v.cli);
          const t = (JSON.parse(readFileSync(join(out, 'stats.json'), 'utf8')) as { timings: { assemble_s: number; decide_s: number } }).timings;
          (runs[v.name] ??= []).push({ wall, assemble_s: t.assemble_s, decide_s: t.decide_s, work: bytesByPhase(work) });
        }
      }
      await stopWorkers(ws);
      result.merge = Object.fromEntries(
        Object.entries(runs).map(([name, rs]) => [name, { rows: 200_000, wall_median_s: median(rs.map((x) => x.wall)), assemble_median_s: median(rs.map((x) => x.assemble_s)), decide_median_s: median(rs.map((x) => x.decide_s)), runs: rs }]),
      );
    }

    // Latency-bound shard downloads.
    if (!only || only === 'latency') {
    const { base, server } = await slowServer(await smallShards());
    const urls = Array.from({ length: 20 }, (_, i) => `${base}/${i}.tar`);
    const runArgs = (out: string) => ['run', ...urls, '--model', join(root, 'data-samples', 'model'), '--centroids', join(root, 'data-samples', 'centroids', 'centroids.npy'), '--keep', '0.3', '--out', join(dir, out), '--no-report'];
    const lat: Record<string, { wall: number[]; map: number[] }> = {};
    for (const n of [1, 2, 4]) {
      const m = (lat[`workers_${n}`] = { wall: [] as number[], map: [] as number[] });
      const ws = await startWorkers(redis.url, n);
      for (let r = 0; r < reps; r++) {
        m.wall.push((await timed([...runArgs(`l${n}-${r}`), '--cluster', redis.url, '--seed', String(seed++)])).wall);
        m.map.push(mapSeconds(`l${n}-${r}`));
      }
      await stopWorkers(ws);
    }
    server.close();
    result.latency = Object.fromEntries(
      Object.entries(lat).map(([k, v]) => [k, { median_s: median(v.wall), images_per_s: Math.round(200 / median(v.wall)), map_phase_median_s: median(v.map), map_images_per_s: Math.round(200 / median(v.map)), runs: v.wall, map_runs: v.map }]),
    );
    }
  } finally {
    redis.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
