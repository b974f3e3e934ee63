/**
 * Download + decode + resize of small JPEGs from a loopback HTTP server (a child process, so the
 * server's CPU and memory are not counted as ours), through the real stages:
 * `download` (undici, p-limit) → `decode` (sharp, 224×224 CLIP tensor) → a counting sink.
 *
 * Runs, in one process: a concurrency-1 baseline on BASELINE images, then the main run at
 * concurrency 32 on N images, then a download-only run at concurrency 32 (what the network side
 * alone can do), then download-only with a simulated 20 ms round trip at concurrency 1 and 32
 * (on loopback there is no latency to hide, so that is where concurrency shows). Prints ONE JSON
 * object as the last stdout line.
 *
 * Usage: node --import tsx bench/download.ts [N=10000] [BASELINE=1000]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import os from 'node:os';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { UrlRef } from '../src/io/url-list.js';
import { img2datasetKey } from '../src/io/url-list.js';
import { decode } from '../src/stages/decode.js';
import { download } from '../src/stages/download.js';
import { peakRssMB } from './peak-rss.js';

const DISTINCT = 16;
const SIDE = 256;

async function serve(): Promise<void> {
  const images: Buffer[] = [];
  for (let i = 0; i < DISTINCT; i++) {
    // a gradient-ish image so JPEG sizes are realistic for "small" images (~5-10 KB)
    const raw = Buffer.alloc(SIDE * SIDE * 3);
    for (let p = 0; p < SIDE * SIDE; p++) {
      raw[p * 3] = (p * (i + 1)) % 256;
      raw[p * 3 + 1] = ((p >> 8) * 7 + i * 13) % 256;
      raw[p * 3 + 2] = (p % SIDE) ^ (i * 17);
    }
    images.push(await sharp(raw, { raw: { width: SIDE, height: SIDE, channels: 3 } }).jpeg({ quality: 85 }).toBuffer());
  }
  const server = createServer((req, res) => {
    const m = /^\/img\/(\d+)\.jpg(?:\?d=(\d+))?$/.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404);
      res.end();
      return;
    }
    const body = images[Number(m[1]) % DISTINCT];
    const send = (): void => {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
      res.end(body);
    };
    // `?d=MS`: a simulated network round trip (the server waits MS before answering)
    if (m[2] !== undefined) setTimeout(send, Number(m[2]));
    else send();
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const avg = Math.round(images.reduce((a, b) => a + b.length, 0) / images.length);
    process.send?.({ port, avgBytes: avg });
  });
}

interface RunResult {
  images: number;
  concurrency: number;
  seconds: number;
  imagesPerSec: number;
  ok: number;
  errors: number;
}

async function runOnce(port: number, n: number, concurrency: number, withDecode: boolean, latencyMs = 0): Promise<RunResult> {
  const refs: UrlRef[] = Array.from({ length: n }, (_, i) => ({
    key: img2datasetKey(Math.floor(i / 10_000), i % 10_000),
    url: `http://127.0.0.1:${port}/img/${i}.jpg${latencyMs > 0 ? `?d=${latencyMs}` : ''}`,
  }));
  let ok = 0;
  let errors = 0;
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 64,
    write(s: { error?: unknown }, _e, cb) {
      if (s.error) errors++;
      else ok++;
      cb();
    },
  });
  const t0 = performance.now();
  const dl = download({ allowPrivate: true, concurrency, connectionsPerHost: Math.min(256, concurrency), retries: 0 });
  if (withDecode) await pipeline(Readable.from(refs, { objectMode: true }), dl, decode({ size: 224, concurrency: 2 }), sink);
  else await pipeline(Readable.from(refs, { objectMode: true }), dl, sink);
  const seconds = (performance.now() - t0) / 1000;
  return { images: n, concurrency, seconds: +seconds.toFixed(2), imagesPerSec: +(n / seconds).toFixed(1), ok, errors };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 10_000);
  const baselineN = Number(process.argv[3] ?? 1000);
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['serve'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const { port, avgBytes } = await new Promise<{ port: number; avgBytes: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { port: number; avgBytes: number }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  try {
    await runOnce(port, 200, 8, true); // warm-up (sharp, undici, JIT)
    const baseline = await runOnce(port, baselineN, 1, true);
    process.stderr.write(`baseline ${JSON.stringify(baseline)}\n`);
    const main = await runOnce(port, n, 32, true);
    process.stderr.write(`main ${JSON.stringify(main)}\n`);
    const downloadOnly = await runOnce(port, n, 32, false);
    process.stderr.write(`download-only ${JSON.stringify(downloadOnly)}\n`);
    // With a simulated 20 ms round trip, concurrency is what hides latency (download only).
    const lat1 = await runOnce(port, 200, 1, false, 20);
    const lat32 = await runOnce(port, 3000, 32, false, 20);
    process.stderr.write(`latency 20 ms: c=1 ${JSON.stringify(lat1)} c=32 ${JSON.stringify(lat32)}\n`);
    const maxRssMiB = +peakRssMB().toFixed(1);
    console.log(
      JSON.stringify({
        bench: 'download',
        cores: os.cpus().length,
        imageBytes: avgBytes,
        imageSide: SIDE,
        decodeSize: 224,
        imagesPerSec: main.imagesPerSec,
        baselineImagesPerSec: baseline.imagesPerSec,
        speedup: +(main.imagesPerSec / baseline.imagesPerSec).toFixed(2),
        downloadOnlyImagesPerSec: downloadOnly.imagesPerSec,
        peakRssMiB: maxRssMiB,
        main,
        baseline,
        downloadOnly,
        latency20ms: { concurrency1ImagesPerSec: lat1.imagesPerSec, concurrency32ImagesPerSec: lat32.imagesPerSec, images: [lat1.images, lat32.images] },
        note: `baseline = concurrency 1 on ${baselineN} images; main = concurrency 32 on ${n}; download + decode 224 (sharp, decode concurrency 2); server in a child process on the same cores; latency20ms = download only, server delays each answer 20 ms`,
      }),
    );
  } finally {
    child.kill();
  }
}

if (process.argv[2] === 'serve') void serve();
else await main();
