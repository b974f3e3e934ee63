#!/usr/bin/env python3
"""Independent numpy reference for dbprune's DataComp filters (test/io/datacomp*.test.ts).

Reads data-samples/datacomp/*.npz with np.load and test/fixtures/datacomp/columns.json (the
parquet's filter columns, written by scripts/make-datacomp-sample.ts, since pyarrow is not
available here) and writes test/fixtures/datacomp/expected.json with, following
mlfoundations/datacomp baselines/filters.py:
  - clip_top[f]: n = int(len * f), t = -np.sort(-scores)[n], kept uids (score >= t), ties at t;
    over the float32 clip_l14_similarity_score column;
  - cosine_l14 / cosine_b32: cosine(img, txt) from the float16 npz members, in float64;
  - cosine_top: the same rule over the computed l14 cosine;
  - basic_no_language: > 2 words (str.split), > 5 chars, min side >= 200, max/min <= 3;
  - basic_no_language_and_clip_top_0.3: the intersection (DataComp intersects uid sets);
  - kept_uids_clip_top_0.3: the sorted u8,u8 subset as [upper, lower] decimal strings.
Run: python3 scripts/datacomp-reference.py
"""
import glob
import json
import os

import numpy as np

root = os.path.join(os.path.dirname(__file__), '..')
cols = json.load(open(os.path.join(root, 'test/fixtures/datacomp/columns.json')))
uids = np.array(cols['uid'])
l14 = np.array(cols['clip_l14_similarity_score'], dtype=np.float32)


def top(scores, f):
    n = int(len(scores) * f)
    t = -np.sort(-scores)[n] if n < len(scores) else -np.inf
    keep = scores >= t
    return n, t, keep


out = {'clip_top': {}, 'cosine_top': {}}
for f in [0.1, 0.25, 0.3, 0.5, 0.9]:
    n, t, keep = top(l14, f)
    out['clip_top'][str(f)] = {'n': n, 'threshold': float(t), 'kept': sorted(uids[keep].tolist()), 'ties_at_threshold': int((l14 == t).sum())}

cos = {'l14': [], 'b32': []}
for path in sorted(glob.glob(os.path.join(root, 'data-samples/datacomp/*.npz'))):
    z = np.load(path)
    for tower in ('l14', 'b32'):
        a = z[f'{tower}_img'].astype(np.float64)
        b = z[f'{tower}_txt'].astype(np.float64)
        cos[tower].extend(((a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))).tolist())
out['cosine_l14'] = cos['l14']
out['cosine_b32'] = cos['b32']
c14 = np.array(cos['l14'])
for f in [0.3]:
    n, t, keep = top(c14, f)
    out['cosine_top'][str(f)] = {'n': n, 'threshold': float(t), 'kept': sorted(uids[keep].tolist())}

text = cols['text']
w = np.array(cols['original_width'], dtype=np.int64)
h = np.array(cols['original_height'], dtype=np.int64)
words = np.array([len(t.split()) for t in text])
chars = np.array([len(t) for t in text])
lo = np.minimum(w, h)
hi = np.maximum(w, h)
basic = (words > 2) & (chars > 5) & (lo >= 200) & (hi / lo <= 3.0)
out['basic_no_language'] = sorted(uids[basic].tolist())
_, _, keep30 = top(l14, 0.3)
out['basic_no_language_and_clip_top_0.3'] = sorted(uids[basic & keep30].tolist())

sub = np.array([(int(u[:16], 16), int(u[16:32], 16)) for u in uids[keep30]], np.dtype('u8,u8'))
sub.sort()
out['kept_uids_clip_top_0.3'] = [[str(a), str(b)] for a, b in sub.tolist()]

with open(os.path.join(root, 'test/fixtures/datacomp/expected.json'), 'w') as fh:
    json.dump(out, fh)
print({f: (v['n'], v['threshold'], len(v['kept']), v['ties_at_threshold']) for f, v in out['clip_top'].items()}, int(basic.sum()))
