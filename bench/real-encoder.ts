/**
 * The real bundled encoder (MobileNetV2 from nsfwjs, 224 px, 1280-d) on the real bundled drawings
 * (data-samples/openclipart, 995 images), whole CLI processes under `/usr/bin/time -v`, alternating
 * in each round so all three see the same machine load:
 *
 *   A. `dbprune run` with no flags (what `npm start` runs): untar → decode → embed → assign → decide
 *      → manifest + stats + report;
 *   B. `dbprune embed` of the same shards: untar → decode → embed → clip-retrieval parts;
 *   C. model only: one process that feeds the ONNX session pre-made 224×224 tensors (as many images
 *      as the shards hold), timed around the session runs only, with the product's session options
 *      (`encoderSessionOptions`, the embed stage's: 2 intra-op threads, no spinning); once in runs of
 *      64 rows and once in the embed stage's runs of 16 (`rowsPerRun`), alternating which goes
 *      first. A / C divides by the faster of the two.
 *
 *   npm run build && node --import tsx bench/real-encoder.ts [--rounds 3] [--baseline-cli OLD/dist/src/cli/main.js]
 *
 * With --baseline-cli, A and B are also run by that build in each round (A, A base, B, B base, C).
 *
 * Prints one JSON object (medians over rounds, plus every round). Needs dist/ (npm ci builds it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { encoderSessionOptions } from '../src/stages/embed.js';
import { median, parseTimeV } from './time-v.js';

const root = join(import.meta.dirname, '..');
const real = join(root, 'data-samples', 'openclipart');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const onnxPath = join(real, 'model', 'onnx', 'vision_model.onnx');

interface Timed {
  wallS: number;
  userS: number;
  sysS: number;
  maxRssMb: number;
  stdout: string;
}

/** Runs `node args…` under /usr/bin/time -v; returns its wall/CPU/RSS figures. */
function timed(args: string[], cwd: string): Timed {
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, ...args], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const t = parseTimeV(r.stderr);
  return { wallS: t.wallS, userS: t.userS, sysS: t.sysS, maxRssMb: t.maxRssMB, stdout: r.stdout };
}

/** Model-only figures of one run size. */
interface ModelOnly {
  rows: number;
  images: number;
  seconds: number;
  perSec: number;
  cpuS: number;
}

/** C, in a child process: the ORT session alone on `n` images, in runs of 64 and of 16 rows. */
async function modelOnlyChild(n: number, round: number): Promise<void> {
  const options = encoderSessionOptions(2) as InferenceSession.SessionOptions;
  const session = await InferenceSession.create(onnxPath, options);
  const x = new Float32Array(64 * 3 * 224 * 224).map((_, i) => (Math.sin(i) + 1) / 2);
  const timedRuns = async (rows: number): Promise<ModelOnly> => {
    await session.run({ pixel_values: new Tensor('float32', x.subarray(0, rows * 3 * 224 * 224), [rows, 3, 224, 224]) }); // warm-up, not timed
    let done = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    while (done < n) {
      const b = Math.min(rows, n - done);
      await session.run({ pixel_values: new Tensor('float32', x.subarray(0, b * 3 * 224 * 224), [b, 3, 224, 224]) });
      done += b;
    }
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    return { rows, images: done, seconds, perSec: done / seconds, cpuS: (c.user + c.system) / 1e6 };
  };
  const order = round % 2 === 0 ? [64, 16] : [16, 64];
  const results: ModelOnly[] = [];
  for (const rows of order) results.push(await timedRuns(rows));
  await session.release();
  const best = results.reduce((a, b) => (b.perSec > a.perSec ? b : a));
  process.stdout.write(`${JSON.stringify({ images: n, perSec: best.perSec, seconds: best.seconds, byRows: results })}\n`);
}


/** One whole-process figure set: wall, CPU (user + system), peak RSS and images/s over wall. */
interface Figures {
  wallS: number;
  cpuS: number;
  maxRssMb: number;
  imagesPerSec: number;
}

const figures = (t: Timed, images: number): Figures => ({ wallS: t.wallS, cpuS: t.userS + t.sysS, maxRssMb: t.maxRssMb, imagesPerSec: images / t.wallS });

/** One round: A (and A base), B (and B base), then C, in a fresh temp folder. */
function round(i: number, shards: string[], baseline: string | undefined): Record<string, unknown> {
  const tmp = mkdtempSync(join(tmpdir(), 'dbprune-bench-real-'));
  try {
    const builds: [string, string][] = [['', cli], ...(baseline ? [['Base', baseline] as [string, string]] : [])];
    const row: Record<string, unknown> = { round: i + 1 };
    let images = NaN;
    for (const [suffix, main] of builds) {
      const a = timed([main, 'run', '-q'], tmp);
      images = Number(/kept [\d,]+ of ([\d,]+) samples/.exec(a.stdout)?.[1].replace(/,/g, '') ?? NaN);
      row[`run${suffix}`] = figures(a, images);
      rmSync(join(tmp, 'out'), { recursive: true, force: true });
    }
    for (const [suffix, main] of builds) {
      const b = timed([main, 'embed', ...shards, '--model', join(real, 'model'), '--out', join(tmp, `emb${suffix}`), '-q'], tmp);
      row[`embed${suffix}`] = figures(b, images);
    }
    const c = timed(['--import', 'tsx', join(import.meta.dirname, 'real-encoder.ts'), '--model-only-child', String(images), '--round', String(i)], root);
    const model = JSON.parse(c.stdout.trim().split('\n').pop() ?? '{}') as { perSec: number; seconds: number; byRows: ModelOnly[] };
    row.modelOnly = { ...figures(c, images), imagesPerSec: model.perSec, sessionSeconds: model.seconds, byRows: model.byRows };
    row.images = images;
    return row;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, 'model-only-child': { type: 'string' }, round: { type: 'string' }, 'baseline-cli': { type: 'string' } } });
  if (values['model-only-child']) return modelOnlyChild(Number(values['model-only-child']), Number(values.round ?? 0));
  const rounds = Number(values.rounds ?? 3);
  const shards = readdirSync(join(real, 'shards')).filter((f) => f.endsWith('.tar')).map((f) => join(real, 'shards', f));
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i < rounds; i++) {
    const row = round(i, shards, values['baseline-cli'] === undefined ? undefined : resolve(values['baseline-cli']));
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  const keys = ['run', 'runBase', 'embed', 'embedBase', 'modelOnly'].filter((k) => rows[0][k] !== undefined);
  const medians = Object.fromEntries(
    keys.map((k) => [k, Object.fromEntries((['imagesPerSec', 'wallS', 'cpuS', 'maxRssMb'] as const).map((f) => [f, median(rows.map((r) => (r[k] as Figures)[f]))]))]),
  );
  const ratio = (k: string): number => median(rows.map((r) => (r[k] as Figures).imagesPerSec / (r.modelOnly as Figures).imagesPerSec));
  const summary = {
    images: rows[0].images,
    rounds,
    medians,
    runOverModelOnly: ratio('run'),
    ...(values['baseline-cli'] ? { runBaseOverModelOnly: ratio('runBase') } : {}),
    perRound: rows,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

await main();
