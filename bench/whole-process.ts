/**
 * Issue 16 benchmark: the commands a user runs, as whole processes, against the numpy reference of
 * the same exact DBP (bench/numpy_reference.py), alternating runs in one session, medians.
 *
 *   numpy        python3 bench/numpy_reference.py X.npy C.npy keys.txt 0.277 kept.txt
 *   prune        dbprune prune --embeddings X.npy --keys keys.txt --centroids C.npy --keep 0.277 --out DIR
 *   run --out    dbprune run --embeddings X.npy --keys keys.txt --centroids C.npy --calibration CAL --keep 0.277 --out DIR
 *   run > jsonl  dbprune run --embeddings … (no --out) > manifest.jsonl
 *
 * Wall time, CPU time and peak RSS come from `/usr/bin/time -v` (Debian's `time` package); without
 * it wall time is measured here and CPU/RSS are reported as null. numpy is skipped (null ratios)
 * when `python3 -c 'import numpy'` fails. A per-stage breakdown of each command's main thread comes
 * from one extra `node --cpu-prof` run (self time by source file, grouped into stages), and the
 * worker-side assignment time from the process CPU time.
 *
 * Usage: node --import tsx bench/whole-process.ts [--n 1000000] [--runs 3] [--baseline-cli PATH]
 *   [--only prune,run-out,...] [--no-profile] [--rss-10m]
 * `--rss-10m` also runs prune and run --out once each on 10× the rows (peak RSS at 10M).
 * `--baseline-cli` adds the same commands run by another build's dist/src/cli/main.js (e.g. main).
 * Prints one JSON object on the last stdout line.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { dataDir, synthEmbeddings } from './synth.js';
import { median, parseTimeV } from './time-v.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const n = Number(flag('--n') ?? 1_000_000);
const runs = Number(flag('--runs') ?? 3);
const only = flag('--only')?.split(',');
const baselineCli = flag('--baseline-cli');
const profile = !args.includes('--no-profile');
const rss10m = args.includes('--rss-10m');
const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist/src/cli/main.js');
const TIME = '/usr/bin/time';
const haveTime = existsSync(TIME) && spawnSync(TIME, ['-v', 'true'], { stdio: 'ignore' }).status === 0;
const haveNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
const KEEP = '0.277';

interface Measured {
  wallS: number;
  cpuS: number | null;
  peakRssMB: number | null;
}

/** Runs argv (stdout to `stdoutFile` or discarded) under /usr/bin/time -v when available. */
function timed(argv: string[], stdoutFile?: string): Promise<Measured> {
  return new Promise((resolvePromise, reject) => {
    const out = stdoutFile ? openSync(stdoutFile, 'w') : 'ignore';
    const full = haveTime ? [TIME, '-v', ...argv] : argv;
    const t0 = performance.now();
    const child = spawn(full[0], full.slice(1), { stdio: ['ignore', out, 'pipe'], cwd: root });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = (performance.now() - t0) / 1000;
      if (typeof out === 'number') closeSync(out);
      if (code !== 0) return reject(new Error(`${argv.join(' ')} exited ${code}: ${err.slice(-2000)}`));
      if (!haveTime) return resolvePromise({ wallS: wall, cpuS: null, peakRssMB: null });
      const t = parseTimeV(err);
      resolvePromise({ wallS: t.wallS, cpuS: t.cpuS, peakRssMB: t.maxRssMB });
    });
  });
}


async function prepare(): Promise<{ x: string; c: string; keys: string; cal: string }> {
  const set = await synthEmbeddings(n, 512, 500, 1);
  const keys = join(dataDir, `keys-${n}.txt`);
  if (!existsSync(keys)) {
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(`s${String(i).padStart(9, '0')}`);
    writeFileSync(keys, `${lines.join('\n')}\n`);
  }
  const cal = join(dataDir, `cal-${n}`);
  if (!existsSync(join(cal, 'calibration.json'))) {
    const r = spawnSync(process.execPath, [cli, 'fit', '--embeddings', set.embeddings, '--centroids', set.centroids, '--out', cal, '-q'], { stdio: 'inherit', cwd: root });
    if (r.status !== 0) throw new Error('dbprune fit failed');
  }
  return { x: set.embeddings, c: set.centroids, keys, cal };
}

interface Command {
  name: string;
  argv: (out: string) => string[];
  /** stdout goes to this file (the JSONL manifest) when set. */
  toStdout?: boolean;
}

function commands(d: { x: string; c: string; keys: string; cal: string }, cliPath: string, suffix: string): Command[] {
  const node = process.execPath;
  const common = ['--embeddings', d.x, '--keys', d.keys, '--centroids', d.c, '--keep', KEEP, '-q'];
  return [
    { name: `prune${suffix}`, argv: (out) => [node, cliPath, 'prune', ...common, '--out', out] },
    { name: `run-out${suffix}`, argv: (out) => [node, cliPath, 'run', ...common, '--calibration', d.cal, '--out', out] },
    { name: `run-jsonl${suffix}`, argv: () => [node, cliPath, 'run', ...common, '--calibration', d.cal], toStdout: true },
  ];
}

/** Source file → stage of the per-stage breakdown (main thread self time). */
function stageOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(idle)') return 'idle (waiting on workers / I/O)';
  if (/io\/(npy|keys|metadata|embeddings-source|glob)(\.js|\/)/.test(url) || fn === 'read') return 'reading';
  if (/core\/vector\.js|stages\/normalize\.js/.test(url)) return 'normalising';
  if (/kernels\/|core\/nearest\.js|stages\/assign\.js/.test(url) || fn === 'postMessage') return 'assignment (main-thread share)';
  if (/core\/(dbp|select|quota|complexity|streaming-dbp|streaming-plan|streaming-guard|sketch|radix-select|exact-sum)\.js|stages\/decide\.js|pipelines\/decider\.js/.test(url)) return 'decisions';
  if (/io\/manifest(\.js|\/)|stages\/manifest-sink\.js|apache-arrow|parquet-wasm|wasm/.test(url) || ['utf8Write', 'write', 'writeBuffer', 'writeBuffers', 'writev', 'writeUtf8String', 'stringify'].includes(fn)) return 'manifest encoding + writing';
  if (/io\/stats\.js/.test(url)) return 'stats';
  if (/src\/report\//.test(url)) return 'report';
  return 'other (start-up, streams, glue)';
}

function breakdown(profileDir: string): Record<string, number> {
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return {};
  const p = JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((x) => [x.id, x.callFrame]));
  const out: Record<string, number> = {};
  for (let i = 0; i < p.samples.length; i++) {
    const cf = byId.get(p.samples[i]);
    if (!cf) continue;
    const s = stageOf(cf.url, cf.functionName);
    out[s] = (out[s] ?? 0) + (p.timeDeltas[i] ?? 0) / 1e6;
  }
  for (const key of Object.keys(out)) out[key] = Math.round(out[key] * 100) / 100;
  return out;
}

const d = await prepare();
const work = mkdtempSync(join(tmpdir(), 'dbprune-whole-process-'));
const list: Command[] = [];
if (haveNumpy) {
  list.push({ name: 'numpy', argv: () => ['python3', join(root, 'bench/numpy_reference.py'), d.x, d.c, d.keys, KEEP, join(work, 'numpy-kept.txt')] });
}
list.push(...commands(d, cli, ''));
if (baselineCli) list.push(...commands(d, resolve(baselineCli), ' (baseline)'));
const chosen = list.filter((c) => !only || only.some((o) => c.name === o || c.name.startsWith(`${o} `)));
const samples: Record<string, Measured[]> = {};
const load: number[] = [];
try {
  for (let r = 0; r < runs; r++) {
    // Alternate, and rotate the order each round so no command always runs first.
    const order = chosen.map((_, i) => chosen[(i + r) % chosen.length]);
    for (const c of order) {
      load.push(loadavg()[0]);
      const out = join(work, c.name.replace(/\W+/g, '_'));
      rmSync(out, { recursive: true, force: true });
      const m = await timed(c.argv(out), c.toStdout ? `${out}.jsonl` : undefined);
      (samples[c.name] ??= []).push(m);
      process.stderr.write(`${c.name}: ${m.wallS.toFixed(2)} s wall, ${m.cpuS?.toFixed(2) ?? '?'} CPU-s, ${m.peakRssMB?.toFixed(0) ?? '?'} MB\n`);
    }
  }
  const summary: Record<string, unknown> = {};
  const npWall = samples.numpy ? median(samples.numpy.map((m) => m.wallS)) : undefined;
  for (const [name, ms] of Object.entries(samples)) {
    const wall = median(ms.map((m) => m.wallS));
    const cpu = ms[0].cpuS === null ? null : median(ms.map((m) => m.cpuS as number));
    const rss = ms[0].peakRssMB === null ? null : median(ms.map((m) => m.peakRssMB as number));
    summary[name] = {
      wallS: wall,
      wallRange: [Math.min(...ms.map((m) => m.wallS)), Math.max(...ms.map((m) => m.wallS))],
      cpuS: cpu,
      peakRssMB: rss,
      peakRssMaxMB: rss === null ? null : Math.max(...ms.map((m) => m.peakRssMB as number)),
      samplesPerSec: n / wall,
      vsNumpy: npWall === undefined ? null : npWall / wall,
    };
  }
  const at10m: Record<string, Measured> = {};
  if (rss10m) {
    // 10M rows: the 1M file ten times over (symlinks; row keys from row numbers), one run each.
    const dir = join(dataDir, `x10-n${n}`);
    mkdirSync(dir, { recursive: true });
    const parts: string[] = [];
    for (let i = 0; i < 10; i++) {
      const p = join(dir, `part-${i}.npy`);
      if (!existsSync(p)) symlinkSync(d.x, p);
      parts.push(p);
    }
    const node = process.execPath;
    const common = ['--embeddings', ...parts, '--centroids', d.c, '--keep', KEEP, '-q'];
    const out = join(work, 'x10');
    rmSync(out, { recursive: true, force: true });
    at10m.prune = await timed([node, cli, 'prune', ...common, '--out', out]);
    rmSync(out, { recursive: true, force: true });
    at10m['run-out'] = await timed([node, cli, 'run', ...common, '--calibration', d.cal, '--out', out]);
    rmSync(out, { recursive: true, force: true });
    process.stderr.write(`10M: ${JSON.stringify(at10m)}\n`);
  }
  const stages: Record<string, Record<string, number>> = {};
  if (profile) {
    for (const c of chosen.filter((x) => x.name !== 'numpy' && !x.name.endsWith('(baseline)'))) {
      const dir = join(work, `prof-${c.name}`);
      const argv = c.argv(join(work, 'prof-out'));
      rmSync(join(work, 'prof-out'), { recursive: true, force: true });
      await timed([argv[0], `--cpu-prof`, `--cpu-prof-dir=${dir}`, ...argv.slice(1)], c.toStdout ? join(work, 'prof.jsonl') : undefined);
      stages[c.name] = breakdown(dir);
    }
  }
  console.log(
    JSON.stringify({
      bench: 'whole-process',
      n,
      dim: 512,
      k: 500,
      keep: Number(KEEP),
      runs,
      timeTool: haveTime ? '/usr/bin/time -v' : 'none (wall only)',
      numpy: haveNumpy,
      cores: cpus().length,
      loadAvg1mDuringRuns: { min: Math.min(...load), median: median(load), max: Math.max(...load) },
      summary,
      mainThreadSecondsByStage: stages,
      at10m: rss10m ? at10m : undefined,
      samples,
    }),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
