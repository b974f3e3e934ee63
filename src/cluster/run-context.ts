/**
 * What a worker keeps per run and per centroids between jobs: the run spec, the planned embeddings
 * source (headers, metadata footers), and the nearest-centroid index (ORT session). A worker takes
 * jobs of many runs; each is opened once and cached.
 */
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { NearestCentroid } from '../kernels/nearest-centroid.js';
import { planEmbeddingSource, type EmbeddingSourcePlan } from '../io/embeddings-source.js';
import { hashFile } from '../io/hash.js';
import { readNpyFloat32 } from '../io/npy.js';
import { layout, readRunJson, type PruneRunSpec } from './run-spec.js';
import { openWorkStore, type WorkStore } from './work-store.js';

/** One run as a worker sees it. */
export interface RunContext {
  store: WorkStore;
  spec: PruneRunSpec;
  /** The planned embeddings source (`prune` runs; undefined for image shards). */
  source?: EmbeddingSourcePlan;
  /** The run's nearest-centroid index, shared by the jobs of every run with the same centroids. */
  nearest(): Promise<NearestCentroid>;
}

/** Caches of one worker process. */
export class WorkerCaches {
  private readonly runs = new Map<string, Promise<RunContext>>();
  private readonly indexes = new Map<string, Promise<NearestCentroid>>();

  constructor(private readonly threads: number | undefined) {}

  /** The context of `runId` under `workDir` (opened once). */
  run(workDir: string, runId: string, signal?: AbortSignal): Promise<RunContext> {
    const key = `${workDir}\0${runId}`;
    let ctx = this.runs.get(key);
    if (!ctx) {
      ctx = openRun(workDir, runId, (spec) => this.index(spec), signal);
      ctx.catch(() => this.runs.delete(key));
      this.runs.set(key, ctx);
      if (this.runs.size > 8) this.runs.delete(this.runs.keys().next().value as string);
    }
    return ctx;
  }

  private index(spec: PruneRunSpec): Promise<NearestCentroid> {
    const key = `${spec.centroidsSha256}\0${spec.backend}`;
    let idx = this.indexes.get(key);
    if (!idx) {
      idx = (async () => {
        const c = await readNpyFloat32(spec.centroids);
        const { sha256 } = await hashFile(spec.centroids);
        if (sha256 !== spec.centroidsSha256) {
          throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `${spec.centroids} on this worker differs from the submitter's (SHA-256 ${sha256.slice(0, 12)}… vs ${spec.centroidsSha256.slice(0, 12)}…)`, { file: spec.centroids });
        }
        return NearestCentroid.create(c.data, c.rows, c.cols, { backend: spec.backend, threads: this.threads, batchRows: spec.batchRows, int8: true });
      })();
      idx.catch(() => this.indexes.delete(key));
      this.indexes.set(key, idx);
    }
    return idx;
  }

  /** Releases every ORT session. */
  async dispose(): Promise<void> {
    const all = [...this.indexes.values()];
    this.indexes.clear();
    this.runs.clear();
    for (const p of all) await p.then((n) => n.dispose(), () => undefined);
  }
}

async function openRun(workDir: string, runId: string, index: (spec: PruneRunSpec) => Promise<NearestCentroid>, signal?: AbortSignal): Promise<RunContext> {
  const store = openWorkStore(workDir);
  const spec = await readRunJson<PruneRunSpec>(store, layout.spec(runId));
  if (!spec.source) return { store, spec, nearest: () => index(spec) };
  const source = await planEmbeddingSource({ ...spec.source, signal });
  const same = source.parts.length === spec.parts.length && source.parts.every((p, i) => p.npy === spec.parts[i].input && p.rows === spec.parts[i].rows && p.offset === spec.parts[i].offset);
  if (!same) {
    throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `the embeddings this worker sees differ from the submitter's (run ${runId}: ${spec.parts.length} parts, ${spec.totalRows} rows; here ${source.parts.length} parts, ${source.totalRows} rows)`, { runId });
  }
  return { store, spec, source, nearest: () => index(spec) };
}
