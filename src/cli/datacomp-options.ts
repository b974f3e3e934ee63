/** The DataComp flags of `prune` and `run`: input shards, embedding member, and the filters. */
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import type { DataCompFilterOptions } from '../../pipelines/datacomp-filters.js';
import { CLIP_SCORE_TOWERS } from './choices.js';
import { parseChoice, parseNumber } from './options.js';

export interface DataCompFlags {
  datacomp?: string[];
  embeddingKey: string;
  clipScoreMin?: number;
  clipScoreTop?: number;
  clipScoreCol?: string;
  clipScoreFrom?: (typeof CLIP_SCORE_TOWERS)[number];
  basicFilter?: boolean;
  basicFilterNoLanguage?: boolean;
  textModel?: string;
}

export function addDataCompOptions(cmd: Command): Command {
  return cmd
    .option('--datacomp <dir...>', 'DataComp shards: a folder or globs of NNNNNNNN.parquet (+ NNNNNNNN.npz beside them); uid is the key')
    .option('--embedding-key <member>', 'npz member embedded rows come from: l14_img | b32_img', 'l14_img')
    .option('--clip-score-min <t>', 'keep CLIP score ≥ t (DataComp --threshold)', parseNumber('--clip-score-min'))
    .option('--clip-score-top <f>', "keep the top fraction f by CLIP score (the reference rule: t = sorted_desc[int(N·f)], keep ≥ t)", parseNumber('--clip-score-top', { min: 0, exclusiveMin: true, max: 1 }))
    .option('--clip-score-col <name>', 'score column (default clip_l14_similarity_score)')
    .option('--clip-score-from <tower>', `compute the score as cosine(<tower>_img, <tower>_txt) from the npz: ${CLIP_SCORE_TOWERS.join(' | ')}`, parseChoice('--clip-score-from', CLIP_SCORE_TOWERS))
    .option('--basic-filter', "DataComp's basic filter: English caption, > 2 words, > 5 chars, min side ≥ 200, aspect ≤ 3")
    .option('--basic-filter-no-language', 'the basic filter without the English test')
    .option('--text-model <dir>', 'run with images: CLIP text tower (onnx/text_model.onnx + tokenizer.json) scoring cosine(image, caption) for --clip-score-min/--clip-score-top');
}

/** The DataComp part of the pipeline options from the flags; UsageError for contradictions. */
export function dataCompFrom(o: DataCompFlags): { datacomp?: string[]; embeddingKey?: string; filters?: DataCompFilterOptions } {
  if (o.basicFilter && o.basicFilterNoLanguage) throw new UsageError('give one of --basic-filter and --basic-filter-no-language', { option: 'basic-filter' });
  if (o.clipScoreMin !== undefined && o.clipScoreTop !== undefined) throw new UsageError('give one of --clip-score-min and --clip-score-top', { option: 'clip-score-min' });
  if (o.clipScoreCol !== undefined && o.clipScoreFrom !== undefined) throw new UsageError('give one of --clip-score-col and --clip-score-from', { option: 'clip-score-col' });
  const scoring = o.clipScoreMin !== undefined || o.clipScoreTop !== undefined;
  if (!scoring && (o.clipScoreCol !== undefined || o.clipScoreFrom !== undefined)) throw new UsageError('--clip-score-col/--clip-score-from need --clip-score-min or --clip-score-top', { option: 'clip-score-col' });
  const filtering = scoring || o.basicFilter || o.basicFilterNoLanguage;
  if (o.textModel !== undefined) {
    if (o.datacomp) throw new UsageError('--text-model scores images; with --datacomp use the score column or --clip-score-from', { option: 'text-model' });
    if (!scoring || o.basicFilter || o.basicFilterNoLanguage || o.clipScoreCol || o.clipScoreFrom) {
      throw new UsageError('--text-model goes with --clip-score-min or --clip-score-top only', { option: 'text-model' });
    }
    return {};
  }
  if (filtering && !o.datacomp) throw new UsageError('the DataComp filters need --datacomp (or --text-model with images)', { option: 'datacomp' });
  if (!o.datacomp) return {};
  const filters: DataCompFilterOptions = {};
  if (o.basicFilter) filters.basic = 'full';
  if (o.basicFilterNoLanguage) filters.basic = 'no-language';
  if (scoring) {
    filters.clipScore = {
      min: o.clipScoreMin,
      top: o.clipScoreTop,
      column: o.clipScoreCol,
      from: o.clipScoreFrom,
      force: o.clipScoreFrom !== undefined,
    };
  }
  return { datacomp: o.datacomp, embeddingKey: o.embeddingKey, filters };
}
