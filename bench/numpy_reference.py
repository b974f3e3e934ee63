#!/usr/bin/env python3
"""The exact DBP in numpy: the baseline `npm run bench` times `dbprune prune` / `dbprune run` against.

Same method as pipelines/exact-prune.ts (Abbas et al., ICLR 2024), written the way a numpy user
would: embeddings mmap'd with np.load, L2-normalised and assigned by a float32 matmul + argmax in
65,536-row blocks, per-cluster statistics with bincount, d_inter from the centroid Gram matrix,
softmax(C/tau), quotas by water-filling (projection onto the box-constrained simplex) with
largest-remainder rounding, per-cluster selection of the hardest (largest-distance) members, and the
kept keys written one per line.

Usage: python3 bench/numpy_reference.py EMB.npy CENTROIDS.npy KEYS.txt KEEP OUT_KEYS.txt
Prints one JSON line: {"kept": ..., "n": ...}. numpy is not a dependency of the project: the
bench skips this baseline when `python3 -c 'import numpy'` fails.
"""
import json
import sys

import numpy as np

BLOCK = 65_536


def water_fill(a, lb, ub, total):
    """x = clip(a - lam, lb, ub) with sum(x) = total, lam found by bisection on the breakpoints."""
    bp = np.sort(np.concatenate([a - ub, a - lb]))
    f = lambda lam: np.clip(a - lam, lb, ub).sum()
    lo, hi = 0, len(bp) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if f(bp[mid]) >= total:
            lo = mid
        else:
            hi = mid - 1
    left = bp[lo]
    right = bp[lo + 1] if lo + 1 < len(bp) else bp[-1] + 1
    v = a - (left + right) / 2
    free = (v > lb) & (v < ub)
    clamped = np.where(v <= lb, lb, 0).sum() + np.where(v >= ub, ub, 0).sum()
    lam = (a[free].sum() + clamped - total) / free.sum() if free.any() else left
    return np.clip(a - lam, lb, ub)


def main():
    emb_path, cent_path, keys_path, keep, out_path = sys.argv[1:6]
    keep = float(keep)
    x = np.load(emb_path, mmap_mode="r")
    c = np.asarray(np.load(cent_path), dtype=np.float32)
    c = c / np.linalg.norm(c, axis=1, keepdims=True)
    n, k = x.shape[0], c.shape[0]
    ct = np.ascontiguousarray(c.T)
    c64 = c.astype(np.float64)
    cluster = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float32)  # float64 delta stored as float32, as dbprune
    for s in range(0, n, BLOCK):
        b = np.array(x[s : s + BLOCK], dtype=np.float32)
        norm = np.sqrt(np.einsum("ij,ij->i", b, b, dtype=np.float64))
        off = np.abs(norm - 1) > 1e-4  # rows already unit stay bit-identical, as in dbprune
        b[off] /= norm[off, None].astype(np.float32)
        j = (b @ ct).argmax(axis=1)
        cluster[s : s + BLOCK] = j
        # delta = 1 - <x, c_j> in float64 (float32 1 - cos is too coarse to rank tight clusters)
        for t in range(0, len(j), 8192):
            bb = b[t : t + 8192].astype(np.float64)
            dist[s + t : s + t + len(bb)] = 1.0 - np.einsum("ij,ij->i", bb, c64[j[t : t + 8192]])

    size = np.bincount(cluster, minlength=k).astype(np.float64)
    d_intra = np.bincount(cluster, weights=dist, minlength=k) / np.maximum(size, 1)
    gram = 1.0 - (c.astype(np.float64) @ c.astype(np.float64).T)
    np.fill_diagonal(gram, np.inf)
    nn = min(20, k - 1)
    d_inter = np.sort(gram, axis=1)[:, :nn].mean(axis=1)
    comp = d_inter * d_intra
    comp[size == 0] = comp[size > 0].mean()
    p = np.exp((comp - comp.max()) / 0.5)
    p /= p.sum()

    n_target = int(np.floor(keep * n))
    m = int(np.floor(n_target / k * 0.5))
    ub = size
    lb = np.maximum(0, np.minimum(m, size - 1))
    real = water_fill(p * n_target, lb, ub, n_target)
    q = np.clip(np.floor(real + 1e-9), lb, ub)
    rest = n_target - int(q.sum())
    if rest > 0:
        frac = real - q
        order = [j for j in np.lexsort((np.arange(k), -frac)) if q[j] < ub[j]]
        q[order[:rest]] += 1
    q = q.astype(np.int64)

    # Hardest members first: sort by (cluster, -distance), take each cluster's first q_j rows.
    order = np.lexsort((-dist, cluster))
    starts = np.concatenate([[0], np.cumsum(np.bincount(cluster, minlength=k))[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, np.bincount(cluster, minlength=k))
    kept = rank < q[cluster]

    keys = np.array(open(keys_path).read().split("\n")[:n])
    with open(out_path, "w") as f:
        f.write("\n".join(keys[kept]))
        f.write("\n")
    print(json.dumps({"kept": int(kept.sum()), "n": int(n), "n_target": n_target}))


if __name__ == "__main__":
    main()
