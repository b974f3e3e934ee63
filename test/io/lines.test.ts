/** Issue #11 item 8: line splitting in linear time, with a bound on the line length. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { MAX_LINE_CHARS, textLineBatches, textLines } from '../../src/io/lines.js';
import { urlListBatches } from '../../src/io/url-list.js';
import { shardSource } from '../../src/stages/shard-source.js';
import { rejectionOf } from '../helpers/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'dbprune-lines-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function lines(chunks: (string | Buffer)[], max?: number): Promise<string[]> {
  const out: string[] = [];
  for await (const l of textLines(Readable.from(chunks), { file: 'x', maxLineChars: max })) out.push(l);
  return out;
}

describe('textLines', () => {
  it('splits on \\n and \\r\\n across chunk boundaries, drops a BOM, keeps a last line without newline', async () => {
    expect(await lines(['\ufeffa\r', '\nb', 'c\n\nd'])).toEqual(['a', 'bc', '', 'd']);
    const euro = Buffer.from('€\n', 'utf8'); // a multi-byte character split between chunks
    expect(await lines([euro.subarray(0, 1), euro.subarray(1), 'z'])).toEqual(['€', 'z']);
    expect(await lines(['abc\r\n', 'abcd\n'], 4)).toEqual(['abc', 'abcd']);
  });

  it('textLineBatches gives the same lines a chunk at a time, and the lines before a line over the bound', async () => {
    const batches: string[][] = [];
    for await (const b of textLineBatches(Readable.from(['\ufeffa\r', '\nb', 'c\n\nd\ne']), { file: 'x' })) batches.push(b);
    expect(batches).toEqual([['a'], ['bc', '', 'd'], ['e']]);
    const before: string[] = [];
    const err = await rejectionOf(
      (async () => {
        for await (const b of textLineBatches(Readable.from(['ok\nfine\n' + 'x'.repeat(9) + '\nlater\n']), { file: 'y', maxLineChars: 5 })) before.push(...b);
      })(),
    );
    expect(before).toEqual(['ok', 'fine']);
    expect(err).toMatchObject({ code: ErrorCodes.INPUT_FORMAT, context: { file: 'y', row: 3 } });
  });

  it('validates maxLineChars', async () => {
    const err = await rejectionOf(lines(['a\n'], 0));
    expect(err).toMatchObject({ code: ErrorCodes.INVALID_OPTION, context: { option: 'maxLineChars' } });
    expect(err.message).toContain('an integer ≥ 1, got 0');
  });

  it('fails on a line over the bound, naming the file and the line, without buffering it', async () => {
    await expect(lines(['ok\n', 'x'.repeat(3), 'x'.repeat(3), '\n'], 5)).rejects.toMatchObject({ code: ErrorCodes.INPUT_FORMAT, context: { file: 'x', row: 2 } });
  });

  it('a .txt.gz URL list that inflates to one huge line fails fast with ERR_DBPRUNE_INPUT_FORMAT', { timeout: 20_000 }, async () => {
    const file = join(dir, 'bomb.txt.gz');
    writeFileSync(file, gzipSync(Buffer.concat([Buffer.from('http://a.example/1.jpg\n'), Buffer.alloc(MAX_LINE_CHARS + 1024 * 1024, 0x61)])));
    const t0 = performance.now();
    const run = async (): Promise<void> => {
      for await (const b of urlListBatches({ input: file, format: 'txt' })) void b;
    };
    const err = await rejectionOf(run());
    expect(err).toMatchObject({ code: ErrorCodes.INPUT_FORMAT, context: { row: 2 } });
    expect(err.context.file).toContain('bomb.txt.gz');
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('a .csv.gz whose quoted field never closes fails on the record bound, naming where it started', { timeout: 20_000 }, async () => {
    const file = join(dir, 'bomb.csv.gz');
    writeFileSync(file, gzipSync(Buffer.concat([Buffer.from('url,caption\nhttp://a.example/1.jpg,"open\n'), Buffer.alloc(MAX_LINE_CHARS + 1024 * 1024, 0x61)])));
    const run = async (): Promise<void> => {
      for await (const b of urlListBatches({ input: file, format: 'csv' })) void b;
    };
    const err = await rejectionOf(run());
    expect(err).toMatchObject({ code: ErrorCodes.INPUT_FORMAT, context: { line: 2 } });
    expect(err.message).toContain('longer than');
  });

  it('splits a long (but allowed) line in linear time', { timeout: 20_000 }, async () => {
    // 6 Mi characters in 16 KiB chunks: the old rest+indexOf loop rescanned the partial line per chunk
    const piece = 'y'.repeat(16 * 1024);
    const chunks = Array.from({ length: 384 }, () => piece);
    const t0 = performance.now();
    const out = await lines(['head\n', ...chunks, '\ntail']);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(out.map((l) => l.length)).toEqual([4, 384 * 16 * 1024, 4]);
  });

  it('the shard list on stdin gets the same bound', async () => {
    const src = shardSource({ inputs: Readable.from([`${'z'.repeat(MAX_LINE_CHARS + 1)}\n`]) });
    const run = async (): Promise<void> => {
      for await (const r of src) void r;
    };
    await expect(run()).rejects.toMatchObject({ code: ErrorCodes.INPUT_FORMAT });
  });
});
