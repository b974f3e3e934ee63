/**
 * What a distributed run is (the spec every job reads from the work dir), its id, and where its
 * files live under the work dir. The run id hashes everything that changes a decision (parameters,
 * centroids bytes, inputs: paths, sizes, mtimes and row counts), so the same command finds the same
 * run (resume) and a changed input never reuses stale parts.
 */
import { stat } from 'node:fs/promises';
import type { NearestBackend } from '../core/nearest.js';
import { resolve } from 'node:path';
import type { ResolvedDbpParams } from '../core/dbp.js';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { sha256Hex } from '../io/hash.js';
import type { EmbeddingSourcePlan } from '../io/embeddings-source.js';
import type { WorkStore } from './work-store.js';

/** The embeddings source as the user gave it, paths made absolute (workers may have another cwd). */
export interface SourceSpec {
  embeddings: string[];
  keys?: string;
  metadata?: string[];
}

/** One input part of a run: an embeddings file (`prune`) or an image shard (`run`). */
export interface PartSpec {
  /** The `.npy` path, or the shard path/URL. */
  input: string;
  /** Rows, known up front for embeddings; −1 for shards (the map job counts them). */
  rows: number;
  /** Global row of the part's first row; −1 for shards (the plan derives it). */
  offset: number;
}

/** How `run --cluster` turns a shard into embeddings (as the shards-to-embeddings pipeline does). */
export interface ImageSpec {
  model: string;
  modelSha256: string;
  batchSize: number;
  decode: { size?: number; mode?: 'shortest-center-crop' | 'squash'; mean?: [number, number, number]; std?: [number, number, number] };
  /** SSRF guard of the shard fetches, as `run` sets it (hosts of the shard URLs typed are exempt). */
  fetch?: { allowPrivate: boolean; allowPrivateHosts: string[] };
  /** URL-list runs (`run --urls`): each part is one img2dataset shard's rows of the list, a JSONL chunk in the work dir, downloaded by its map job. */
  download?: { concurrency?: number; userAgentToken?: string; allowPrivate: boolean };
  /** URL-list runs: SHA-256 of the chunks (the input's identity in the run id). */
  urlsSha256?: string;
}

/** Everything a job needs to know about its run; written once to `<runId>/run.json`. */
export interface PruneRunSpec {
  version: 1;
  /** `prune`: embeddings parts (`source`); `run`: image shards (`images`). */
  kind: 'prune' | 'run';
  runId: string;
  source?: SourceSpec;
  images?: ImageSpec;
  centroids: string;
  centroidsSha256: string;
  params: ResolvedDbpParams;
  backend: NearestBackend;
  /** Rows per assign batch: the single-machine pass-1 default, so batches are composed alike. */
  batchRows: number;
  parts: PartSpec[];
  totalRows: number;
  dim: number;
  k: number;
  /** SemDeDup before DBP (`--dedup-eps`): the ε list (the first decides) and the work budget of a dedup job. */
  dedup?: DedupSpec;
}

/** SemDeDup settings of a distributed run. */
export interface DedupSpec {
  eps: number[];
  /** Pairs compared per dedup job: small clusters are packed up to it, larger ones split. */
  pairsPerTask: number;
}

/** Batch size of the decide jobs' key/metadata reads, and of the assembled manifest writes (as pass 2). */
export const DECIDE_BATCH_ROWS = 16_384;

export function absoluteSource(s: { embeddings: string | string[]; keys?: string; metadata?: string | string[] }): SourceSpec {
  const list = (x: string | string[]): string[] => (typeof x === 'string' ? [x] : x).map((p) => resolve(p));
  return { embeddings: list(s.embeddings), keys: s.keys === undefined ? undefined : resolve(s.keys), metadata: s.metadata === undefined ? undefined : list(s.metadata) };
}

/** Path, size and mtime of a local file (URLs: the URL alone). */
async function fileId(p: string): Promise<[string, number, number]> {
  if (/^https?:\/\//i.test(p)) return [p, -1, -1];
  const s = await stat(p);
  return [p, s.size, Math.round(s.mtimeMs)];
}

/** The run id: 20 hex chars of a SHA-256 over parameters, centroids, model and input identities. */
export async function deriveRunId(a: { kind: string; params: ResolvedDbpParams; centroidsSha256: string; plan?: EmbeddingSourcePlan; source?: SourceSpec; shards?: string[]; images?: ImageSpec; dedup?: DedupSpec }): Promise<string> {
  const inputs = [];
  for (const part of a.plan?.parts ?? []) inputs.push([...(await fileId(part.npy)), part.rows, part.metadata ? await fileId(part.metadata.path) : null]);
  for (const shard of a.shards ?? []) inputs.push(await fileId(shard));
  const keys = a.source?.keys === undefined ? null : await fileId(a.source.keys);
  // `dedup` only when set: runs without it keep their ids (a resumed run finds its work dir).
  const dedup = a.dedup === undefined ? {} : { dedup: a.dedup };
  return sha256Hex(JSON.stringify({ v: 1, kind: a.kind, params: a.params, centroids: a.centroidsSha256, images: a.images ?? null, inputs, keys, ...dedup })).slice(0, 20);
}

const pad = (p: number): string => String(p).padStart(6, '0');

/** Paths (relative to the work dir) of a run's files. */
export const layout = {
  spec: (runId: string) => `${runId}/run.json`,
  mapRecords: (runId: string, p: number) => `${runId}/map/part-${pad(p)}.rec`,
  mapSummary: (runId: string, p: number) => `${runId}/map/part-${pad(p)}.json`,
  mapRefs: (runId: string, p: number) => `${runId}/map/part-${pad(p)}.refs.arrows`,
  mapDone: (runId: string, p: number) => `${runId}/map/part-${pad(p)}.done`,
  plan: (runId: string) => `${runId}/plan.json`,
  urlChunk: (runId: string, p: number) => `${runId}/urls/chunk-${pad(p)}.jsonl`,
  dedupPlan: (runId: string) => `${runId}/dedup-plan.json`,
  dedupTaskRows: (runId: string, t: number) => `${runId}/dedup/task-${pad(t)}.rows`,
  dedupResult: (runId: string, t: number) => `${runId}/dedup/task-${pad(t)}.json`,
  dedupDone: (runId: string, t: number) => `${runId}/dedup/task-${pad(t)}.done`,
  dedupPart: (runId: string, p: number) => `${runId}/dedup/part-${pad(p)}.json`,
  selectPart: (runId: string, round: number, p: number) => `${runId}/select-${round}/part-${pad(p)}.json`,
  selectState: (runId: string, round: number) => `${runId}/select-${round}.json`,
  decideKeep: (runId: string, p: number) => `${runId}/decide/part-${pad(p)}.keep`,
  decideSummary: (runId: string, p: number) => `${runId}/decide/part-${pad(p)}.json`,
  decideDone: (runId: string, p: number) => `${runId}/decide/part-${pad(p)}.done`,
  decided: (runId: string) => `${runId}/decide.json`,
};

/**
 * Writes a part's files, each atomically, then the marker (file → SHA-256) last: a part is done
 * exactly when its marker exists and every checksum matches.
 */
export async function writePartFiles(store: WorkStore, files: Record<string, Uint8Array | string>, marker: string): Promise<void> {
  const sums: Record<string, string> = {};
  for (const [path, data] of Object.entries(files)) {
    await store.write(path, data);
    sums[path] = sha256Hex(data);
  }
  await store.write(marker, JSON.stringify({ files: sums }));
}

/**
 * The files of a done part (checksums verified), or undefined when the part is not (fully) written.
 * With `only`, just those files are read and verified (the marker vouches for the others).
 */
export async function readPartFiles(store: WorkStore, marker: string, only?: readonly string[]): Promise<Map<string, Buffer> | undefined> {
  const text = await store.readTextIfExists(marker);
  if (text === undefined) return undefined;
  let sums: Record<string, string>;
  try {
    sums = (JSON.parse(text) as { files: Record<string, string> }).files;
  } catch {
    return undefined;
  }
  const out = new Map<string, Buffer>();
  for (const [path, sum] of Object.entries(sums)) {
    if (only && !only.includes(path)) continue;
    const data = await store.readIfExists(path);
    if (data === undefined || sha256Hex(data) !== sum) return undefined;
    out.set(path, data);
  }
  return out;
}

/** Reads and parses a JSON file of the run, failing with ERR_DBPRUNE_CLUSTER_WORK_DIR when absent or corrupt. */
export async function readRunJson<T>(store: WorkStore, path: string): Promise<T> {
  const text = await store.readTextIfExists(path);
  if (text === undefined) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `${store.root}/${path} is missing (is the work dir shared with every worker?)`, { file: `${store.root}/${path}` });
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `${store.root}/${path} is not valid JSON`, { file: `${store.root}/${path}` }, { cause: e });
  }
}
