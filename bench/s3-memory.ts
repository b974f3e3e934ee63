/**
 * Issue 17: memory of an s3:// output stays flat. A child process (the built library, dist/) streams
 * GIB GiB through `openWrite('s3://…')` to s3rver on loopback (multipart, 8 MiB parts, 2 in flight)
 * and reports its peak RSS (VmHWM). Usage: node --import tsx bench/s3-memory.ts [GiB]
 */
import { spawnSync } from 'node:child_process';
import { startS3Server } from '../test/helpers/s3.js';
const gb = Number(process.argv[2] ?? 1);
const srv = await startS3Server(['flat']);
const child = `
const { openWrite, statLocation } = await import(process.argv[1]);
const out = await openWrite('s3://flat/big.bin');
const chunk = Buffer.alloc(1 << 20, 1);
const t0 = performance.now();
for (let i = 0; i < ${gb} * 1024; i++) if (!out.stream.write(chunk)) await new Promise((r) => out.stream.once('drain', r));
await new Promise((r) => out.stream.end(r));
await out.commit();
const s = await statLocation('s3://flat/big.bin');
const hwm = /VmHWM:\\s+(\\d+) kB/.exec((await import('node:fs')).readFileSync('/proc/self/status', 'utf8'));
console.log(JSON.stringify({ bytes: s.size, seconds: (performance.now() - t0) / 1000, peakRssMB: Number(hwm[1]) / 1024 }));
`;
try {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', child, new URL('../dist/src/io/storage/index.js', import.meta.url).href], { env: { ...process.env, ...srv.env }, encoding: 'utf8' });
  process.stdout.write(r.stdout || r.stderr.slice(-2000));
} finally { await srv.stop(); }
