/**
 * Runs every benchmark in its own child process (so peak RSS is per benchmark) and rewrites the
 * "latest run" block of bench/RESULTS.md. Usage: npm run bench [-- name ...]
 * Each benchmark prints one JSON object on its last stdout line.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';

interface BenchSpec {
  name: string;
  script: string;
  args?: string[];
}

export const BENCHES: BenchSpec[] = [
  { name: 'exact', script: 'exact.ts', args: ['1000000'] }, // issue 2
  { name: 'streaming', script: 'streaming.ts' }, // issue 3
  { name: 'fidelity', script: 'streaming-fidelity.ts', args: ['--seeds', '5'] }, // issue 3
  { name: 'download', script: 'download.ts' }, // issue 4
  { name: 'dedup', script: 'dedup.ts', args: ['--with-1m'] }, // issue 5
  { name: 'datacomp', script: 'datacomp.ts', args: ['1000000'] }, // issue 15
  { name: 'ingest', script: 'ingest.ts' }, // issue 6
  // issue 16: the CLI as whole processes vs the numpy reference, alternating, medians, stages
  { name: 'whole', script: 'whole-process.ts', args: ['--runs', '3', '--rss-10m'] },
  { name: 'real-encoder', script: 'real-encoder.ts', args: ['--rounds', '3'] }, // issue 13 (needs dist/)
];

const wanted = process.argv.slice(2);
const dir = import.meta.dirname;
const results: Record<string, unknown> = {};
for (const b of BENCHES) {
  if (wanted.length > 0 && !wanted.includes(b.name)) continue;
  process.stderr.write(`bench ${b.name} ...\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(dir, b.script), ...(b.args ?? [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    cwd: join(dir, '..'),
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    results[b.name] = JSON.parse(last);
  } catch {
    results[b.name] = { error: `exit ${r.status}`, output: r.stdout.slice(-2000) };
  }
  process.stderr.write(`${JSON.stringify(results[b.name])}\n`);
}

const path = join(dir, 'RESULTS.md');
const stamp = `${new Date().toISOString()} · ${os.cpus().length} cores · ${os.cpus()[0]?.model ?? ''} · node ${process.version}`;
const block = `<!-- latest:${Object.keys(results).join(',')} -->\n### Raw results, ${stamp}\n\n\`\`\`json\n${JSON.stringify(results, null, 1)}\n\`\`\`\n`;
const prev = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
writeFileSync(path, `${prev.trimEnd()}\n\n${block}`);
process.stderr.write(`appended to ${path}\n`);
