/**
 * The jobs of a distributed run as they travel through BullMQ: small payloads naming the work dir,
 * the run and the part (everything else is in `<runId>/run.json`), deterministic job ids, and the
 * phases in order. Each phase is one BullMQ flow: a `part` job per input part, and a `merge`
 * parent that runs once all of them finished (failed-for-good children are ignored, so the merge
 * can turn them into error rows).
 */
export type Phase = 'map' | 'dedup' | 'select' | 'decide';

export interface ClusterJobData {
  workDir: string;
  runId: string;
  phase: Phase;
  /** Select round, 1-based. */
  round?: number;
  /** Part index (part jobs only; a dedup task's index in the dedup phase). */
  part?: number;
}

/** What a part job returns (progress on the submitter's side). */
export interface PartJobResult {
  part: number;
  rows: number;
  /** False when the part was already done (a retried or resumed job). */
  computed: boolean;
  ms: number;
}

export const PART_JOB = 'part';
export const MERGE_JOB = 'merge';

/** `map`, `select2`, `decide`: the phase as it appears in job ids. */
export function phaseKey(phase: Phase, round?: number): string {
  return phase === 'select' ? `select${round}` : phase;
}

/** Job ids: `<runId>.<phase>` for the merge, `<runId>.<phase>.<part>` for a part (BullMQ ids may not hold ':'). */
export function mergeJobId(runId: string, phase: Phase, round?: number): string {
  return `${runId}.${phaseKey(phase, round)}`;
}

export function partJobId(runId: string, phase: Phase, part: number, round?: number): string {
  return `${mergeJobId(runId, phase, round)}.${String(part).padStart(6, '0')}`;
}

/** The part index of a part job id or a BullMQ job key (`bull:queue:<id>`), or undefined. */
export function partOfJobId(id: string): number | undefined {
  const m = /\.(\d{6})$/.exec(id);
  return m ? Number(m[1]) : undefined;
}
