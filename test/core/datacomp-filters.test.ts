/**
 * DataComp's threshold rule and basic-filter conditions against hand-checked cases and against the
 * numpy reference (scripts/datacomp-reference.py) on the bundled sample; the streaming running
 * threshold's fidelity to the exact rule, measured.
 */
import { describe, expect, it } from 'vitest';
import { basicFilterFailure, clipScoreTopThreshold, pythonCharCount, pythonWordCount, RunningTopThreshold } from '../../src/core/datacomp-filters.js';
import { Rng } from '../../src/core/rng.js';
import { loadDataCompColumns, loadDataCompExpected } from '../helpers/datacomp.js';

describe('clipScoreTopThreshold (the reference rule)', () => {
  it('takes sorted_desc[int(N·f)] and keeps every tie at it (hand-checked)', () => {
    const s = Float64Array.from([0.5, 0.3, 0.3, 0.3, 0.1, 0.9, 0.2, 0.3, 0.7, 0.4]);
    // desc: 0.9 0.7 0.5 0.4 0.3 0.3 0.3 0.3 0.2 0.1; f = 0.3 → n = 3 → t = 0.4 → keeps 4 rows
    expect(clipScoreTopThreshold(s, 0.3)).toEqual({ threshold: 0.4, n: 3 });
    // f = 0.5 → n = 5 → t = 0.3 → keeps 8 rows (four tied at 0.3), not 5
    const t = clipScoreTopThreshold(s, 0.5).threshold;
    expect(t).toBe(0.3);
    expect([...s].filter((x) => x >= t).length).toBe(8);
    // int() truncates: 10 · 0.29 = 2.9 → n = 2 → t = 0.5
    expect(clipScoreTopThreshold(s, 0.29)).toEqual({ threshold: 0.5, n: 2 });
  });

  it('sorts NaN last as numpy does; f = 1 keeps every non-NaN score', () => {
    const s = Float64Array.from([0.2, NaN, 0.4, NaN]);
    expect(clipScoreTopThreshold(s, 0.25).threshold).toBe(0.2); // desc 0.4 0.2 NaN NaN, n = 1
    expect(clipScoreTopThreshold(s, 0.5).threshold).toBeNaN(); // n = 2 → NaN → nothing passes ≥
    expect(clipScoreTopThreshold(s, 1).threshold).toBe(-Infinity);
  });

  it('compares float32 column values exactly (no rounding to float64 decimals)', () => {
    const a = Math.fround(0.323);
    const s = Float64Array.from([a, Math.fround(0.3230001), 0.1, a]);
    const { threshold } = clipScoreTopThreshold(s, 0.25); // n = 1 → second largest = a
    expect(threshold).toBe(a);
    expect([...s].filter((x) => x >= threshold).length).toBe(3);
  });

  it('equals numpy on the sample pool for every fraction, ties included', () => {
    const exp = loadDataCompExpected();
    const cols = loadDataCompColumns();
    const scores = Float64Array.from(cols.clip_l14_similarity_score);
    let ties = 0;
    for (const [f, want] of Object.entries(exp.clip_top)) {
      const got = clipScoreTopThreshold(scores, Number(f));
      expect(got.n).toBe(want.n);
      expect(got.threshold).toBe(want.threshold);
      const kept = cols.uid.filter((_, i) => scores[i] >= got.threshold).sort();
      expect(kept).toEqual(want.kept);
      ties = Math.max(ties, want.ties_at_threshold);
    }
    expect(ties).toBeGreaterThan(1); // the fixture does exercise ties
  });
});

describe('basic filter conditions', () => {
  it('counts words and characters as Python does', () => {
    expect(pythonWordCount('  a\tb\x1cc\u3000d  ')).toBe(4); // \x1c and U+3000 are str.isspace()
    expect(pythonCharCount('😀😀😀ab')).toBe(5); // code points, not UTF-16 units
    expect(basicFilterFailure('😀 😀 x', 640, 480)).toBe('caption'); // 3 words but 5 chars
    expect(basicFilterFailure('a red dog', 640, 480)).toBeUndefined();
    expect(basicFilterFailure('a red dog', 199, 480)).toBe('size');
    expect(basicFilterFailure('a red dog', 200, 600)).toBeUndefined(); // aspect exactly 3 passes
    expect(basicFilterFailure('a red dog', 200, 601)).toBe('aspect');
    expect(basicFilterFailure(null, 640, 480)).toBe('caption');
  });

  it('equals numpy on the sample pool (no-language variant)', () => {
    const exp = loadDataCompExpected();
    const cols = loadDataCompColumns();
    const kept = cols.uid.filter((_, i) => basicFilterFailure(cols.text[i], cols.original_width[i], cols.original_height[i]) === undefined).sort();
    expect(kept).toEqual(exp.basic_no_language);
  });
});

describe('RunningTopThreshold (streaming --clip-score-top)', () => {
  it('thresholds on the float64 scores themselves (a float32 reservoir dropped the row at t)', () => {
    const s = Float64Array.from({ length: 10 }, (_, i) => 0.1 + i * 0.01); // not float32-representable
    const running = new RunningTopThreshold(0.3, { capacity: 100 });
    running.observe(s);
    const exact = clipScoreTopThreshold(s, 0.3).threshold;
    expect(running.threshold).toBe(exact);
    expect([...s].filter((x) => x >= running.threshold).length).toBe(4);
  });


  it('keeps close to the exact set on shuffled input (fidelity measured)', () => {
    const rng = new Rng(5);
    const n = 200_000;
    const scores = Float64Array.from({ length: n }, () => Math.fround(Math.round((0.2 + 0.06 * rng.normal()) * 1000) / 1000));
    const exact = clipScoreTopThreshold(scores, 0.3).threshold;
    const warmup = 10_000;
    const running = new RunningTopThreshold(0.3, { capacity: 100_000, every: 4096, seed: 1 });
    let kept = 0;
    let both = 0;
    let exactKept = 0;
    const batch = 2048;
    for (let s = 0; s < n; s += batch) {
      const chunk = scores.subarray(s, Math.min(n, s + batch));
      running.observe(chunk);
      if (s + chunk.length <= warmup) continue;
      // rows after the warm-up decided with the running threshold; warm-up rows with the threshold at its end
      for (let i = 0; i < chunk.length; i++) {
        const k = chunk[i] >= running.threshold;
        const e = chunk[i] >= exact;
        if (k) kept++;
        if (e) exactKept++;
        if (k && e) both++;
      }
    }
    const decided = n - warmup;
    const jaccard = both / (kept + exactKept - both);
    // Measured (seed 5): keep fraction within 0.01 of the exact rule's, Jaccard ≥ 0.95.
    expect(Math.abs(kept / decided - exactKept / decided)).toBeLessThan(0.01);
    expect(jaccard).toBeGreaterThan(0.95);
  });
});
