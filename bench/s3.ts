/**
 * Issue 17 benchmark: the same CLI commands with local paths and with s3:// on a loopback S3
 * server (s3rver in its own process, path-style on 127.0.0.1), whole processes timed with
 * /usr/bin/time -v, local and s3 runs alternating, medians of `runs` each:
 * - exact mode: `prune --embeddings <1M×512 .npy> --centroids <k=500> --keep 0.277 --out …`
 *   (inputs and outputs both local, or both s3://);
 * - the bundled shards: `run <6 shards> --out …` (shards and outputs local, or s3://).
 * The server shares the machine's cores with the measured process, so s3 figures include
 * serving. Prints one JSON object. Usage: node --import tsx bench/s3.ts [N] [runs]
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { openWrite } from '../src/io/storage/index.js';
import { startS3Server } from '../test/helpers/s3.js';
import { dataDir, synthEmbeddings } from './synth.js';
import { parseTimeV, summarizeRuns } from './time-v.js';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

async function upload(file: string, uri: string): Promise<void> {
  const out = await openWrite(uri);
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), out.stream);
  await out.commit();
}

interface Timed {
  wallS: number;
  maxRssMB: number;
  cpuS: number;
}

function timed(args: string[], env: NodeJS.ProcessEnv): Timed {
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, cli, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`dbprune ${args.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  const t = parseTimeV(r.stderr);
  return { wallS: t.wallS, maxRssMB: Math.round(t.maxRssMB), cpuS: t.cpuS };
}

{
  const n = Number(process.argv[2] ?? 1_000_000);
  const runs = Number(process.argv[3] ?? 3);
  const set = await synthEmbeddings(n, 512, 500, 1);
  if (spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' }).status !== 0) throw new Error('build failed');
  const srv = await startS3Server(['bench']);
  Object.assign(process.env, srv.env);
  const env = { ...process.env, ...srv.env };
  try {
    const t0 = performance.now();
    await upload(set.embeddings, 's3://bench/emb.npy');
    await upload(set.centroids, 's3://bench/centroids.npy');
    const uploadS = (performance.now() - t0) / 1000;
    const shardDir = join(root, 'data-samples', 'shards');
    for (const f of readdirSync(shardDir)) await upload(join(shardDir, f), `s3://bench/shards/${f}`);

    const localOut = join(dataDir, `s3-bench-local-${process.pid}`);
    const prune = (emb: string, c: string, out: string): string[] => ['prune', '--embeddings', emb, '--centroids', c, '--keep', '0.277', '--no-report', '-q', '--out', out];
    const exact = { local: [] as Timed[], s3: [] as Timed[] };
    for (let i = 0; i < runs; i++) {
      exact.local.push(timed(prune(set.embeddings, set.centroids, localOut), env));
      exact.s3.push(timed(prune('s3://bench/emb.npy', 's3://bench/centroids.npy', `s3://bench/out-${i}`), env));
    }
    const shards = { local: [] as Timed[], s3: [] as Timed[] };
    const run = (src: string, out: string): string[] => ['run', src, '--out', out, '-q'];
    for (let i = 0; i < runs; i++) {
      shards.local.push(timed(run(join(shardDir, '{00000..00005}.tar'), `${localOut}-run`), env));
      shards.s3.push(timed(run('s3://bench/shards/{00000..00005}.tar', `s3://bench/run-out-${i}`), env));
    }
    rmSync(localOut, { recursive: true, force: true });
    rmSync(`${localOut}-run`, { recursive: true, force: true });
    console.log(
      JSON.stringify({
        bench: 's3',
        n,
        runs,
        uploadEmbeddingsS: uploadS,
        exact: { local: summarizeRuns(exact.local, n), s3: summarizeRuns(exact.s3, n), raw: exact },
        shards: { local: summarizeRuns(shards.local, 1200), s3: summarizeRuns(shards.s3, 1200), raw: shards },
      }),
    );
  } finally {
    await srv.stop();
  }
}
