/**
 * The streaming DataComp filter stages, in the order the paper's pipeline needs them:
 *
 *   dataCompFields → basicFilter → clipScoreFilter   (then normalize → assign → dedup → decide)
 *
 * plus the `filters` section they contribute to stats.json.
 */
import type { Duplex } from 'node:stream';
import { UsageError } from '../src/core/errors.js';
import { basicFilter, type BasicFilterStream } from '../src/stages/basic-filter.js';
import { clipScoreFilter, type ClipScoreFilterStream } from '../src/stages/clip-score-filter.js';
import { dataCompFields } from '../src/stages/datacomp-fields.js';
import { checkDataCompFilters, type DataCompFilterOptions } from './datacomp-filters.js';

export function dataCompFilterStages(opts: { datacomp?: string | string[]; filters?: DataCompFilterOptions; signal?: AbortSignal }): {
  stages: Duplex[];
  stats: () => Record<string, unknown>;
} {
  const f = opts.filters;
  const active = f !== undefined && (f.basic !== undefined || f.clipScore !== undefined);
  if (!active) return { stages: [], stats: () => ({}) };
  checkDataCompFilters(f);
  if (opts.datacomp === undefined) throw new UsageError('the DataComp filters need --datacomp', { option: 'datacomp' });
  const stages: Duplex[] = [dataCompFields({ datacomp: opts.datacomp, score: f.clipScore, signal: opts.signal })];
  let basic: BasicFilterStream | undefined;
  let clip: ClipScoreFilterStream | undefined;
  if (f.basic) stages.push((basic = basicFilter({ language: f.basic === 'full', detect: f.detect, signal: opts.signal })));
  if (f.clipScore) stages.push((clip = clipScoreFilter({ min: f.clipScore.min, top: f.clipScore.top, signal: opts.signal })));
  return {
    stages,
    stats: () => ({
      filters: {
        order: ['basic', 'clip_score', 'semdedup', 'dbp'],
        ...(basic ? { basic: { language: f.basic === 'full' ? 'eld (medium); DataComp used fasttext lid.176' : 'off', dropped: basic.dropped, by_condition: basic.counts } } : {}),
        ...(clip
          ? {
              clip_score: {
                mode: 'streaming',
                rule: f.clipScore?.top !== undefined ? 'running estimate of t = sorted_desc[int(N·f)] over a reservoir of the scores seen; first 10,000 rows held to calibrate' : 'keep score ≥ t',
                fraction: f.clipScore?.top ?? null,
                last_threshold: clip.threshold,
                dropped: clip.dropped,
              },
            }
          : {}),
      },
    }),
  };
}
