/** The flags `prune` and `run` share: the DBP parameters, the DataComp flags, output format, SemDeDup, report and quiet. */
import type { Command } from 'commander';
import type { ManifestFormat } from '../io/manifest.js';
import { MANIFEST_FORMATS } from './choices.js';
import { addDataCompOptions, type DataCompFlags } from './datacomp-options.js';
import { addDbpParamOptions, parseChoice, parseEps, type DbpParamFlags } from './options.js';

/** Values of {@link addDecisionFlags}. */
export interface DecisionFlags extends DbpParamFlags, DataCompFlags {
  format: ManifestFormat;
  dedupEps?: number[];
  report: boolean;
  quiet?: boolean;
}

/** Adds the flags of {@link DecisionFlags} to `cmd`. */
export function addDecisionFlags(cmd: Command): Command {
  return addDataCompOptions(addDbpParamOptions(cmd))
    .option('--format <fmt>', `manifest format: ${MANIFEST_FORMATS.join(' | ')}`, parseChoice('--format', MANIFEST_FORMATS), 'parquet')
    .option('--dedup-eps <eps>', 'SemDeDup before DBP: ε (comma-separated list: the first decides, all are reported)', parseEps)
    .option('--no-report', 'do not write report.html')
    .option('-q, --quiet', 'no progress on stderr');
}
