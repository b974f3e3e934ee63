/**
 * One name per meaning across the commands (issue #12): the real commander program, registered
 * in-process (no pipeline runs: a flag parser throws before any action), checked for the flags the
 * commands share — same help text, same default, same refusal with the same range.
 */
import { Command, type Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerCommands } from '../../src/cli/commands.js';

function program(): Command {
  const p = new Command('dbprune').exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  registerCommands(p, { signal: new AbortController().signal });
  return p;
}

function option(cmd: string, flag: string): Option | undefined {
  return program()
    .commands.find((c) => c.name() === cmd)
    ?.options.find((o) => o.long === flag);
}

/** The error a flag value raises while parsing `dbprune <cmd> <flag> <value>` (before any action runs). */
async function parseError(cmd: string, flag: string, value: string): Promise<{ code?: unknown; message?: unknown }> {
  try {
    await program().parseAsync([cmd, flag, value, '--out', '/nonexistent/never-written'], { from: 'user' });
  } catch (e) {
    return e as { code?: unknown; message?: unknown };
  }
  throw new Error(`${cmd} ${flag} ${value} parsed`);
}

describe('flags shared by run, embed and fit', () => {
  const commands = ['run', 'embed', 'fit'];
  for (const [flag, bad, message] of [
    ['--concurrency', '65', "--concurrency must be an integer in 1..64, got '65'"],
    ['--download-concurrency', '0', "--download-concurrency must be an integer in 1..1024, got '0'"],
  ] as const) {
    it(`${flag}: one help text, one default, one range on every command`, async () => {
      const found = commands.map((c) => option(c, flag));
      expect(found.every((o) => o !== undefined)).toBe(true);
      expect(new Set(found.map((o) => o?.description)).size).toBe(1);
      expect(new Set(found.map((o) => o?.defaultValue as unknown)).size).toBe(1);
      for (const c of commands) await expect(parseError(c, flag, bad)).resolves.toMatchObject({ code: 'ERR_DBPRUNE_USAGE', message });
    });
  }

  it('the encoder flags are one definition on every command', async () => {
    for (const flag of ['--image-size', '--resize-mode', '--mean', '--std', '--input-name', '--output-name', '--batch-size']) {
      const found = commands.map((c) => option(c, flag));
      expect(found.every((o) => o !== undefined), flag).toBe(true);
      expect(new Set(found.map((o) => `${o?.description} ${String(o?.defaultValue)}`)).size, flag).toBe(1);
    }
    for (const c of commands) await expect(parseError(c, '--image-size', '9000')).resolves.toMatchObject({ message: "--image-size must be an integer in 1..8192, got '9000'" });
  });

  it('ingest takes --download-concurrency with the same help text, default and range', async () => {
    const ours = option('run', '--download-concurrency');
    expect(option('ingest', '--download-concurrency')).toMatchObject({ description: ours?.description, defaultValue: ours?.defaultValue as unknown });
    await expect(parseError('ingest', '--download-concurrency', '0')).resolves.toMatchObject({ code: 'ERR_DBPRUNE_USAGE', message: "--download-concurrency must be an integer in 1..1024, got '0'" });
  });

  it('--concurrency means shards fetched at once and --download-concurrency image downloads', () => {
    expect(option('run', '--concurrency')).toMatchObject({ description: 'shards fetched at once', defaultValue: 2 });
    expect(option('run', '--download-concurrency')).toMatchObject({ description: 'image downloads in flight (URL lists)', defaultValue: 32 });
  });

  it('choice flags list exactly the values they accept', async () => {
    expect(option('run', '--format')?.description).toBe('manifest format: parquet | arrow | jsonl');
    expect(option('run', '--assign')?.description).toBe('nearest centroid: auto | exact | hnsw');
    expect(option('prune', '--backend')?.description).toBe('nearest-centroid backend: auto | ort | js');
    await expect(parseError('run', '--assign', 'ivf')).resolves.toMatchObject({ code: 'ERR_DBPRUNE_USAGE', message: "--assign must be one of auto, exact, hnsw, got 'ivf'" });
  });
});
