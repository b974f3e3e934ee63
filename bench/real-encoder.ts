/**
 * The real bundled encoder (MobileNetV2 from nsfwjs, 224 px, 1280-d) on the real bundled drawings
 * (data-samples/openclipart, 995 images), whole CLI processes under `/usr/bin/time -v`, alternating
 * in each round so all three see the same machine load:
 *
 *   A. `dbprune run` with no flags (what `npm start` runs): untar → decode → embed → assign → decide
 *      → manifest + stats + report;
 *   B. `dbprune embed` of the same shards: untar → decode → embed → clip-retrieval parts;
 *   C. model only: one process that feeds the ONNX session batches of 64 pre-made 224×224 tensors
 *      (as many images as the shards hold), timed around the session runs only.
 *
 *   npm run build && node --import tsx bench/real-encoder.ts [--rounds 3]
 *
 * Prints one JSON object (medians over rounds, plus every round). Needs dist/ (npm ci builds it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InferenceSession, Tensor } from 'onnxruntime-node';

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
  const num = (re: RegExp): number => Number(re.exec(r.stderr)?.[1] ?? NaN);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  const wallS = wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : NaN;
  return { wallS, userS: num(/User time \(seconds\): ([\d.]+)/), sysS: num(/System time \(seconds\): ([\d.]+)/), maxRssMb: num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024, stdout: r.stdout };
}

/** C, in a child process: the ORT session alone on `n` images in batches of `batch`. */
async function modelOnlyChild(n: number, batch: number): Promise<void> {
  const session = await InferenceSession.create(onnxPath, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  const x = new Float32Array(batch * 3 * 224 * 224).map((_, i) => (Math.sin(i) + 1) / 2);
  await session.run({ pixel_values: new Tensor('float32', x, [batch, 3, 224, 224]) }); // warm-up, not timed
  let done = 0;
  const t0 = performance.now();
  while (done < n) {
    const b = Math.min(batch, n - done);
    await session.run({ pixel_values: new Tensor('float32', x.subarray(0, b * 3 * 224 * 224), [b, 3, 224, 224]) });
    done += b;
  }
  const s = (performance.now() - t0) / 1000;
  await session.release();
  process.stdout.write(`${JSON.stringify({ images: done, seconds: s, perSec: done / s })}\n`);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, 'model-only-child': { type: 'string' } } });
  if (values['model-only-child']) return modelOnlyChild(Number(values['model-only-child']), 64);
  const rounds = Number(values.rounds ?? 3);
  const shards = readdirSync(join(real, 'shards')).filter((f) => f.endsWith('.tar')).map((f) => join(real, 'shards', f));
  const rows: Record<string, unknown>[] = [];
  let images = 0;
  for (let i = 0; i < rounds; i++) {
    const tmp = mkdtempSync(join(tmpdir(), 'dbprune-bench-real-'));
    try {
      const a = timed([cli, 'run', '-q'], tmp);
      images = Number(/kept [\d,]+ of ([\d,]+) samples/.exec(a.stdout)?.[1].replace(/,/g, '') ?? NaN);
      const b = timed([cli, 'embed', ...shards, '--model', join(real, 'model'), '--out', join(tmp, 'emb'), '-q'], tmp);
      const embedRate = Number(/([\d.]+) rows\/s/.exec(b.stdout)?.[1] ?? NaN);
      const c = timed(['--import', 'tsx', join(import.meta.dirname, 'real-encoder.ts'), '--model-only-child', String(images)], root);
      const model = JSON.parse(c.stdout.trim().split('\n').pop() ?? '{}') as { perSec: number; seconds: number };
      const row = {
        round: i + 1,
        run: { ...a, stdout: undefined, imagesPerSec: images / a.wallS },
        embed: { ...b, stdout: undefined, imagesPerSec: images / b.wallS, inProcessRowsPerSec: embedRate },
        modelOnly: { ...c, stdout: undefined, imagesPerSec: model.perSec, sessionSeconds: model.seconds },
      };
      rows.push(row);
      process.stderr.write(`${JSON.stringify(row)}\n`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const pick = (k: 'run' | 'embed' | 'modelOnly', f: string): number => median(rows.map((r) => (r[k] as Record<string, number>)[f]));
  const summary = {
    images,
    rounds,
    runImagesPerSec: pick('run', 'imagesPerSec'),
    runWallS: pick('run', 'wallS'),
    runMaxRssMb: pick('run', 'maxRssMb'),
    embedImagesPerSec: pick('embed', 'imagesPerSec'),
    embedMaxRssMb: pick('embed', 'maxRssMb'),
    modelOnlyImagesPerSec: pick('modelOnly', 'imagesPerSec'),
    runOverModelOnly: median(rows.map((r) => (r.run as { imagesPerSec: number }).imagesPerSec / (r.modelOnly as { imagesPerSec: number }).imagesPerSec)),
    perRound: rows,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

await main();
