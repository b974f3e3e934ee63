/**
 * Reading webdataset / img2dataset tar shards: members are grouped by key into {@link ImageSample}s.
 *
 * Member naming follows webdataset: the key is the member path up to the first dot of its basename,
 * the extension is the rest, lower-cased (`000010012.jpg` → key `000010012`, ext `jpg`). Known
 * extensions: the image formats sharp decodes in this build ({@link IMAGE_EXTENSIONS}: JPEG, PNG,
 * WebP, GIF, TIFF, SVG, AVIF), `txt` (caption), `json` (sidecar). Every other `KEY.ext` member
 * (`.cls`, `.bmp`, `.heic`, …) still makes its key a sample, so a key whose only members cannot be
 * decoded gets an `error:missing-image` row instead of vanishing; members without a `KEY.ext` name
 * (directories, dot-files, `README`) are skipped, as webdataset skips them. Members of one key are
 * adjacent in img2dataset tars, so a key is flushed as soon as the next key starts: memory holds
 * one sample at a time. A shard that holds no sample at all (0 bytes, or no `KEY.ext` member) is an
 * `ERR_DBPRUNE_UNTAR` error, so it becomes a `<shard>:shard` row rather than no row.
 */
import { inspect } from 'node:util';
import { extract as tarExtract, type Extract } from 'tar-stream';
import { DbpruneError, ErrorCodes, isDbpruneError } from '../core/errors.js';
import { integerOption } from '../core/validate.js';
import type { ImageSample, RowError } from '../core/sample.js';

/**
 * Image member extensions recognised, lower-case, without dot: the input suffixes of every format
 * sharp's prebuilt libvips decodes from a buffer (`sharp.format[f].input.fileSuffix`: jpeg, png,
 * webp, tiff, gif, svg, heif = AVIF only). Checked against sharp in test/io/tar.test.ts.
 */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['jpg', 'jpeg', 'jpe', 'jfif', 'png', 'webp', 'gif', 'tif', 'tiff', 'svg', 'svgz', 'avif']);

/** A non-fatal problem met while reading a shard (bad JSON sidecar, second image for a key). */
export interface TarWarning {
  shard?: string;
  key: string;
  member: string;
  message: string;
}

/** Options of {@link readTarSamples}: shard name for context, largest member read (default 256 MiB; 1..2^31; bigger → `error:untar`), a warning callback. */
export interface TarSamplesOptions {
  /** Shard name or URL, copied into every sample's `shard` and into error context. */
  shard?: string;
  /** Largest member read into memory, bytes. Default 256 MiB, 1..2^31. A bigger member is skipped
   *  and its sample gets `error:untar`. */
  maxMemberBytes?: number;
  /** Called for non-fatal problems; the sample is kept. */
  onWarning?: (w: TarWarning) => void;
  signal?: AbortSignal;
}

/** Default for {@link TarSamplesOptions.maxMemberBytes}. */
export const DEFAULT_MAX_MEMBER_BYTES = 256 * 1024 * 1024;

/** Splits a member path into webdataset key and extension; `undefined` for names without either. */
export function splitMemberName(name: string): { key: string; ext: string } | undefined {
  const slash = name.lastIndexOf('/');
  const dir = name.slice(0, slash + 1);
  const base = name.slice(slash + 1);
  const dot = base.indexOf('.');
  if (dot <= 0 || dot === base.length - 1) return undefined;
  const key = (dir.startsWith('./') ? dir.slice(2) : dir) + base.slice(0, dot);
  return { key, ext: base.slice(dot + 1).toLowerCase() };
}

interface Group {
  key: string;
  image?: Buffer;
  imageExt?: string;
  caption?: string;
  json?: Record<string, unknown>;
  error?: RowError;
  /** Members of this key that are not an image, caption or sidecar (for the missing-image message). */
  others?: string[];
}

function toSample(g: Group, shard: string | undefined): ImageSample {
  const s: ImageSample = { key: g.key };
  if (shard !== undefined) s.shard = shard;
  const json = g.json;
  if (json && typeof json.url === 'string') s.url = json.url;
  if (g.caption !== undefined) s.caption = g.caption;
  else if (json && typeof json.caption === 'string') s.caption = json.caption;
  if (json && typeof json.uid === 'string') s.uid = json.uid;
  if (json) s.json = json;
  if (g.error) {
    s.error = g.error;
  } else if (g.image) {
    s.image = g.image;
    s.imageExt = g.imageExt;
  } else {
    const others = g.others && g.others.length > 0 ? ` (other members: ${g.others.slice(0, 5).join(', ')}${g.others.length > 5 ? ', …' : ''})` : '';
    s.error = {
      reason: 'error:missing-image',
      message: `no decodable image member (.${[...IMAGE_EXTENSIONS].join('/.')}) for key ${g.key}${shard ? ` in shard ${shard}` : ''}${others}`,
      code: ErrorCodes.UNTAR,
    };
  }
  return s;
}

async function readMember(entry: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of entry) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

async function drain(entry: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of entry) {
    // discard
  }
}

/**
 * Feeds the tar parser from the byte source with backpressure. On a source failure it ends (not
 * destroys) the parser, so every complete member already received is still parsed; the failure is
 * kept in `error`, reported by the reader after that.
 */
class TarFeed {
  /** The source's failure, if it failed. */
  error: unknown;
  /** Bytes taken from the source. */
  bytes = 0;
  /** Set by the reader when it stops early: the feed stops and returns the source's iterator. */
  stopped = false;
  readonly done: Promise<void>;

  constructor(source: AsyncIterable<Uint8Array>, extract: Extract) {
    this.done = this.run(source, extract);
  }

  private async run(source: AsyncIterable<Uint8Array>, extract: Extract): Promise<void> {
    const it = source[Symbol.asyncIterator]();
    try {
      while (!this.stopped && !extract.destroying) {
        const r = await it.next();
        if (r.done) break;
        this.bytes += r.value.byteLength;
        if (!extract.write(r.value) && !extract.destroying) await drained(extract);
      }
    } catch (e) {
      this.error = e ?? new Error('source failed');
    } finally {
      if (this.stopped) await it.return?.(undefined).catch(() => undefined);
      extract.end(undefined);
    }
  }
}

/** Resolves when the parser wants more bytes, or has closed. */
function drained(extract: Extract): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      extract.off('drain', done);
      extract.off('close', done);
      resolve();
    };
    extract.on('drain', done);
    extract.on('close', done);
  });
}

/** Puts a member's body into its key's group: the (first) image, the caption, or the JSON sidecar. */
function storeMember(group: Group, kind: 'image' | 'txt' | 'json', member: { name: string; ext: string }, body: Buffer, opts: TarSamplesOptions): void {
  const { shard, onWarning } = opts;
  const warn = (message: string): void => onWarning?.({ shard, key: group.key, member: member.name, message });
  if (kind === 'image') {
    if (group.image) warn(`second image member ${member.name} ignored`);
    else {
      group.image = body;
      group.imageExt = member.ext;
    }
  } else if (kind === 'txt') {
    group.caption = body.toString('utf8');
  } else {
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) group.json = parsed as Record<string, unknown>;
      else warn(`sidecar ${member.name} is not a JSON object; ignored`);
    } catch (e) {
      warn(`sidecar ${member.name} is not valid JSON (${(e as Error).message}); ignored`);
    }
  }
}

/** The text of a failure: its `message` when it has one. */
function messageOf(e: unknown): string {
  if (typeof e === 'object' && e !== null && 'message' in e && typeof e.message === 'string') return e.message;
  return typeof e === 'string' ? e : inspect(e);
}

/**
 * Reads tar bytes and yields one {@link ImageSample} per key, in tar order.
 *
 * Consumes: an async iterable of tar bytes (a file stream, an HTTP body, a generator).
 * Emits: samples with `image`/`imageExt`, `caption` (from `KEY.txt`, else the sidecar's `caption`),
 * `json` (the parsed sidecar; `url` and `uid` copied from it). A key without an image member gets
 * `error:missing-image`; a member over `maxMemberBytes` gets `error:untar`. A sidecar that is not
 * valid JSON is ignored (the sample is kept) and reported through `onWarning`.
 *
 * Throws, after yielding every sample completed before the failure:
 * - `ERR_DBPRUNE_DOWNLOAD` (or the source's own {@link DbpruneError}) when the byte source fails;
 * - `ERR_DBPRUNE_UNTAR` when the bytes are not a valid tar (bad header, truncated archive);
 * - `ERR_DBPRUNE_ABORTED` when `signal` fires.
 * A sample whose image member was cut off by the failure is not yielded: the caller reports the shard.
 */
export async function* readTarSamples(
  source: AsyncIterable<Uint8Array>,
  opts: TarSamplesOptions = {},
): AsyncGenerator<ImageSample> {
  const { shard, signal } = opts;
  const maxMemberBytes = integerOption(opts.maxMemberBytes, 'maxMemberBytes', { default: DEFAULT_MAX_MEMBER_BYTES, min: 1 });
  const extract = tarExtract();
  let samples = 0;
  let members = 0;

  const feed = new TarFeed(source, extract);

  const abortError = (): DbpruneError =>
    new DbpruneError(ErrorCodes.ABORTED, 'aborted', shard ? { shard } : {}, { cause: signal?.reason });

  let group: Group | undefined;
  try {
    try {
      for await (const entry of extract) {
        if (signal?.aborted) throw abortError();
        const h = entry.header;
        members++;
        const parts = h.type === 'file' || h.type === 'contiguous-file' ? splitMemberName(h.name) : undefined;
        if (!parts) {
          await drain(entry);
          continue;
        }
        const ext = parts.ext;
        const kind = IMAGE_EXTENSIONS.has(ext) ? 'image' : ext === 'txt' ? 'txt' : ext === 'json' ? 'json' : undefined;
        if (group && group.key !== parts.key) {
          const done = group;
          group = undefined;
          samples++;
          yield toSample(done, shard);
        }
        group ??= { key: parts.key };
        if (!kind) {
          (group.others ??= []).push(h.name);
          await drain(entry);
          continue;
        }
        const size = h.size ?? 0;
        if (size > maxMemberBytes) {
          await drain(entry);
          group.error ??= {
            reason: 'error:untar',
            message: `member ${h.name} is ${size} bytes, above maxMemberBytes ${maxMemberBytes}${shard ? ` (shard ${shard})` : ''}`,
            code: ErrorCodes.UNTAR,
          };
          continue;
        }
        storeMember(group, kind, { name: h.name, ext }, await readMember(entry), opts);
      }
    } catch (e) {
      if (isDbpruneError(e) && e.code === ErrorCodes.ABORTED) throw e;
      // No wait for `feed` here: a source failure is recorded before the parser is ended, so
      // `feed.error` is already set when the parser fails because of it.
      // A group whose image arrived whole is a sample that was read; anything else is lost with the shard.
      if (group?.image || group?.error) {
        const done = group;
        group = undefined;
        samples++;
        yield toSample(done, shard);
      }
      throw classify(e, feed.error, shard);
    }
    await feed.done;
    if (feed.error !== undefined) {
      if (group?.image || group?.error) {
        const done = group;
        group = undefined;
        yield toSample(done, shard);
      }
      throw classify(feed.error, feed.error, shard);
    }
    if (signal?.aborted) throw abortError();
    if (group) {
      const done = group;
      group = undefined;
      samples++;
      yield toSample(done, shard);
    }
    if (samples === 0) {
      const what = feed.bytes === 0 ? 'is empty (0 bytes)' : `holds no sample (${members} member(s), none named KEY.ext)`;
      throw new DbpruneError(ErrorCodes.UNTAR, `${shard ?? 'tar stream'} ${what}`, shard ? { shard } : {});
    }
  } finally {
    feed.stopped = true;
    extract.destroy();
    // Not awaited: a stalled source is cancelled by the caller's signal, not by waiting here.
    feed.done.catch(() => undefined);
  }
}

function classify(e: unknown, sourceError: unknown, shard: string | undefined): DbpruneError {
  const ctx = shard ? { shard } : {};
  if (sourceError !== undefined) {
    if (isDbpruneError(sourceError)) return sourceError;
    return new DbpruneError(
      ErrorCodes.DOWNLOAD,
      `reading ${shard ?? 'tar stream'} failed: ${messageOf(sourceError)}`,
      ctx,
      { cause: sourceError },
    );
  }
  if (isDbpruneError(e)) return e;
  return new DbpruneError(
    ErrorCodes.UNTAR,
    `${shard ?? 'tar stream'} is not a valid tar: ${messageOf(e)}`,
    ctx,
    { cause: e },
  );
}

/**
 * The one row that stands for a shard that failed as a whole or part-way: key `<basename>:shard`
 * (e.g. `00003.tar:shard`), reason `error:untar` for `ERR_DBPRUNE_UNTAR`, `error:download` for
 * anything else, message naming the shard and the cause. The samples read before the failure have
 * already been emitted as ordinary rows; this row accounts for the rest of the shard.
 */
export function shardErrorSample(shard: string, err: unknown): ImageSample {
  const code = isDbpruneError(err) ? err.code : ErrorCodes.DOWNLOAD;
  const reason = code === ErrorCodes.UNTAR ? 'error:untar' : code === ErrorCodes.SSRF ? 'error:ssrf' : 'error:download';
  const raw = (err as Error)?.message ?? String(err);
  const message = raw.includes(shard) ? raw : `shard ${shard}: ${raw}`;
  const s: ImageSample = { key: `${shardBasename(shard)}:shard`, shard, error: { reason, message, code } };
  if (/^https?:\/\//i.test(shard)) s.url = shard;
  return s;
}

/** Last path segment of a shard path or URL, without query string. */
export function shardBasename(shard: string): string {
  let p = shard;
  if (/^https?:\/\//i.test(p)) {
    try {
      p = new URL(p).pathname;
    } catch {
      // keep as is
    }
  }
  p = p.replace(/[/\\]+$/, '');
  const i = Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\'));
  return i >= 0 ? p.slice(i + 1) : p;
}
