/**
 * `basicFilter()`: DataComp's basic filter as a stage over {@link EmbeddingBatch}es that carry
 * `fields.text`, `fields.original_width`, `fields.original_height`: English caption, more than 2
 * words and more than 5 characters, `min(width, height) ≥ 200`, aspect ratio ≤ 3. A failing row is
 * marked `filter:basic` (message says which condition) and flows on, so it reaches the manifest and
 * is skipped by assign, dedup and decide: nothing disappears.
 *
 * Language: the reference uses fasttext's lid.176 (`predict(text.replace("\n", " "))`, label `en`).
 * No fasttext runs in Node, so this uses **eld** (Nito-ELD, Apache-2.0, pure JavaScript, n-gram
 * model; its `medium` database, ~2 MB): on short or ambiguous captions a few decisions differ from
 * lid.176 (e.g. "red shoes" is not called English by eld). `language: false` (CLI
 * `--basic-filter-no-language`) applies the other three conditions only.
 */
import { Transform } from 'node:stream';
import { basicFilterFailure, type BasicFilterFailure } from '../core/datacomp-filters.js';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { booleanOption, optionalOption, signalOption } from '../core/validate.js';
import { BATCH_HIGH_WATER_MARK, type BatchFields, type EmbeddingBatch, type RowError } from '../core/sample.js';

/** Detects the language of a text: an ISO 639-1 code (`en`), or '' when unknown. */
export type LanguageDetector = (text: string) => string;

/** eld's detector (medium database), loaded on first use. */
export async function loadLanguageDetector(): Promise<LanguageDetector> {
  const { eld } = await import('eld/medium');
  return (text: string) => eld.detect(text.replace(/\n/g, ' ')).language;
}

/** Options of {@link basicFilter}: test the caption's language (default true) and the language identifier (default eld). */
export interface BasicFilterOptions {
  /** Test that the caption is English. Default true. */
  language?: boolean;
  /** The language identifier; default eld (see {@link loadLanguageDetector}). */
  detect?: LanguageDetector;
  signal?: AbortSignal;
}

const MESSAGES: Record<BasicFilterFailure | 'language', string> = {
  caption: 'caption has ≤ 2 words or ≤ 5 characters',
  size: 'min(original_width, original_height) < 200',
  aspect: 'aspect ratio > 3',
  language: 'caption is not English',
};

/** Counts of rows dropped per condition (the first failing one, in the reference's order). */
export type BasicFilterCounts = Record<BasicFilterFailure | 'language', number>;

/**
 * Marks the rows of one batch that fail; already-failed rows are left alone. Used by the stage and by
 * exact mode's filter pass. Returns the number of rows newly marked.
 * @throws ERR_DBPRUNE_INPUT_FORMAT when the batch lacks the needed fields.
 */
export function markBasicFilter(
  fields: BatchFields | undefined,
  n: number,
  errors: (RowError | undefined)[],
  detect: LanguageDetector | undefined,
  counts: BasicFilterCounts,
): number {
  const text = fields?.text;
  const width = fields?.original_width;
  const height = fields?.original_height;
  if (!text || !width || !height) {
    throw new DbpruneError(ErrorCodes.INPUT_FORMAT, 'the basic filter needs text, original_width and original_height columns (DataComp metadata)');
  }
  let marked = 0;
  for (let i = 0; i < n; i++) {
    if (errors[i]) continue;
    const t = text[i];
    let why: BasicFilterFailure | 'language' | undefined;
    if (detect && (t === null || detect(t) !== 'en')) why = 'language';
    else why = basicFilterFailure(t, width[i], height[i]);
    if (why) {
      errors[i] = { reason: 'filter:basic', message: MESSAGES[why] };
      counts[why]++;
      marked++;
    }
  }
  return marked;
}

export type BasicFilterStream = Transform & { readonly dropped: number; readonly counts: BasicFilterCounts };

export function emptyBasicCounts(): BasicFilterCounts {
  return { language: 0, caption: 0, size: 0, aspect: 0 };
}

/**
 * DataComp's basic filter as a stage over EmbeddingBatches carrying `fields`: English caption, > 2 words, > 5 characters, min side ≥ 200, aspect ≤ 3.
 * A failing row is marked `filter:basic` and flows on (nothing disappears).
 */
export function basicFilter(opts: BasicFilterOptions = {}): BasicFilterStream {
  const language = booleanOption(opts.language, 'language', true);
  let detect = optionalOption<LanguageDetector>(opts.detect, 'detect', 'a function (text) => language code', (v) => typeof v === 'function');
  const signal = signalOption(opts.signal);
  const counts = emptyBasicCounts();
  let dropped = 0;
  const stream = new Transform({
    objectMode: true,
    highWaterMark: BATCH_HIGH_WATER_MARK,
    transform(batch: EmbeddingBatch, _enc, cb) {
      const run = async (): Promise<EmbeddingBatch> => {
        throwIfAborted(signal);
        if (language && !detect) detect = await loadLanguageDetector();
        const n = batch.rows.length;
        const errors = batch.errors ?? new Array<RowError | undefined>(n).fill(undefined);
        const marked = markBasicFilter(batch.fields, n, errors, language ? detect : undefined, counts);
        dropped += marked;
        if (marked > 0) batch.errors = errors;
        return batch;
      };
      run().then((b) => cb(null, b), cb);
    },
  });
  Object.defineProperties(stream, { dropped: { get: () => dropped }, counts: { get: () => ({ ...counts }) } });
  return stream as BasicFilterStream;
}
