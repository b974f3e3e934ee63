/**
 * The per-cluster index of the {@link dedup} stage (dedup.ts) and its on-disk state: kept
 * embeddings in a brute-force buffer while small, then in an hnswlib-node HNSW index; the
 * snapshot files (`cluster-<j>.f32` / `.hnsw` + `dedup-state.json`) and their restore.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { DbpruneError, ErrorCodes } from '../core/errors.js';
import { nearestByDot } from '../core/semdedup.js';

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

/** The stage's validated options. */
export interface DedupSettings {
  eps: number[];
  dim: number;
  k: number;
  M: number;
  efConstruction: number;
  efSearch: number;
  maxPerCluster: number;
  bruteForceMax: number;
  seed: number;
}

/** The stage's running counters (restored from, and written to, a snapshot). */
export interface DedupCounters {
  seen: number;
  skipped: number;
  unindexedKept: number;
  /** Per ε. */
  duplicates: number[];
}

/** Kept samples of one cluster: a buffer while small, an HNSW index after. Labels = insertion order. */
export class ClusterIndex {
  keys: string[] = [];
  buf: Float32Array | null;
  hnsw: Hnsw | null = null;
  capped = false;

  constructor(
    private readonly v: DedupSettings,
    initial: number,
  ) {
    this.buf = new Float32Array(Math.max(1, initial) * v.dim);
  }

  get count(): number {
    return this.keys.length;
  }

  /** Best kept match of q: similarity (float64 when near a threshold) and label; −Infinity/−1 when empty. */
  nearest(q: Float64Array, qa: number[], thresholds: number[], out: { sim: number; label: number }): void {
    out.sim = -Infinity;
    out.label = -1;
    if (this.count === 0) return;
    const { dim } = this.v;
    if (this.buf) {
      const r = nearestByDot(q, this.buf, this.count, dim);
      out.sim = r.best;
      out.label = r.arg;
      return;
    }
    const h = this.hnsw as Hnsw;
    const res = h.searchKnn(qa, 1);
    const label = res.neighbors[0];
    let sim = 1 - res.distances[0];
    if (thresholds.some((t) => Math.abs(sim - t) < 1e-5)) {
      const p = h.getPoint(label);
      let s = 0;
      for (let t = 0; t < dim; t++) s += q[t] * p[t];
      sim = s;
    }
    out.sim = sim;
    out.label = label;
  }

  /** Inserts a kept sample; returns false (and marks the cluster capped) when the cap is reached. */
  add(q: Float32Array, qo: number, qa: number[], key: string): boolean {
    const { dim, maxPerCluster, bruteForceMax } = this.v;
    if (this.count >= maxPerCluster) {
      this.capped = true;
      return false;
    }
    const label = this.count;
    if (this.buf && label >= bruteForceMax) this.toHnsw();
    if (this.buf) {
      if ((label + 1) * dim > this.buf.length) {
        const grown = new Float32Array(Math.min(Math.max(bruteForceMax, 1), Math.max(1, label) * 2) * dim);
        grown.set(this.buf);
        this.buf = grown;
      }
      this.buf.set(q.subarray(qo, qo + dim), label * dim);
    } else {
      const h = this.hnsw as Hnsw;
      if (label >= h.getMaxElements()) h.resizeIndex(Math.min(maxPerCluster, h.getMaxElements() * 2));
      h.addPoint(qa, label);
    }
    this.keys.push(key);
    return true;
  }

  private toHnsw(): void {
    const { dim, M, efConstruction, efSearch, seed, maxPerCluster } = this.v;
    const h = new HierarchicalNSW('ip', dim);
    h.initIndex(Math.min(maxPerCluster, Math.max(256, this.count * 2)), M, efConstruction, seed);
    h.setEf(efSearch);
    const buf = this.buf as Float32Array;
    const v = new Array<number>(dim).fill(0);
    for (let l = 0; l < this.count; l++) {
      for (let t = 0; t < dim; t++) v[t] = buf[l * dim + t];
      h.addPoint(v, l);
    }
    this.hnsw = h;
    this.buf = null;
  }

  bytes(): number {
    const { dim, M } = this.v;
    let keyBytes = 0;
    for (const key of this.keys) keyBytes += 32 + key.length;
    if (this.buf) return this.buf.byteLength + keyBytes;
    const h = this.hnsw as Hnsw;
    // hnswlib level 0: data + 2M links + count + label; upper levels: ~1/(M−1) lists of M links.
    const perElement = dim * 4 + 2 * M * 4 + 4 + 8 + (M * 4 + 4) / (M - 1) + 16;
    return h.getMaxElements() * perElement + keyBytes;
  }
}

interface SnapshotState {
  version: 1;
  dim: number;
  k: number;
  eps: number[];
  seen: number;
  skipped: number;
  duplicates: number[];
  unindexedKept: number;
  clusters: { j: number; mode: 'buffer' | 'hnsw'; count: number; capped: boolean; keys: string[]; file: string }[];
}

/** Reads the state `writeDedupState` wrote to `dir`. Throws ERR_DBPRUNE_CALIBRATION when it is unreadable or for another dim/k/eps. */
export async function readDedupState(dir: string, v: DedupSettings, initial: number): Promise<{ counters: DedupCounters; clusters: Map<number, ClusterIndex> }> {
  const { dim, k, eps } = v;
  let st: SnapshotState;
  try {
    st = JSON.parse(await readFile(join(dir, 'dedup-state.json'), 'utf8')) as SnapshotState;
  } catch (e) {
    throw new DbpruneError(ErrorCodes.CALIBRATION, `cannot read the dedup state in ${dir}: ${String(e)}`, { file: join(dir, 'dedup-state.json') }, { cause: e });
  }
  if (st.version !== 1 || st.dim !== dim || st.k !== k || st.eps.length !== eps.length || st.eps.some((e, i) => e !== eps[i])) {
    throw new DbpruneError(ErrorCodes.CALIBRATION, `dedup state in ${dir} was written for dim ${st.dim}, k ${st.k}, eps ${st.eps?.join(',')}; this stage has dim ${dim}, k ${k}, eps ${eps.join(',')}`, {
      file: join(dir, 'dedup-state.json'),
    });
  }
  const counters: DedupCounters = { seen: st.seen, skipped: st.skipped, unindexedKept: st.unindexedKept, duplicates: [...st.duplicates] };
  const clusters = new Map<number, ClusterIndex>();
  for (const c of st.clusters) {
    const ci = new ClusterIndex(v, initial);
    ci.keys = c.keys;
    ci.capped = c.capped;
    const file = join(dir, c.file);
    if (c.mode === 'buffer') {
      const b = await readFile(file);
      ci.buf = new Float32Array(Math.max(c.count, 1) * dim);
      ci.buf.set(new Float32Array(b.buffer, b.byteOffset, c.count * dim));
    } else {
      const h = new HierarchicalNSW('ip', dim);
      await h.readIndex(file);
      h.setEf(v.efSearch);
      ci.hnsw = h;
      ci.buf = null;
    }
    clusters.set(c.j, ci);
  }
  return { counters, clusters };
}

/** Writes the state (per-cluster buffers/indexes, then `dedup-state.json`) into `dir`; returns the files. */
export async function writeDedupState(dir: string, v: DedupSettings, clusters: readonly (ClusterIndex | undefined)[], counters: DedupCounters): Promise<string[]> {
  const { dim, k, eps } = v;
  await mkdir(dir, { recursive: true });
  const st: SnapshotState = {
    version: 1,
    dim,
    k,
    eps,
    seen: counters.seen,
    skipped: counters.skipped,
    duplicates: counters.duplicates,
    unindexedKept: counters.unindexedKept,
    clusters: [],
  };
  const files: string[] = [];
  for (let j = 0; j < k; j++) {
    const c = clusters[j];
    if (!c) continue;
    const file = `cluster-${j}.${c.buf ? 'f32' : 'hnsw'}`;
    if (c.buf) {
      const data = c.buf.subarray(0, c.count * dim);
      await writeFile(join(dir, file), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } else await (c.hnsw as Hnsw).writeIndex(join(dir, file));
    files.push(join(dir, file));
    st.clusters.push({ j, mode: c.buf ? 'buffer' : 'hnsw', count: c.count, capped: c.capped, keys: c.keys, file });
  }
  const stateFile = join(dir, 'dedup-state.json');
  await writeFile(stateFile, JSON.stringify(st));
  files.push(stateFile);
  return files;
}
