/**
 * What `run`/`prune` leave in `--out`, through the built CLI (`node dist/src/cli/main.js`):
 * write errors fail the run (a real kernel file-size limit, `ulimit -f`, makes writes fail with
 * EFBIG as a full disk fails them with ENOSPC); a failed or interrupted run leaves the previous
 * outputs byte for byte and no temporary files; a good run replaces the whole set; exit codes and
 * ERR_DBPRUNE_* codes for usage errors, `--out` naming a file, SIGINT/SIGTERM and a closed stdout.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { writeNpy } from '../../src/io/npy.js';
import { builtMain as main, runCli, type CliResult, type RunCliOptions } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixture.js';
import { unitRows } from '../helpers/vectors.js';

const shard0 = join(repoRoot, 'data-samples', 'shards', '00000.tar');
const dir = mkdtempSync(join(tmpdir(), 'dbprune-outputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The built CLI through the shared runner, with room for the slower runs of this file (the real bundled sample). */
function dbprune(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  return runCli(args, { built: true, timeoutMs: 175_000, ...opts });
}

/**
 * Resolves once process `pid` holds `file` open (Linux: /proc/PID/fd), i.e. the CLI is past start-up
 * (its signal handlers are installed before any input is opened) and inside the work. A fixed delay
 * sent the signal before the handler existed when the machine was loaded.
 */
async function whenReading(pid: number, file: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === file) return;
        } catch {
          // closed meanwhile
        }
      }
    } catch {
      return; // gone already: the test's assertions will say so
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** File name → sha256 of every entry in `folder` (dot files included: temporary files must not be left). */
function snapshot(folder: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(folder).sort()) out[name] = createHash('sha256').update(readFileSync(join(folder, name))).digest('hex');
  return out;
}

function lastLine(stderr: string): string {
  return stderr.trim().split('\n').pop() ?? '';
}

/** Resolves once a temporary output file exists in `folder` (the run is past validation and writing). */
async function waitForTempFile(folder: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (existsSync(folder) && readdirSync(folder).some((n) => n.includes('.tmp-'))) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no temporary file appeared in ${folder}`);
}

const emb = join(dir, 'emb.npy');
const cent = join(dir, 'cent.npy');
const cent4 = join(dir, 'cent4.npy');
const keysShort = join(dir, 'keys-short.txt');
beforeAll(async () => {
  if (!existsSync(main)) throw new Error(`${main} missing: run \`npm run build\` first`);
  const rng = new Rng(11);
  await writeNpy(emb, unitRows(rng, 300, 16), [300, 16]);
  await writeNpy(cent, unitRows(rng, 6, 16), [6, 16]);
  await writeNpy(cent4, unitRows(rng, 6, 4), [6, 4]);
  writeFileSync(keysShort, Array.from({ length: 299 }, (_, i) => `k${i}`).join('\n') + '\n');
});

describe('write errors fail the run (issue 11, item 2)', () => {
  for (const format of ['jsonl', 'parquet']) {
    it(`${format}: a manifest the disk cannot hold → exit 1, ERR_DBPRUNE_OUTPUT naming manifest.${format}, nothing left in --out`, { timeout: 120_000 }, async () => {
      const out = join(dir, `full-${format}`);
      const r = await dbprune(['run', shard0, '--format', format, '--out', out, '-q'], { fileSizeKiB: 4 });
      expect(r.code, r.stderr).toBe(1);
      expect(lastLine(r.stderr)).toContain('[ERR_DBPRUNE_OUTPUT]');
      expect(lastLine(r.stderr)).toContain(join(out, `manifest.${format}`));
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(readdirSync(out)).toEqual([]);
    });
  }

  it('prune: report.html past the limit → exit 1 naming it; the previous outputs stay', { timeout: 120_000 }, async () => {
    const out = join(dir, 'prune-full');
    expect((await dbprune(['prune', '--embeddings', emb, '--centroids', cent, '--keep', '0.5', '--out', out, '-q'])).code).toBe(0);
    const before = snapshot(out);
    // manifest.parquet, kept.txt and stats.json fit in 16 KiB; report.html (~35 KB) does not
    const r = await dbprune(['prune', '--embeddings', emb, '--centroids', cent, '--keep', '0.3', '--out', out, '-q'], { fileSizeKiB: 16 });
    expect(r.code, r.stderr).toBe(1);
    expect(lastLine(r.stderr)).toMatch(/report\.html.*\[ERR_DBPRUNE_OUTPUT\]/);
    expect(snapshot(out)).toEqual(before);
  });

  it('fit: calibration.json past the limit → exit 1; centroids.npy and calibration.json stay a matching pair', { timeout: 120_000 }, async () => {
    const out = join(dir, 'fit-full');
    expect((await dbprune(['fit', '--embeddings', emb, '-k', '4', '--sample', '300', '--out', out, '-q'])).code).toBe(0);
    const before = snapshot(out);
    // new centroids.npy (< 1 KiB) fits in 16 KiB, calibration.json (~45 KB of δ histograms) does not
    const r = await dbprune(['fit', '--embeddings', emb, '-k', '6', '--sample', '300', '--out', out, '-q'], { fileSizeKiB: 16 });
    expect(r.code, r.stderr).toBe(1);
    expect(lastLine(r.stderr)).toMatch(/calibration\.json.*\[ERR_DBPRUNE_OUTPUT\]/);
    expect(snapshot(out)).toEqual(before);
  });

  it('stdout closed by its reader (| head) → ends silently with 141 (128 + SIGPIPE), no crash', { timeout: 120_000 }, async () => {
    const shards = ['00000', '00001', '00002', '00003', '00004', '00005'].map((s) => join(repoRoot, 'data-samples', 'shards', `${s}.tar`));
    let first = '';
    const r = await dbprune(['run', ...shards, '-q'], {
      onSpawn: (child) =>
        child.stdout.on('data', (d: string) => {
          first += d;
          if (first.includes('\n')) child.stdout.destroy(); // what `head -1` does: read a line, close the pipe
        }),
    });
    expect(r.stdout).toBe(first);
    expect((JSON.parse(r.stdout.split('\n')[0]) as { key: unknown }).key).toBeTypeOf('string');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(141);
  });

  it('stdout that cannot be written (/dev/full) → exit 1, ERR_DBPRUNE_OUTPUT naming stdout', { timeout: 120_000 }, async () => {
    const r = await dbprune(['run', shard0, '-q'], { stdoutFile: '/dev/full' });
    expect(r.stdout).toBe('');
    expect(r.code, r.stderr).toBe(1);
    expect(lastLine(r.stderr)).toMatch(/cannot write stdout: ENOSPC.*\[ERR_DBPRUNE_OUTPUT\]/);
  });
});

describe('a failed run keeps the previous results (issue 11, item 3)', () => {
  const out = join(dir, 'keep');
  let before: Record<string, string>;
  beforeAll(async () => {
    const r = await dbprune(['run', '--embeddings', emb, '--centroids', cent, '--keep', '0.5', '--out', out, '-q']);
    expect(r.code, r.stderr).toBe(0);
    before = snapshot(out);
    expect(Object.keys(before)).toEqual(expect.arrayContaining(['manifest.parquet', 'kept.txt', 'stats.json', 'report.html']));
  }, 120_000);

  const failures: [string, string[], string][] = [
    ['a missing shard', ['run', join(dir, 'nope.tar')], 'ERR_DBPRUNE_INPUT_NOT_FOUND'],
    ['a missing URL list', ['run', '--urls', join(dir, 'nope.parquet')], 'ERR_DBPRUNE_'],
    ['a dimension mismatch (run)', ['run', '--embeddings', emb, '--centroids', cent4], 'ERR_DBPRUNE_DIM_MISMATCH'],
    ['a dimension mismatch (prune)', ['prune', '--embeddings', emb, '--centroids', cent4, '--keep', '0.5'], 'ERR_DBPRUNE_DIM_MISMATCH'],
    ['a key-count mismatch (prune)', ['prune', '--embeddings', emb, '--keys', keysShort, '--centroids', cent, '--keep', '0.5'], 'ERR_DBPRUNE_ROW_COUNT_MISMATCH'],
    ['a key-count mismatch (run)', ['run', '--embeddings', emb, '--keys', keysShort, '--centroids', cent], 'ERR_DBPRUNE_ROW_COUNT_MISMATCH'],
  ];
  // (its code and exit status belong to the brace-range check; what matters here is that outputs stay)
  failures.push(['a brace range that is too large', ['run', join(dir, '{00000..99999999}.tar')], 'ERR_DBPRUNE_']);
  for (const [what, args, code] of failures) {
    it(`${what}: fails with its code, every file in --out byte-identical, no temporary files`, { timeout: 120_000 }, async () => {
      const r = await dbprune([...args, '--out', out, '-q']);
      expect(code === 'ERR_DBPRUNE_' ? [1, 2] : [1], r.stderr).toContain(r.code);
      expect(lastLine(r.stderr)).toContain(code);
      expect(snapshot(out)).toEqual(before);
    });
  }

  it('--write-shards: a failed run leaves the shard folder as it was; a good one replaces its shards, stale ones included', { timeout: 180_000 }, async () => {
    const shardsOut = join(dir, 'shards-out');
    const runOut = join(dir, 'shards-run');
    const good = await dbprune(['run', shard0, '--write-shards', shardsOut, '--out', runOut, '-q']);
    expect(good.code, good.stderr).toBe(0);
    writeFileSync(join(shardsOut, '00007.tar'), 'a shard of an earlier, longer run');
    const shardsBefore = snapshot(shardsOut);
    expect(Object.keys(shardsBefore)).toEqual(['00000.parquet', '00000.tar', '00000_stats.json', '00007.tar']);
    const bad = await dbprune(['run', shard0, join(dir, 'nope.tar'), '--write-shards', shardsOut, '--out', runOut, '-q']);
    expect(bad.code, bad.stderr).toBe(1);
    expect(snapshot(shardsOut)).toEqual(shardsBefore);
    const again = await dbprune(['run', shard0, '--write-shards', shardsOut, '--out', runOut, '-q']);
    expect(again.code, again.stderr).toBe(0);
    expect(readdirSync(shardsOut).sort()).toEqual(['00000.parquet', '00000.tar', '00000_stats.json']);
  });

  it('a good run replaces the set: another format and --no-report leave no stale manifest or report beside it', { timeout: 120_000 }, async () => {
    const other = join(dir, 'replace');
    expect((await dbprune(['prune', '--embeddings', emb, '--centroids', cent, '--keep', '0.5', '--out', other, '-q'])).code).toBe(0);
    const r = await dbprune(['prune', '--embeddings', emb, '--centroids', cent, '--keep', '0.5', '--format', 'jsonl', '--no-report', '--out', other, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(other).sort()).toEqual(['kept.txt', 'manifest.jsonl', 'stats.json']);
  });
});

describe('exit codes and ERR_DBPRUNE_* codes (issue 11, item 12)', () => {
  it('--balance above 1 is a usage error (exit 2) stating the valid range, for prune and run', async () => {
    for (const cmd of [
      ['prune', '--embeddings', emb, '--centroids', cent, '--keep', '0.3', '--out', join(dir, 'bal')],
      ['run', '--embeddings', emb, '--centroids', cent, '--out', join(dir, 'bal')],
    ]) {
      const r = await dbprune([...cmd, '--balance', '1.5']);
      expect(r.code, r.stderr).toBe(2);
      expect(lastLine(r.stderr)).toMatch(/--balance must be a number in 0\.\.1, got '1\.5' \[ERR_DBPRUNE_USAGE\]$/);
    }
    expect(existsSync(join(dir, 'bal'))).toBe(false);
  });

  it('--out naming a file → exit 1, ERR_DBPRUNE_OUTPUT naming it; the file is untouched', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'mine\n');
    for (const out of [file, join(file, 'sub')]) {
      const r = await dbprune(['prune', '--embeddings', emb, '--centroids', cent, '--keep', '0.3', '--out', out, '-q']);
      expect(r.code, r.stderr).toBe(1);
      expect(lastLine(r.stderr)).toMatch(new RegExp(`${out.replace(/[/.]/g, '\\$&')}.*\\[ERR_DBPRUNE_OUTPUT\\]`));
    }
    expect(readFileSync(file, 'utf8')).toBe('mine\n');
  });

  it('SIGINT during run to stdout → exit 130; the rows it says it wrote are the complete JSONL lines on stdout', { timeout: 180_000 }, async () => {
    const shards = ['00000', '00001', '00002', '00003', '00004', '00005'].map((s) => join(repoRoot, 'data-samples', 'shards', `${s}.tar`));
    let signalled = false;
    const r = await dbprune(['run', ...shards, '-q'], {
      onSpawn: (child) =>
        child.stdout.on('data', () => {
          if (!signalled) {
            signalled = true; // rows arrive batch by batch, long before the end
            child.kill('SIGINT');
          }
        }),
    });
    expect(r.code, r.stderr).toBe(130);
    const m = /stopped \(SIGINT\): (\d+) manifest rows had been written to stdout \[ERR_DBPRUNE_ABORTED\]/.exec(lastLine(r.stderr));
    expect(m, r.stderr).not.toBeNull();
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines.length).toBe(Number(m?.[1]));
    expect(lines.length).toBeLessThan(1200);
    for (const l of lines) expect((JSON.parse(l) as { key: unknown }).key).toBeTypeOf('string');
  });

  it('SIGINT during prune → exit 130, one ERR_DBPRUNE_ABORTED line, the previous outputs stay', { timeout: 180_000 }, async () => {
    const big = join(dir, 'big.npy');
    await writeNpy(big, unitRows(new Rng(3), 200_000, 128), [200_000, 128]);
    const bigCent = join(dir, 'big-cent.npy');
    await writeNpy(bigCent, unitRows(new Rng(4), 64, 128), [64, 128]);
    const out = join(dir, 'sig-prune');
    expect((await dbprune(['prune', '--embeddings', emb, '--centroids', cent, '--keep', '0.5', '--out', out, '-q'])).code).toBe(0);
    const before = snapshot(out);
    const r = await dbprune(['prune', '--embeddings', big, '--centroids', bigCent, '--keep', '0.5', '--out', out, '-q'], {
      onSpawn: (child) => void whenReading(child.pid as number, big).then(() => child.kill('SIGINT')),
    });
    expect(r.code, r.stderr).toBe(130);
    expect(lastLine(r.stderr)).toMatch(/stopped \(SIGINT\).*(nothing written|before any output was written).*\[ERR_DBPRUNE_ABORTED\]/);
    expect(snapshot(out)).toEqual(before);
  });

  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${sig} during run → exit ${code}, says nothing was written, the previous outputs stay, no temporary files`, { timeout: 180_000 }, async () => {
      const out = join(dir, `sig-${sig}`);
      expect((await dbprune(['run', shard0, '--out', out, '-q'])).code).toBe(0);
      const before = snapshot(out);
      const r = await dbprune(['run', '--out', out, '-q'], {
        onSpawn: (child) => void waitForTempFile(out).then(() => child.kill(sig)),
      });
      expect(r.code, r.stderr).toBe(code);
      expect(lastLine(r.stderr)).toMatch(new RegExp(`stopped \\(${sig}\\): nothing written; .* keeps its previous files \\[ERR_DBPRUNE_ABORTED\\]`));
      expect(snapshot(out)).toEqual(before);
    });
  }
});
