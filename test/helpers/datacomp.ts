/** The bundled DataComp-shaped sample and its numpy reference (scripts/datacomp-reference.py). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './fixture.js';

export const dataCompDir = join(repoRoot, 'data-samples', 'datacomp');
export const dataCompShards = ['00000000', '00000001', '00000002'].map((n) => ({ name: n, parquet: join(dataCompDir, `${n}.parquet`), npz: join(dataCompDir, `${n}.npz`) }));

export interface DataCompExpected {
  clip_top: Record<string, { n: number; threshold: number; kept: string[]; ties_at_threshold: number }>;
  cosine_top: Record<string, { n: number; threshold: number; kept: string[] }>;
  cosine_l14: number[];
  cosine_b32: number[];
  basic_no_language: string[];
  'basic_no_language_and_clip_top_0.3': string[];
  'kept_uids_clip_top_0.3': [string, string][];
}

export function loadDataCompExpected(): DataCompExpected {
  return JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'datacomp', 'expected.json'), 'utf8')) as DataCompExpected;
}

export interface DataCompColumnsFixture {
  shard: string[];
  uid: string[];
  text: string[];
  original_width: number[];
  original_height: number[];
  clip_l14_similarity_score: number[];
  clip_b32_similarity_score: number[];
}

export function loadDataCompColumns(): DataCompColumnsFixture {
  return JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'datacomp', 'columns.json'), 'utf8')) as DataCompColumnsFixture;
}
