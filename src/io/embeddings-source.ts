/**
 * Precomputed embeddings as one stream of {@link EmbeddingBatch}es:
 * - the clip-retrieval layout: a folder holding `img_emb/img_emb_N.npy` and
 *   `metadata/metadata_N.parquet`, paired by N;
 * - the simple layout: one or more `.npy` files (paths, globs, brace ranges), optionally a
 *   `keys.txt` spanning all of them in order, or Parquet metadata files paired by number.
 * Every pair's row counts and every file's dimension are checked before the first batch.
 */
import { basename } from 'node:path';
import { DbpruneError, ErrorCodes, UsageError, throwIfAborted } from '../core/errors.js';
import { integerOption, stringListOption } from '../core/validate.js';
import { planDataCompSource } from './datacomp-source.js';
import { NpzFile } from './npz.js';
import type { EmbeddingBatch, SampleRef } from '../core/sample.js';
import { expandInputs, naturalCompare } from './glob.js';
import { BatchTaker, countKeys, READ_BATCH_ROWS, readKeyBatches } from './keys.js';
import { indexKey, openMetadata, readMetadataBatches, type MetadataFile } from './metadata.js';
import { readNpyHeader, readNpyRows, type Float32ArrayPool, type NpyHeader } from './npy.js';
import { joinLocation as join, statLocation } from './storage/index.js';

/** Options of {@link embeddingBatches}: `.npy` files / globs / clip-retrieval folder, keys or metadata aligned with them, batch rows and a signal. */
export interface EmbeddingSourceOptions {
  /**
   * `.npy` files: paths, globs or brace ranges, or a clip-retrieval output folder (holding
   * `img_emb/`, and `metadata/` which is then used unless `metadata` is given).
   */
  embeddings?: string | string[];
  /**
   * DataComp shards instead of `embeddings`: a folder or paths/globs of `NNNNNNNN.parquet` (each with
   * its `NNNNNNNN.npz`); rows come from the npz member `embeddingKey`, keys are the uids.
   */
  datacomp?: string | string[];
  /** The npz member read with `datacomp`: `l14_img` (default) or `b32_img` (any member works). */
  embeddingKey?: string;
  /** A key file (one key a line) covering all embedding rows in order. Optional. */
  keys?: string;
  /** Parquet metadata files, paired with the `.npy` files by the last number in their names. Optional. */
  metadata?: string | string[];
  /** Rows per batch. Default 8192; 1 … 2^24. Batches never span two files. */
  batchRows?: number;
  /** Recycle embedding buffers: the consumer releases each batch's `embeddings` (see `Float32ArrayPool`). */
  pool?: Float32ArrayPool;
  /** What {@link planEmbeddingSource} returned for these options, when the caller planned already. */
  plan?: EmbeddingSourcePlan;
  signal?: AbortSignal;
}

/** The source options without the per-pass ones (batch size, buffer pool). */
export type EmbeddingSourceInput = Omit<EmbeddingSourceOptions, 'batchRows' | 'pool'>;

/** One embedding file and its metadata partner. */
export interface EmbeddingPart {
  /** The `.npy` file, or the `.npz` archive when `npzMember` is set. */
  npy: string;
  /** DataComp: the member of the `.npz` archive `npy` that holds the rows. */
  npzMember?: string;
  header: NpyHeader;
  rows: number;
  /** First row of this part in the whole source. */
  offset: number;
  metadata?: MetadataFile;
}

/** What {@link planEmbeddingSource} found: all parts, their common dimension and row total. */
export interface EmbeddingSourcePlan {
  parts: EmbeddingPart[];
  dim: number;
  totalRows: number;
  keys?: string;
}

/**
 * True when every key of `plan` is its global row index (no keys file, no metadata, no DataComp
 * uids): such keys are distinct digit strings, so no key check can find a problem in them.
 */
export function keysAreRowIndices(plan: EmbeddingSourcePlan): boolean {
  return plan.keys === undefined && plan.parts.every((p) => p.metadata === undefined && p.npzMember === undefined);
}

/** A local folder or an s3:// prefix with objects under it. */
async function isDirectory(p: string): Promise<boolean> {
  return (await statLocation(p))?.kind === 'directory';
}

/** The last run of digits in a file name (`img_emb_12.npy` → 12), or undefined. */
function fileNumber(p: string): number | undefined {
  const m = /(\d+)(?!.*\d)/.exec(basename(p));
  return m ? Number(m[1]) : undefined;
}

function byNumber(a: string, b: string): number {
  const na = fileNumber(a);
  const nb = fileNumber(b);
  if (na !== undefined && nb !== undefined && na !== nb) return na - nb;
  return naturalCompare(a, b);
}

async function resolveFiles(embeddings: string | string[], metadata: string | string[] | undefined): Promise<{ npys: string[]; metas?: string[] }> {
  const list = stringListOption(embeddings, 'embeddings', { item: 'path' });
  if (list.length === 1 && (await isDirectory(list[0]))) {
    const dir = list[0];
    if (await isDirectory(join(dir, 'img_emb'))) {
      const npys = (await expandInputs(join(dir, 'img_emb', '*.npy'))).sort(byNumber);
      let metas: string[] | undefined;
      if (metadata !== undefined) metas = await expandInputs(metadata);
      else if (await isDirectory(join(dir, 'metadata'))) metas = (await expandInputs(join(dir, 'metadata', '*.parquet'))).sort(byNumber);
      return { npys, metas };
    }
    const npys = (await expandInputs(join(dir, '*.npy'))).sort(byNumber);
    return { npys, metas: metadata === undefined ? undefined : await expandInputs(metadata) };
  }
  const npys = await expandInputs(list);
  return { npys, metas: metadata === undefined ? undefined : await expandInputs(metadata) };
}

/** Pairs npy files with metadata files: by number when every name has a distinct one, else by order. */
function pairFiles(npys: string[], metas: string[]): (string | undefined)[] {
  const nNums = npys.map(fileNumber);
  const mNums = metas.map(fileNumber);
  const distinct = (xs: (number | undefined)[]): boolean => xs.every((x) => x !== undefined) && new Set(xs).size === xs.length;
  if (npys.length === 1 && metas.length === 1) return [metas[0]];
  if (distinct(nNums) && distinct(mNums)) {
    const byNum = new Map(metas.map((m, i) => [mNums[i] as number, m] as const));
    const paired = nNums.map((n) => byNum.get(n as number));
    const missing = npys.filter((_, i) => paired[i] === undefined);
    if (missing.length > 0) {
      throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `no metadata file for ${missing.join(', ')}`, { file: missing[0] });
    }
    const used = new Set(paired);
    const extra = metas.filter((m) => !used.has(m));
    if (extra.length > 0) {
      throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `no embedding file for ${extra.join(', ')}`, { file: extra[0] });
    }
    return paired;
  }
  if (npys.length !== metas.length) {
    throw new DbpruneError(ErrorCodes.INPUT_NOT_FOUND, `${npys.length} embedding files but ${metas.length} metadata files, and their names carry no numbers to pair them`, { file: npys[0] });
  }
  return metas;
}

/**
 * Resolves the inputs and reads only headers/footers: which files, their pairing, row counts,
 * the common dimension. No embedding data is read.
 *
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND when inputs match nothing or a file has no partner.
 * @throws ERR_DBPRUNE_NPY_FORMAT for a malformed, Fortran-ordered or non-2-D `.npy`.
 * @throws ERR_DBPRUNE_DIM_MISMATCH (context.file, expected, got) when dimensions differ.
 * @throws ERR_DBPRUNE_ROW_COUNT_MISMATCH naming both counts and files, per pair and for `keys`.
 * @throws ERR_DBPRUNE_INPUT_FORMAT for unreadable metadata.
 */
export async function planEmbeddingSource(options: Omit<EmbeddingSourceOptions, 'batchRows'>): Promise<EmbeddingSourcePlan> {
  throwIfAborted(options.signal);
  if (options.datacomp !== undefined) {
    if (options.embeddings !== undefined || options.metadata !== undefined || options.keys !== undefined) {
      throw new UsageError('--datacomp reads embeddings, keys and metadata from the shards: give it without --embeddings, --metadata or --keys', { option: 'datacomp' });
    }
    return planDataCompSource(options.datacomp, options.embeddingKey ?? 'l14_img');
  }
  if (options.embeddings === undefined) throw new UsageError('give --embeddings (or --datacomp)', { option: 'embeddings' });
  const { npys, metas } = await resolveFiles(options.embeddings, options.metadata);
  const pairedMeta = metas ? pairFiles(npys, metas) : npys.map(() => undefined);
  const parts: EmbeddingPart[] = [];
  let dim = -1;
  let offset = 0;
  for (let i = 0; i < npys.length; i++) {
    const npy = npys[i];
    const header = await readNpyHeader(npy);
    if (header.shape.length !== 2) {
      throw new DbpruneError(ErrorCodes.NPY_FORMAT, `${npy}: embeddings must be a 2-D array, got shape (${header.shape.join(', ')})`, { file: npy });
    }
    if (header.fortranOrder) {
      throw new DbpruneError(ErrorCodes.NPY_FORMAT, `${npy}: Fortran-ordered arrays are not supported`, { file: npy });
    }
    if (dim < 0) dim = header.cols;
    else if (header.cols !== dim) {
      throw new DbpruneError(ErrorCodes.DIM_MISMATCH, `${npy} has dimension ${header.cols} but ${parts[0].npy} has ${dim}`, { file: npy, expected: dim, got: header.cols });
    }
    const part: EmbeddingPart = { npy, header, rows: header.rows, offset };
    const metaPath = pairedMeta[i];
    if (metaPath !== undefined) {
      const mf = await openMetadata(metaPath);
      if (mf.rows !== header.rows) {
        throw new DbpruneError(
          ErrorCodes.ROW_COUNT_MISMATCH,
          `${npy} has ${header.rows} rows but ${metaPath} has ${mf.rows}`,
          { file: npy, metadata: metaPath, embeddingRows: header.rows, metadataRows: mf.rows },
        );
      }
      part.metadata = mf;
    }
    parts.push(part);
    offset += header.rows;
  }
  if (options.keys !== undefined) {
    const n = await countKeys(options.keys, { signal: options.signal });
    if (n !== offset) {
      const files = npys.length === 1 ? npys[0] : `${npys.length} embedding files`;
      throw new DbpruneError(ErrorCodes.ROW_COUNT_MISMATCH, `${options.keys} has ${n} keys but ${files} hold ${offset} rows`, {
        file: options.keys,
        keysRows: n,
        embeddingRows: offset,
      });
    }
  }
  return { parts, dim, totalRows: offset, keys: options.keys };
}

/**
 * Total rows and dimension of an embedding source, from headers only (see
 * {@link planEmbeddingSource} for the checks and error codes).
 */
export async function countEmbeddingRows(options: Omit<EmbeddingSourceOptions, 'batchRows'>): Promise<{ rows: number; dim: number; files: number }> {
  const plan = await planEmbeddingSource(options);
  return { rows: plan.totalRows, dim: plan.dim, files: plan.parts.length };
}

/**
 * Streams precomputed embeddings as {@link EmbeddingBatch}es of up to `batchRows` rows (batches do
 * not span files). Rows pass unchanged (no normalisation). Each row's SampleRef: `key` from
 * `keys`, else from the metadata (`key`, then `uid`), else the global row index as `%09d`;
 * `url`/`caption`/`uid` from the metadata; `shard` = the `.npy` file name without extension.
 *
 * Options: `embeddings` (required), `keys`, `metadata`, `batchRows` (default 8192, 1 … 2^24),
 * `signal`. All checks of {@link planEmbeddingSource} run before the first batch.
 *
 * @throws ERR_DBPRUNE_NPY_TRUNCATED after the last complete rows when a file is shorter than its
 *   header says; ERR_DBPRUNE_ROW_COUNT_MISMATCH if a key/metadata stream ends early;
 *   ERR_DBPRUNE_ABORTED on abort; and the codes of {@link planEmbeddingSource}.
 */
export async function* embeddingBatches(options: EmbeddingSourceOptions): AsyncGenerator<EmbeddingBatch> {
  yield* walkParts(options, async function* (part, refs, batchRows, dim, signal) {
    if (part.npzMember !== undefined) {
      const npz = await NpzFile.open(part.npy);
      try {
        for await (const b of npz.rows(part.npzMember, { batchRows, signal })) {
          yield { rows: await refs(b.start, b.rows), dim, embeddings: b.data };
        }
      } finally {
        npz.close();
      }
      return;
    }
    for await (const b of readNpyRows(part.npy, { batchRows, signal, pool: options.pool })) {
      yield { rows: await refs(b.start, b.rows), dim, embeddings: b.data };
    }
  });
}

/**
 * The SampleRefs of an embedding source without reading any embedding data (for a second pass
 * over keys/metadata), in the same batches as {@link embeddingBatches}: per file, `batchRows` rows
 * (the last batch of each file shorter). Same options, key rules and checks.
 *
 * @throws ERR_DBPRUNE_ROW_COUNT_MISMATCH if a key/metadata stream ends early; ERR_DBPRUNE_ABORTED
 *   on abort; and the codes of {@link planEmbeddingSource}.
 */
export async function* sampleRefBatches(options: EmbeddingSourceOptions): AsyncGenerator<SampleRef[]> {
  yield* walkParts(options, async function* (part, refs, batchRows, _dim, signal) {
    for (let start = 0; start < part.rows; start += batchRows) {
      throwIfAborted(signal);
      yield await refs(start, Math.min(batchRows, part.rows - start));
    }
  });
}

/**
 * The SampleRefs of one part of a planned source (`plan.parts[index]`), in the batches
 * {@link sampleRefBatches} gives that part: the distributed mode reads parts on different machines.
 * A `keys` file spanning all parts is skipped forward to the part's first row.
 *
 * @throws ERR_DBPRUNE_ROW_COUNT_MISMATCH if a key/metadata stream ends early; ERR_DBPRUNE_ABORTED.
 */
export async function* partRefBatches(plan: EmbeddingSourcePlan, index: number, options: { batchRows: number; signal?: AbortSignal }): AsyncGenerator<SampleRef[]> {
  const part = plan.parts[integerOption(index, 'part', { min: 0, max: plan.parts.length - 1 })];
  const { batchRows, signal } = options;
  const shard = basename(part.npy).replace(/\.npy$/i, '');
  const keyTaker = plan.keys !== undefined ? new BatchTaker(readKeyBatches(plan.keys, { batchRows, signal })) : undefined;
  const metaTaker = part.metadata ? new BatchTaker(readMetadataBatches(part.metadata, { batchRows, rowOffset: part.offset, shard, signal })) : undefined;
  try {
    for (let skipped = 0; keyTaker && skipped < part.offset; ) {
      const got = (await keyTaker.take(Math.min(batchRows, part.offset - skipped))).length;
      if (got === 0) break;
      skipped += got;
    }
    for (let start = 0; start < part.rows; start += batchRows) {
      throwIfAborted(signal);
      yield await refsFor(part, start, Math.min(batchRows, part.rows - start), shard, metaTaker, keyTaker, plan.keys);
    }
  } finally {
    await metaTaker?.close();
    await keyTaker?.close();
  }
}

/**
 * Plans the source, then runs `perPart` on each file in order with a `refs(start, n)` that returns
 * the SampleRefs of that file's rows (from keys.txt, metadata, or row indices), closing every
 * reader whatever happens.
 */
async function* walkParts<T>(
  options: EmbeddingSourceOptions,
  perPart: (
    part: EmbeddingPart,
    refs: (start: number, n: number) => Promise<SampleRef[]>,
    batchRows: number,
    dim: number,
    signal: AbortSignal | undefined,
  ) => AsyncGenerator<T>,
): AsyncGenerator<T> {
  const batchRows = integerOption(options.batchRows, 'batchRows', READ_BATCH_ROWS);
  const { signal } = options;
  const plan = options.plan ?? (await planEmbeddingSource(options));
  const keyTaker = plan.keys !== undefined ? new BatchTaker(readKeyBatches(plan.keys, { batchRows, signal })) : undefined;
  try {
    for (const part of plan.parts) {
      const shard = basename(part.npy).replace(/\.np[yz]$/i, '');
      const metaTaker = part.metadata
        ? new BatchTaker(readMetadataBatches(part.metadata, { batchRows, rowOffset: part.offset, shard, signal }))
        : undefined;
      try {
        yield* perPart(part, (start, n) => refsFor(part, start, n, shard, metaTaker, keyTaker, plan.keys), batchRows, plan.dim, signal);
      } finally {
        await metaTaker?.close();
      }
    }
  } finally {
    await keyTaker?.close();
  }
}

/** The SampleRefs of rows `start … start+n-1` of `part`. */
async function refsFor(
  part: EmbeddingPart,
  start: number,
  n: number,
  shard: string,
  metaTaker: BatchTaker<SampleRef> | undefined,
  keyTaker: BatchTaker<string> | undefined,
  keysPath: string | undefined,
): Promise<SampleRef[]> {
  let rows: SampleRef[];
  if (metaTaker) {
    rows = await metaTaker.take(n);
    if (rows.length !== n) {
      throw new DbpruneError(ErrorCodes.ROW_COUNT_MISMATCH, `${part.metadata?.path} ended at row ${start + rows.length} before ${part.npy}`, {
        file: part.metadata?.path,
        row: start + rows.length,
      });
    }
  } else {
    rows = new Array<SampleRef>(n);
    // keys.txt names the rows below; without it a row's key is its index
    if (!keyTaker) for (let i = 0; i < n; i++) rows[i] = { key: indexKey(part.offset + start + i), shard };
  }
  if (keyTaker) {
    const keys = await keyTaker.take(n);
    if (keys.length !== n) {
      throw new DbpruneError(ErrorCodes.ROW_COUNT_MISMATCH, `${keysPath} ended before ${part.npy} row ${start + keys.length}`, {
        file: keysPath,
        row: part.offset + start + keys.length,
      });
    }
    if (metaTaker) for (let i = 0; i < n; i++) rows[i].key = keys[i];
    else for (let i = 0; i < n; i++) rows[i] = { key: keys[i], shard };
  }
  return rows;
}
