/**
 * `shardSource`: the first stage of the image pipeline. Turns shard patterns into shard descriptors.
 */
import { readdir, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { stringListOption } from '../core/validate.js';
import { expandInputs, isUrl, naturalCompare } from '../io/glob.js';
import { textLines } from '../io/lines.js';
import { isS3Uri, joinLocation, listLocation, statLocation } from '../io/storage/index.js';

/** One shard to read: a local path or an http(s) URL of a webdataset tar. */
export interface ShardRef {
  shard: string;
}

/** Options of {@link shardSource}: shard patterns (brace ranges, globs, URLs, folders, s3://) or a stream of them one per line (required), and a signal. */
export interface ShardSourceOptions {
  /**
   * Shard patterns: a string or list of strings (brace ranges `{00000..00003}`, `{a,b}`, globs,
   * http(s) URLs, directories), or a readable stream of such patterns, one per line (stdin); blank
   * lines and lines starting with `#` are skipped. Required.
   */
  inputs: string | readonly string[] | NodeJS.ReadableStream;
  signal?: AbortSignal;
}

/**
 * Emits one `{ shard }` per shard, in the order given: brace ranges and globs expanded (see
 * `expandInputs`; globs sorted naturally), URLs passed through, a directory replaced by the `*.tar`
 * files directly inside it (sorted naturally). Duplicates are not removed across stdin lines.
 *
 * Consumes nothing (a Readable). Emits {@link ShardRef} objects.
 *
 * Errors (the stream is destroyed with them): `ERR_DBPRUNE_INPUT_NOT_FOUND` when a pattern matches
 * nothing, a local path does not exist or a directory holds no `.tar`; `ERR_DBPRUNE_INVALID_OPTION`
 * for bad `inputs` (thrown at construction for a string/list); `ERR_DBPRUNE_ABORTED` on `signal`.
 */
export function shardSource(opts: ShardSourceOptions): Readable {
  const { inputs, signal } = opts;
  const isStream = typeof inputs === 'object' && inputs !== null && typeof (inputs as NodeJS.ReadableStream).on === 'function' && !Array.isArray(inputs);
  if (!isStream) {
    stringListOption(inputs, 'inputs', { trimmed: true, item: 'path/URL pattern', orElse: 'a readable stream of lines' });
  }

  async function* patterns(): AsyncGenerator<string> {
    if (!isStream) {
      const list = typeof inputs === 'string' ? [inputs] : (inputs as readonly string[]);
      for (const p of list) yield p.trim();
      return;
    }
    // linear-time splitting with a line-length bound (a stray binary stream fails with a clear error)
    for await (const line of textLines(inputs as AsyncIterable<Buffer | string>, { file: 'the shard list on stdin' })) {
      const t = line.trim();
      if (t.length === 0 || t.startsWith('#')) continue;
      yield t;
    }
  }

  async function* gen(): AsyncGenerator<ShardRef> {
    for await (const pattern of patterns()) {
      throwIfAborted(signal);
      for (const p of await expandInputs(pattern)) {
        throwIfAborted(signal);
        // An s3:// name ending in .tar is taken as a shard without a HEAD request per shard.
        if (!isUrl(p) && !(isS3Uri(p) && /\.tar$/i.test(p)) && (await isDirectory(p))) {
          const tars = (await tarNamesIn(p, signal)).sort(naturalCompare);
          if (tars.length === 0) {
            throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `directory ${p} holds no .tar shard`, { file: p });
          }
          for (const name of tars) yield { shard: joinLocation(p, name) };
        } else {
          yield { shard: p };
        }
      }
    }
  }

  return Readable.from(gen(), { objectMode: true });
}

async function isDirectory(p: string): Promise<boolean> {
  if (isS3Uri(p)) return (await statLocation(p))?.kind === 'directory';
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Names of the `.tar` files directly inside a directory or S3 prefix. */
async function tarNamesIn(dir: string, signal: AbortSignal | undefined): Promise<string[]> {
  const isTar = (name: string): boolean => name.toLowerCase().endsWith('.tar');
  if (!isS3Uri(dir)) {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && isTar(e.name)).map((e) => e.name);
  }
  const prefix = `${dir.replace(/\/+$/, '')}/`;
  const names: string[] = [];
  for await (const e of listLocation(prefix, signal)) {
    const name = e.location.slice(prefix.length);
    if (!name.includes('/') && isTar(name)) names.push(name);
  }
  return names;
}
