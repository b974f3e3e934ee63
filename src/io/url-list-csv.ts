/**
 * CSV and TSV URL lists: records (RFC 4180 CSV, quote-free TSV as img2dataset writes it) and rows
 * checked against the header.
 */
import { DbpruneError } from '../core/errors.js';
import { MAX_LINE_CHARS, textLines } from './lines.js';
import { checkColumns, formatError, type ColumnSpec, type ColumnState, type Rec } from './url-list-columns.js';

/** A delimited record and the 1-based line it starts on. */
interface DelimitedRecord {
  fields: string[];
  line: number;
}

/**
 * TSV records: img2dataset's `text/tab-separated-values` has no quoting at all (CC3M/CC12M captions
 * hold bare `"`), so every line is one record and a quote is an ordinary character. Blank lines are
 * skipped (like pandas and pyarrow).
 */
async function* tsvRecords(bytes: AsyncIterable<Buffer>, file: string): AsyncGenerator<DelimitedRecord> {
  let line = 0;
  for await (const l of textLines(bytes, { file })) {
    line++;
    if (l === '') continue;
    yield { fields: l.split('\t'), line };
  }
}

/**
 * CSV records (RFC 4180: quotes, doubled quotes, delimiters and newlines inside quotes), from text
 * chunks; blank lines are skipped (like pandas and pyarrow). Strict where a lenient reader would
 * silently swallow rows: a quoted field that never closes, or whose closing quote is followed by
 * anything but the delimiter or a line end (a stray `"` pairing with a later quote), is an
 * `ERR_DBPRUNE_INPUT_FORMAT` error naming the line where the field opened — as img2dataset's
 * pyarrow reader fails on such a file rather than shifting every later row.
 */
async function* csvRecords(bytes: AsyncIterable<Buffer>, file: string): AsyncGenerator<DelimitedRecord> {
  const dec = new TextDecoder('utf-8');
  let field = '';
  let fields: string[] = [];
  let inQuotes = false;
  let quotePending = false; // saw a quote inside a quoted field: either "" or the closing quote
  let atFieldStart = true;
  let first = true;
  let line = 1; // current line (1-based)
  let recordLine = 1; // line the current record started on
  let quoteLine = 0; // line the open quoted field started on
  const strayQuote = (what: string): DbpruneError =>
    formatError(file, `line ${quoteLine}: the quoted field opened on this line ${what}; a stray " in an unquoted field? (quote the field and double its quotes, or use TSV, which has no quoting)`, {
      line: quoteLine,
    });
  const endRecord = function* (): Generator<DelimitedRecord> {
    fields.push(field);
    field = '';
    atFieldStart = true;
    const rec = fields;
    fields = [];
    if (!(rec.length === 1 && rec[0] === '')) yield { fields: rec, line: recordLine };
  };
  const feed = function* (s: string): Generator<DelimitedRecord> {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (inQuotes) {
        if (quotePending) {
          quotePending = false;
          if (c === 34) {
            field += '"';
            continue;
          }
          if (c !== 44 && c !== 10 && c !== 13) {
            throw strayQuote(`is closed on line ${line} by a quote followed by ${JSON.stringify(s[i])}`);
          }
          inQuotes = false; // the quote closed the field; fall through to unquoted handling
        } else if (c === 34) {
          quotePending = true;
          continue;
        } else {
          if (c === 10) line++;
          field += s[i];
          continue;
        }
      }
      if (c === 34 && atFieldStart) {
        inQuotes = true;
        atFieldStart = false;
        quoteLine = line;
      } else if (c === 44) {
        fields.push(field);
        field = '';
        atFieldStart = true;
      } else if (c === 10) {
        if (field.endsWith('\r')) field = field.slice(0, -1);
        yield* endRecord();
        line++;
        recordLine = line;
      } else {
        field += s[i];
        atFieldStart = false;
      }
    }
  };
  for await (const b of bytes) {
    let s = dec.decode(b, { stream: true });
    if (first && s.length > 0) {
      if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
      first = false;
    }
    yield* feed(s);
    // The record being read is bounded like a line of a text list (checked once a chunk, so the
    // overshoot is at most one chunk): a quote that never closes cannot grow memory without end.
    let pending = field.length;
    for (const f of fields) pending += f.length;
    if (pending > MAX_LINE_CHARS) {
      throw formatError(file, `the record starting on line ${recordLine} is longer than ${MAX_LINE_CHARS} characters (a quoted field that never closes?)`, { line: recordLine });
    }
  }
  yield* feed(dec.decode());
  if (inQuotes && !quotePending) throw strayQuote('never closes (the file ends inside it)');
  quotePending = false;
  inQuotes = false;
  if (field.endsWith('\r')) field = field.slice(0, -1);
  if (field !== '' || fields.length > 0) yield* endRecord();
}

/**
 * Rows of a CSV or TSV file. Every record must have as many fields as the header (pyarrow's rule,
 * which img2dataset reads with): a record with more or fewer is an `ERR_DBPRUNE_INPUT_FORMAT` error
 * naming its line, never a row whose columns shifted.
 */
export async function* csvRows(bytes: AsyncIterable<Buffer>, delim: ',' | '\t', file: string, r: ColumnSpec, state: ColumnState): AsyncGenerator<Rec> {
  let header: string[] | undefined;
  for await (const { fields: rec, line } of delim === '\t' ? tsvRecords(bytes, file) : csvRecords(bytes, file)) {
    if (!header) {
      header = rec.map((h) => h.trim());
      state.hasCaption = checkColumns(file, header, r).hasCaption;
      continue;
    }
    if (rec.length !== header.length) {
      const hint = delim === '\t' ? '' : ' (an unquoted comma, or a stray " that swallowed a line break?)';
      throw formatError(file, `line ${line} has ${rec.length} field(s), the header has ${header.length}${hint}`, { line });
    }
    const o: Rec = {};
    for (let i = 0; i < header.length; i++) o[header[i]] = rec[i] !== '' ? rec[i] : undefined;
    yield o;
  }
  if (!header) throw formatError(file, 'is empty (no header row)');
}

