/**
 * The body of one {@link AssignPool} worker thread: normalise (optionally), screen and assign the
 * rows of the batches it is sent, with its own {@link NearestCentroid} (its own ORT sessions). No
 * exports: started by assign-pool.ts as a worker entry. The same functions as on the main thread
 * (normalizeRows, NearestCentroid) do the work, so results are bit-identical to an in-thread run.
 */
import { parentPort } from 'node:worker_threads';
import { NearestCentroid } from './nearest-centroid.js';
import { normalizeRows } from '../core/vector.js';
import type { AssignPoolInit, AssignPoolReply, AssignPoolRequest } from './assign-pool.js';

/** Row codes of the screen: why a row cannot be assigned. */
const SCREEN_NOT_FINITE = 1;
const SCREEN_ZERO = 2;

/** screen[i] = 1 (NaN/Inf) or 2 (zero vector) for rows that cannot be assigned; null when none. */
function screenRows(x: Float32Array, n: number, dim: number): Uint8Array | null {
  let screen: Uint8Array | null = null;
  for (let i = 0; i < n; i++) {
    const o = i * dim;
    let s = 0;
    for (let t = 0; t < dim; t++) s += x[o + t] * x[o + t];
    if (!Number.isFinite(s) || s === 0) {
      screen ??= new Uint8Array(n);
      screen[i] = s === 0 ? SCREEN_ZERO : SCREEN_NOT_FINITE;
    }
  }
  return screen;
}

const port = parentPort;
if (!port) throw new Error('assign-worker.ts runs only as a worker thread');
let nearest: NearestCentroid | null = null;
let dim = 0;

async function handle(m: AssignPoolRequest): Promise<void> {
  const { x, n } = m;
  let renormalized = 0;
  let invalid: Uint8Array | null = null;
  let screen: Uint8Array | null = null;
  if (m.normalize !== undefined) {
    const r = normalizeRows(x, n, dim, m.normalize);
    renormalized = r.renormalized;
    invalid = r.invalid;
    // A row normalizeRows accepts had a finite, non-zero norm and is now of unit length: the
    // screen below would pass it, so it is skipped (its sums would only cost time).
  } else if (m.screen) {
    screen = screenRows(x, n, dim);
  }
  const cluster = new Int32Array(n);
  const distance = new Float32Array(n);
  if (n > 0) await (nearest as NearestCentroid).assign(x, n, { cluster, distance });
  const bad = invalid ?? screen;
  if (bad) {
    for (let i = 0; i < n; i++) {
      if (bad[i]) {
        cluster[i] = -1;
        distance[i] = NaN;
      }
    }
  }
  const reply: AssignPoolReply = { id: m.id, x, cluster, distance, renormalized, invalid, screen };
  const transfer: ArrayBuffer[] = [x.buffer as ArrayBuffer, cluster.buffer, distance.buffer];
  port?.postMessage(reply, transfer);
}

port.on('message', (m: AssignPoolInit | AssignPoolRequest | { type: 'close' }) => {
  if ('type' in m && m.type === 'init') {
    dim = m.dim;
    NearestCentroid.create(m.centroids, m.k, m.dim, { backend: 'ort', threads: m.threads, batchRows: m.batchRows, int8: true, inThread: true }).then(
      (nc) => {
        nearest = nc;
        port.postMessage({ type: 'ready' });
      },
      (e: unknown) => port.postMessage({ type: 'ready', error: String((e as Error)?.stack ?? e) }),
    );
    return;
  }
  if ('type' in m && m.type === 'close') {
    void (nearest?.dispose() ?? Promise.resolve()).finally(() => port.close());
    return;
  }
  const req = m;
  handle(req).catch((e: unknown) => {
    port.postMessage({ id: req.id, error: String((e as Error)?.stack ?? e), x: req.x }, [req.x.buffer as ArrayBuffer]);
  });
});
