/**
 * Issue 17, `ingest --out`: the same `dbprune ingest` with a local `--out` and with
 * `--out s3://…` on a loopback S3 server (s3rver in its own process, path-style on 127.0.0.1);
 * `--state` and the inputs are local in both. Whole processes timed with /usr/bin/time -v, local and
 * s3 runs alternating, medians of `runs` each, a fresh state folder and output each run:
 * - embeddings: one N × 512 `.npy` (k = 200), `--embeddings --checkpoint-every 10000` (N / 10,000 commits);
 * - images: the 6 bundled shards (1,200 images, the bundled toy encoder), `--checkpoint-every 200`.
 * The server shares the machine's cores with the measured process (its CPU is not counted).
 * Prints one JSON object. Usage: node --import tsx bench/s3-ingest.ts [N=100000] [runs=3]
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { startS3Server } from '../test/helpers/s3.js';
import { dataDir, synthEmbeddings } from './synth.js';
import { parseTimeV, summarizeRuns } from './time-v.js';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

interface Timed {
  wallS: number;
  maxRssMB: number;
  cpuS: number;
}

function timed(args: string[], stdin: string, env: NodeJS.ProcessEnv): Timed {
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, cli, ...args], { env, input: stdin, encoding: 'utf8', stdio: ['pipe', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`dbprune ${args.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  const t = parseTimeV(r.stderr);
  return { wallS: t.wallS, maxRssMB: Math.round(t.maxRssMB), cpuS: Math.round(t.cpuS * 100) / 100 };
}

{
  const n = Number(process.argv[2] ?? 100_000);
  const runs = Number(process.argv[3] ?? 3);
  const set = await synthEmbeddings(n, 512, 200, 3);
  if (spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
  const srv = await startS3Server(['bench']);
  const env = { ...process.env, ...srv.env };
  const work = join(dataDir, `s3-ingest-${process.pid}`);
  const load: number[][] = [loadavg()];
  try {
    const ingest = (state: string, out: string, extra: string[]): string[] => ['ingest', '--state', state, '--out', out, '--stdin', '--exit-when-done', '--keep', '0.3', '-q', ...extra];
    const embArgs = ['--embeddings', '--centroids', set.centroids, '--checkpoint-every', '10000', '--format', 'parquet'];
    const shardDir = join(root, 'data-samples', 'shards');
    const shardList = `${readdirSync(shardDir).filter((f) => f.endsWith('.tar')).sort().map((f) => join(shardDir, f)).join('\n')}\n`;
    const emb = { local: [] as Timed[], s3: [] as Timed[] };
    const img = { local: [] as Timed[], s3: [] as Timed[] };
    for (let i = 0; i < runs; i++) {
      emb.local.push(timed(ingest(join(work, `emb-l${i}-state`), join(work, `emb-l${i}-out`), embArgs), `${set.embeddings}\n`, env));
      emb.s3.push(timed(ingest(join(work, `emb-s${i}-state`), `s3://bench/emb-${i}/`, embArgs), `${set.embeddings}\n`, env));
      load.push(loadavg());
    }
    for (let i = 0; i < runs; i++) {
      img.local.push(timed(ingest(join(work, `img-l${i}-state`), join(work, `img-l${i}-out`), ['--checkpoint-every', '200']), shardList, env));
      img.s3.push(timed(ingest(join(work, `img-s${i}-state`), `s3://bench/img-${i}/`, ['--checkpoint-every', '200']), shardList, env));
      load.push(loadavg());
    }
    console.log(
      JSON.stringify({
        bench: 's3-ingest',
        n,
        runs,
        loadavg1: load.map((l) => Math.round(l[0] * 10) / 10),
        embeddings: { local: summarizeRuns(emb.local, n), s3: summarizeRuns(emb.s3, n), raw: emb },
        images: { local: summarizeRuns(img.local, 1200), s3: summarizeRuns(img.s3, 1200), raw: img },
      }),
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
    await srv.stop();
  }
}
