/**
 * SemDeDup in a distributed exact run (`prune --dedup-eps … --cluster`), the rule of exact mode
 * (src/core/semdedup.ts) split into jobs:
 *
 *   map merge   all parts' records (8 B/row) → per-cluster member lists in dedup order, sorted by the
 *               single-machine code (so `random` draws the same permutation) → dedup tasks: small
 *               clusters packed up to a budget of compared pairs, large ones split into slices of
 *               items [from, to) (item j is compared with every earlier item, so a slice needs the
 *               members [0, to)) → `dedup-plan.json`
 *   dedup task  gathers its members' embeddings (positional reads of the .npy rows), normalises them
 *               as exact mode does, scores items [from, to): M[j] = max(0, max_{i<j} ⟨x_i, x_j⟩),
 *               removed when M[j] > 1 − ε → the removed rows and the rows they duplicate
 *   dedup merge the removals in task order → per-part duplicate files (with the keys of the rows they
 *               duplicate) → the statistics without the removed rows → plan.json, as the map merge
 *               of a run without SemDeDup writes it
 *
 * Memory of the merges: the records of every part (8 B/row), as single-machine exact mode holds them.
 */
import { ClusterAccumulator } from '../core/complexity.js';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { sortClusterMembers, type ClusterMembers } from '../core/semdedup.js';
import type { ClusterRecords } from '../core/select.js';
import { argmaxDot, normalizeRows, type ArgmaxDot } from '../core/vector.js';
import { partRefBatches, type EmbeddingSourcePlan } from '../io/embeddings-source.js';
import { npyElementsToFloat32 } from '../io/npy.js';
import { openRandomAccess } from '../io/storage/index.js';
import type { DedupPartFile } from './dedup-records.js';
import { readMapPart } from './map-job.js';
import type { RunContext } from './run-context.js';
import { DECIDE_BATCH_ROWS, layout, readPartFiles, readRunJson, writePartFiles, type DedupSpec } from './run-spec.js';
import { collectMap, writePlan, type MapTotals } from './select-job.js';

/** Items [from, to) of cluster `cluster`'s dedup order; the task's rows file holds its members [0, to) at `at`. */
export interface DedupSlice {
  cluster: number;
  from: number;
  to: number;
  at: number;
}

/** `<runId>/dedup-plan.json`: the map totals and the dedup tasks. */
export interface DedupPlanFile {
  totals: MapTotals;
  /** Record rows of the run (every part's records, in part order). */
  records: number;
  /** Rows in some cluster (the members SemDeDup sees). */
  members: number;
  largestCluster: number;
  tasks: DedupSlice[][];
}

/** `<runId>/dedup/task-T.json`: a task's removals at each ε and, at ε[0], [row, row it duplicates] (global record rows). */
interface DedupResult {
  removed: number[];
  duplicates: [number, number][];
}

/** Default work of one dedup job: 2^24 compared pairs (about 1–2 s of float64 dot products at d = 512). */
export const DEDUP_PAIRS_PER_TASK = 2 ** 24;

/** Pairs compared by items [from, to) of a cluster: item j against the j items before it. */
const pairs = (from: number, to: number): number => (to * (to - 1) - from * (from - 1)) / 2;

/**
 * Splits the clusters (≥ 2 members) into tasks of about `pairsPerTask` compared pairs: small
 * clusters packed in cluster order, a larger one cut into slices with boundaries at m·√(t/s) (item j
 * costs j comparisons, so these slices cost about the same). The rows offsets `at` are filled in.
 */
export function planDedupTasks(members: ClusterMembers, pairsPerTask: number): DedupSlice[][] {
  const tasks: DedupSlice[][] = [];
  let current: DedupSlice[] = [];
  let work = 0;
  const flush = (): void => {
    if (current.length > 0) tasks.push(current);
    current = [];
    work = 0;
  };
  for (let j = 0; j < members.k; j++) {
    const m = members.offsets[j + 1] - members.offsets[j];
    if (m < 2) continue;
    const w = pairs(0, m);
    if (w <= pairsPerTask) {
      if (work + w > pairsPerTask) flush();
      current.push({ cluster: j, from: 0, to: m, at: 0 });
      work += w;
      continue;
    }
    flush();
    const s = Math.ceil(w / pairsPerTask);
    let from = 0;
    for (let t = 1; t <= s; t++) {
      const to = t === s ? m : Math.round(m * Math.sqrt(t / s));
      if (to <= from) continue;
      tasks.push([{ cluster: j, from, to, at: 0 }]);
      from = to;
    }
  }
  flush();
  for (const task of tasks) {
    let at = 0;
    for (const slice of task) {
      slice.at = at;
      at += slice.to;
    }
  }
  return tasks;
}

/** Every done part's records concatenated in part order (global record rows); failed parts hold none. */
async function readAllRecords(ctx: RunContext, totals: MapTotals): Promise<ClusterRecords> {
  const { spec } = ctx;
  const parts: ClusterRecords[] = [];
  let n = 0;
  for (let p = 0; p < spec.parts.length; p++) {
    if (totals.failed[p] !== undefined) continue;
    const part = await readMapPart(ctx, p);
    if (!part) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `map output of part ${p} (${spec.parts[p].input}) vanished or is corrupt`, { part: p, runId: spec.runId });
    if (part.records.n > 0 && totals.offsets[p] !== n) throw new DbpruneError(ErrorCodes.INTERNAL, `part ${p}: records start at ${n}, planned ${totals.offsets[p]}`, { part: p });
    parts.push(part.records);
    n += part.records.n;
  }
  const cluster = new Int32Array(n);
  const distance = new Float32Array(n);
  let at = 0;
  for (const r of parts) {
    cluster.set(r.cluster, at);
    distance.set(r.distance, at);
    at += r.n;
  }
  return { cluster, distance, n };
}

/** The map merge of a run with SemDeDup: member lists in dedup order → task files → dedup-plan.json (last). */
export async function planDedup(ctx: RunContext, failures: Map<number, string>): Promise<DedupPlanFile> {
  const { spec, store } = ctx;
  if (!spec.dedup) throw new DbpruneError(ErrorCodes.INTERNAL, `run ${spec.runId} has no dedup settings`);
  const dedup = spec.dedup;
  const { totals } = await collectMap(ctx, failures);
  const records = await readAllRecords(ctx, totals);
  const members = sortClusterMembers(records, spec.k, spec.params.which, spec.params.seed);
  const tasks = planDedupTasks(members, dedup.pairsPerTask);
  for (let t = 0; t < tasks.length; t++) {
    const rows = new Int32Array(tasks[t].reduce((s, x) => s + x.to, 0));
    for (const s of tasks[t]) rows.set(members.rows.subarray(members.offsets[s.cluster], members.offsets[s.cluster] + s.to), s.at);
    await store.write(layout.dedupTaskRows(spec.runId, t), Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength));
  }
  let largestCluster = 0;
  for (let j = 0; j < spec.k; j++) largestCluster = Math.max(largestCluster, members.offsets[j + 1] - members.offsets[j]);
  const file: DedupPlanFile = { totals, records: records.n, members: members.rows.length, largestCluster, tasks };
  await store.write(layout.dedupPlan(spec.runId), JSON.stringify(file));
  return file;
}

/** The part holding global record row `g` (the last part whose records start at or before it and that has records). */
function partOfRow(totals: MapTotals, records: number[], g: number): number {
  let lo = 0;
  let hi = totals.offsets.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (totals.offsets[mid] <= g) lo = mid;
    else hi = mid - 1;
  }
  while (lo > 0 && records[lo] === 0) lo--;
  return lo;
}

/** Longest run of consecutive rows read at once (bytes cap the read buffer). */
const MAX_RUN_BYTES = 1 << 20;

/**
 * The float32 embeddings of global record rows `rows` (in that order), read with positional reads
 * from the parts' .npy files, consecutive rows coalesced into one read.
 */
async function gatherRows(ctx: RunContext, totals: MapTotals, rows: Int32Array, signal?: AbortSignal): Promise<Float32Array> {
  const { spec } = ctx;
  const source = ctx.source as EmbeddingSourcePlan;
  const dim = spec.dim;
  const records = spec.parts.map((p, i) => (totals.failed[i] === undefined ? p.rows : 0));
  const out = new Float32Array(rows.length * dim);
  const order = Array.from(rows.keys()).sort((a, b) => rows[a] - rows[b]);
  let i = 0;
  while (i < order.length) {
    const p = partOfRow(totals, records, rows[order[i]]);
    const part = source.parts[p];
    if (part.npzMember !== undefined) throw new DbpruneError(ErrorCodes.INTERNAL, `${part.npy}: SemDeDup on the cluster reads .npy parts only`, { file: part.npy });
    const h = part.header;
    const end = totals.offsets[p] + part.rows;
    const maxRun = Math.max(1, Math.floor(MAX_RUN_BYTES / h.rowBytes));
    const fh = await openRandomAccess(part.npy, signal);
    try {
      while (i < order.length && rows[order[i]] < end) {
        throwIfAborted(signal);
        const first = rows[order[i]];
        let j = i;
        while (j + 1 < order.length && rows[order[j + 1]] <= rows[order[j]] + 1 && rows[order[j + 1]] < end && rows[order[j + 1]] - first < maxRun) j++;
        const count = rows[order[j]] - first + 1;
        const bytes = new Uint8Array(count * h.rowBytes);
        const local = first - totals.offsets[p];
        const got = await fh.read(bytes, h.headerBytes + local * h.rowBytes, signal);
        if (got < bytes.length) throw new DbpruneError(ErrorCodes.NPY_TRUNCATED, `${part.npy}: file ends before row ${local + count - 1}`, { file: part.npy, row: local + Math.floor(got / h.rowBytes) });
        const block = new Float32Array(count * dim);
        npyElementsToFloat32(h.dtype, bytes, count * dim, block);
        for (let t = i; t <= j; t++) out.set(block.subarray((rows[order[t]] - first) * dim, (rows[order[t]] - first + 1) * dim), order[t] * dim);
        i = j + 1;
      }
    } finally {
      await fh.close();
    }
  }
  return out;
}

const scratch: ArgmaxDot = { best: -Infinity, arg: -1 };

/**
 * Scores items [from, to) of one cluster (`emb`: its members [0, to) in dedup order, unit rows) by
 * the rule of `semDedupCluster` in src/core/semdedup.ts, which scores a whole cluster: same float64
 * dot products, same earliest-index argmax, same "> 0" floor. Adds the removals to `result`.
 */
function scoreSlice(emb: Float32Array, rows: Int32Array, slice: DedupSlice, dim: number, eps: number[], result: DedupResult, signal?: AbortSignal): void {
  const thr = eps.map((e) => 1 - e);
  const q = new Float64Array(dim);
  for (let j = Math.max(1, slice.from); j < slice.to; j++) {
    if ((j & 63) === 0) throwIfAborted(signal);
    for (let t = 0; t < dim; t++) q[t] = emb[j * dim + t];
    const r = argmaxDot(q, emb, j, dim, scratch);
    if (!(r.best > 0)) continue;
    for (let e = 0; e < thr.length; e++) if (r.best > thr[e]) result.removed[e]++;
    if (r.best > thr[0]) result.duplicates.push([rows[j], rows[r.arg]]);
  }
}

/** Runs (or skips, when already done) dedup task `t`. Returns whether it computed and the items it scored. */
export async function dedupTask(ctx: RunContext, t: number, signal?: AbortSignal): Promise<{ computed: boolean; items: number }> {
  const { spec, store } = ctx;
  const plan = await readRunJson<DedupPlanFile>(store, layout.dedupPlan(spec.runId));
  const task = plan.tasks[t];
  if (!task) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `run ${spec.runId} has no dedup task ${t}`, { runId: spec.runId, task: t });
  const items = task.reduce((s, x) => s + x.to - x.from, 0);
  if (await readPartFiles(store, layout.dedupDone(spec.runId, t))) return { computed: false, items };
  const buf = await store.read(layout.dedupTaskRows(spec.runId, t));
  const all = new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const eps = (spec.dedup as DedupSpec).eps;
  const result: DedupResult = { removed: eps.map(() => 0), duplicates: [] };
  for (const slice of task) {
    const rows = all.subarray(slice.at, slice.at + slice.to);
    const emb = await gatherRows(ctx, plan.totals, rows, signal);
    normalizeRows(emb, rows.length, spec.dim);
    scoreSlice(emb, rows, slice, spec.dim, eps, result, signal);
  }
  await writePartFiles(store, { [layout.dedupResult(spec.runId, t)]: JSON.stringify(result) }, layout.dedupDone(spec.runId, t));
  return { computed: true, items };
}

/** Keys of the rows that duplicates point to: one keys-only pass over each part holding such rows. */
async function targetKeys(ctx: RunContext, totals: MapTotals, targets: Set<number>, signal?: AbortSignal): Promise<Map<number, string>> {
  const byPart = new Map<number, number>();
  const records = ctx.spec.parts.map((p, i) => (totals.failed[i] === undefined ? p.rows : 0));
  for (const g of targets) byPart.set(partOfRow(totals, records, g), 0);
  const keys = new Map<number, string>();
  for (const p of [...byPart.keys()].sort((a, b) => a - b)) {
    let g = totals.offsets[p];
    for await (const refs of partRefBatches(ctx.source as EmbeddingSourcePlan, p, { batchRows: DECIDE_BATCH_ROWS, signal })) {
      for (const ref of refs) {
        if (targets.has(g)) keys.set(g, ref.key);
        g++;
      }
    }
  }
  return keys;
}

/**
 * The dedup merge: applies every task's removals, writes each part's duplicate file, and plans the
 * run from the statistics of the rows that remain (plan.json, written last).
 * @throws ERR_DBPRUNE_CLUSTER_JOB when a dedup task failed for good (its clusters cannot be decided exactly).
 */
export async function mergeDedup(ctx: RunContext, failures: Map<number, string>, signal?: AbortSignal): Promise<void> {
  const { spec, store } = ctx;
  if (failures.size > 0) {
    const [t, reason] = [...failures][0];
    throw new DbpruneError(ErrorCodes.CLUSTER_JOB, `dedup task ${t} of run ${spec.runId} failed for good: ${reason}`, { runId: spec.runId, task: t });
  }
  const plan = await readRunJson<DedupPlanFile>(store, layout.dedupPlan(spec.runId));
  const eps = (spec.dedup as DedupSpec).eps;
  const removed = eps.map(() => 0);
  const duplicateOf = new Map<number, number>();
  for (let t = 0; t < plan.tasks.length; t++) {
    const files = await readPartFiles(store, layout.dedupDone(spec.runId, t));
    if (!files) throw new DbpruneError(ErrorCodes.CLUSTER_WORK_DIR, `dedup task ${t} of run ${spec.runId} left no verified output`, { runId: spec.runId, task: t });
    const r = JSON.parse((files.get(layout.dedupResult(spec.runId, t)) as Buffer).toString('utf8')) as DedupResult;
    r.removed.forEach((x, e) => (removed[e] += x));
    for (const [row, of] of r.duplicates) duplicateOf.set(row, of);
  }
  const records = await readAllRecords(ctx, plan.totals);
  for (const row of duplicateOf.keys()) records.cluster[row] = -2 - records.cluster[row];
  const acc = new ClusterAccumulator(spec.k);
  acc.add(records.cluster, records.distance, records.n);
  const keys = await targetKeys(ctx, plan.totals, new Set(duplicateOf.values()), signal);
  const sorted = [...duplicateOf.keys()].sort((a, b) => a - b);
  let s = 0;
  for (let p = 0; p < spec.parts.length; p++) {
    if (plan.totals.failed[p] !== undefined) continue;
    const end = plan.totals.offsets[p] + spec.parts[p].rows;
    const file: DedupPartFile = { rows: [], of: [] };
    for (; s < sorted.length && sorted[s] < end; s++) {
      file.rows.push(sorted[s] - plan.totals.offsets[p]);
      file.of.push(keys.get(duplicateOf.get(sorted[s]) as number) ?? null);
    }
    await store.write(layout.dedupPart(spec.runId, p), JSON.stringify(file));
  }
  const keptFraction = removed.map((r) => (plan.members === 0 ? 1 : (plan.members - r) / plan.members));
  await writePlan(ctx, acc, plan.totals, { eps, removed, keptFraction, members: plan.members, largestCluster: plan.largestCluster, tasks: plan.tasks.length });
}
