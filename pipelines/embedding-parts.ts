/**
 * The output of `embed` (images-to-embeddings.ts) on a local folder or an `s3://` prefix: part
 * names, the resume scan, and the commit of one part.
 *
 * A part's `.npy` is written by {@link NpyWriter}, which patches the row count into the header at
 * close, so it is always written to a local file first: beside its final name for a local `out`
 * (`img_emb_N.npy.tmp`, renamed at commit), in a spool folder under the OS temp dir for `s3://`
 * (uploaded at commit as a multipart upload from the file, so memory stays at a few parts whatever
 * the part's size; the spool holds one part at a time and is removed at the end). Either way the
 * npy object appears first, complete, and the metadata parquet last: the part's commit point.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { UsageError } from '../src/core/errors.js';
import { readNpyHeader, type NpyWriter } from '../src/io/npy.js';
import {
  ensureOutputDir,
  isS3Uri,
  joinLocation,
  listLocation,
  locationBasename,
  locationExists,
  openWrite,
  readLocation,
  removeLocation,
  writeLocation,
} from '../src/io/storage/index.js';

/** What wrote the parts (checked on resume). */
export interface EmbedState {
  model: string;
  partRows: number;
}

const EMBED_STATE = 'embed.json';

/** Final locations of part `n`'s two files. */
export function partPaths(out: string, n: number): { npy: string; metadata: string } {
  return { npy: joinLocation(out, 'img_emb', `img_emb_${n}.npy`), metadata: joinLocation(out, 'metadata', `metadata_${n}.parquet`) };
}

/** A model location comparable across runs (local paths resolved; s3:// URIs as they are). */
function sameModel(a: string, b: string): boolean {
  const norm = (m: string): string => (isS3Uri(m) ? m : resolve(m));
  return norm(a) === norm(b);
}

/** Every file/object under `out/<sub>/` (nothing when it does not exist). */
async function listPartFiles(out: string, sub: string): Promise<string[]> {
  const dir = joinLocation(out, sub);
  const found: string[] = [];
  for await (const e of listLocation(isS3Uri(dir) ? `${dir}/` : dir)) found.push(e.location);
  return found;
}

/**
 * Leading complete parts of an earlier run: both files present and exactly `partRows` rows (a
 * shorter last part was the end of an earlier input and is redone). Removes everything after them
 * (and leftover `.tmp` files); without `resume`, removes every part.
 * @throws ERR_DBPRUNE_USAGE when `out` holds parts of another size or model.
 */
export async function completeParts(out: string, state: EmbedState, resume: boolean): Promise<number> {
  const statePath = joinLocation(out, EMBED_STATE);
  if (resume && (await locationExists(statePath))) {
    const prev = JSON.parse((await readLocation(statePath)).toString('utf8')) as { model?: string; partRows?: number };
    if (prev.partRows !== state.partRows) {
      throw new UsageError(`${out} holds parts of ${prev.partRows} rows, this run asks for ${state.partRows}: use the same --part-rows or another --out`, { file: statePath });
    }
    if (prev.model !== undefined && !sameModel(prev.model, state.model)) {
      throw new UsageError(`${out} holds embeddings from model ${prev.model}, this run uses ${state.model}: use another --out (or --no-resume)`, { file: statePath });
    }
    let n = 0;
    for (; ; n++) {
      const p = partPaths(out, n);
      if (!(await locationExists(p.npy)) || !(await locationExists(p.metadata))) break;
      if ((await readNpyHeader(p.npy)).shape[0] !== state.partRows) break;
    }
    for (const sub of ['img_emb', 'metadata']) {
      for (const f of await listPartFiles(out, sub)) {
        const m = /_(\d+)\.(npy|parquet)(\.tmp)?$/.exec(locationBasename(f));
        if (!m || m[3] || Number(m[1]) >= n) await removeLocation(f);
      }
    }
    return n;
  }
  if (!isS3Uri(out)) {
    await rm(join(out, 'img_emb'), { recursive: true, force: true });
    await rm(join(out, 'metadata'), { recursive: true, force: true });
  } else {
    for (const sub of ['img_emb', 'metadata']) for (const f of await listPartFiles(out, sub)) await removeLocation(f);
  }
  return 0;
}

/** Writes the parts of one run to `out` (see the module comment). Call {@link close} at the end. */
export class PartWriter {
  private constructor(
    readonly out: string,
    /** Local spool folder for s3:// outputs. */
    private readonly spool: string | undefined,
  ) {}

  /** Prepares `out` (local folders created) and records `state` in `out/embed.json`. */
  static async open(out: string, state: EmbedState): Promise<PartWriter> {
    await ensureOutputDir(joinLocation(out, 'img_emb'));
    await ensureOutputDir(joinLocation(out, 'metadata'));
    await writeLocation(joinLocation(out, EMBED_STATE), `${JSON.stringify({ model: state.model, partRows: state.partRows, format: 'npy' }, null, 2)}\n`);
    const spool = isS3Uri(out) ? await mkdtemp(join(tmpdir(), 'dbprune-embed-')) : undefined;
    return new PartWriter(out, spool);
  }

  /** The local file part `n`'s {@link NpyWriter} writes to. */
  npyTempPath(n: number): string {
    if (this.spool !== undefined) return join(this.spool, `img_emb_${n}.npy`);
    return `${partPaths(this.out, n).npy}.tmp`;
  }

  /**
   * Closes part `n`'s npy and puts it and `metadata` (a parquet file's bytes) under their final
   * names, npy first. On S3 the npy is streamed from the spool file as a multipart upload.
   */
  async commit(n: number, npy: NpyWriter, metadata: Uint8Array, signal?: AbortSignal): Promise<{ npy: string; metadata: string }> {
    const final = partPaths(this.out, n);
    await npy.close();
    if (this.spool === undefined) {
      await writeFile(`${final.metadata}.tmp`, metadata);
      await rename(npy.path, final.npy);
      await rename(`${final.metadata}.tmp`, final.metadata);
      return final;
    }
    const upload = await openWrite(final.npy);
    try {
      await pipeline(createReadStream(npy.path, { highWaterMark: 1 << 20 }), upload.stream, { signal });
      await upload.commit();
    } catch (e) {
      await upload.abort();
      throw e;
    } finally {
      await rm(npy.path, { force: true });
    }
    await writeLocation(final.metadata, metadata);
    return final;
  }

  /** Removes the spool folder (idempotent). */
  async close(): Promise<void> {
    if (this.spool !== undefined) await rm(this.spool, { recursive: true, force: true });
  }
}
