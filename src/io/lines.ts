/**
 * Splitting a byte stream into text lines in linear time, with a bound on the line length.
 *
 * Hand-written because `node:readline` has no line-length bound (a 600 MB line is held whole) and
 * the obvious `rest + chunk` + `indexOf` loop rescans the growing partial line at every chunk —
 * quadratic: a 100 MB line took 86 s. Here each character is scanned once, a partial line is kept
 * as a list of pieces joined once, and a line over the bound fails as soon as it gets there.
 */
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { integerOption } from '../core/validate.js';

/** Longest line accepted in URL lists and shard lists, in UTF-16 code units (8 Mi). */
export const MAX_LINE_CHARS = 8 * 1024 * 1024;

export interface TextLinesOptions {
  /** Named in the error (a path, or `stdin`). */
  file: string;
  /** Default {@link MAX_LINE_CHARS}. */
  maxLineChars?: number;
}

function tooLong(file: string, line: number, max: number): DbpruneError {
  return new DbpruneError(ErrorCodes.INPUT_FORMAT, `${file}: line ${line} is longer than ${max} characters (is this really a list, one entry per line?)`, {
    file,
    row: line,
  });
}

/**
 * Yields the lines of UTF-8 bytes (`\n` or `\r\n`; the last line may lack a newline; a leading
 * BOM is dropped). Throws ERR_DBPRUNE_INPUT_FORMAT (context `file`, `row` = 1-based line number)
 * once a line exceeds the bound, without buffering more of it.
 */
export async function* textLines(bytes: AsyncIterable<Buffer | string>, opts: TextLinesOptions): AsyncGenerator<string> {
  for await (const lines of textLineBatches(bytes, opts)) yield* lines;
}

/**
 * {@link textLines} a chunk at a time: the lines completed by each chunk of `bytes`, as one array
 * (never empty). For readers of many short lines (a keys.txt of a million keys): one async step per
 * chunk instead of one per line, which cost ~0.3 s and ~700 MB of garbage per million lines. A
 * line over the bound throws after the lines before it have been yielded, as with `textLines`.
 */
export async function* textLineBatches(bytes: AsyncIterable<Buffer | string>, opts: TextLinesOptions): AsyncGenerator<string[]> {
  const max = integerOption(opts.maxLineChars, 'maxLineChars', { default: MAX_LINE_CHARS, min: 1 });
  const dec = new TextDecoder('utf-8');
  let pieces: string[] = []; // the current partial line
  let pieceChars = 0;
  let lineNo = 0;
  let first = true;
  const finish = (tail: string): string => {
    let line = pieces.length === 0 ? tail : pieces.join('') + tail;
    pieces = [];
    pieceChars = 0;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    return line;
  };
  /** Appends the lines `chunk` completes to `out`; returns the error of a line over the bound. */
  const feed = (chunk: string, out: string[]): DbpruneError | undefined => {
    let s = chunk;
    if (first && s.length > 0) {
      if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
      first = false;
    }
    let start = 0;
    for (;;) {
      const nl = s.indexOf('\n', start);
      if (nl < 0) break;
      lineNo++;
      // a CR before the newline is not part of the line, so it does not count against the bound
      if (pieceChars + (nl - start) > max + 1) return tooLong(opts.file, lineNo, max);
      const line = finish(s.slice(start, nl));
      if (line.length > max) return tooLong(opts.file, lineNo, max);
      out.push(line);
      start = nl + 1;
    }
    if (start < s.length) {
      pieceChars += s.length - start;
      if (pieceChars > max + 1) return tooLong(opts.file, lineNo + 1, max);
      pieces.push(s.slice(start));
    }
    return undefined;
  };
  const step = function* (chunk: string): Generator<string[]> {
    const out: string[] = [];
    const error = feed(chunk, out);
    if (out.length > 0) yield out;
    if (error) throw error;
  };
  for await (const b of bytes) yield* step(typeof b === 'string' ? b : dec.decode(b, { stream: true }));
  yield* step(dec.decode());
  if (pieceChars > 0) {
    lineNo++;
    const line = finish('');
    if (line.length > max) throw tooLong(opts.file, lineNo, max);
    if (line.length > 0) yield [line];
  }
}
