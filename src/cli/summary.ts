/** The short human summary printed at the end of `prune` / `run`. */
import type { RunStats } from '../io/stats.js';
import { fmtInt } from './progress.js';

export function formatSummary(stats: RunStats, files: Record<string, string | string[] | undefined>): string {
  const t = stats.totals;
  const errors = Object.entries(t.errors)
    .map(([r, n]) => `${r} ${fmtInt(n)}`)
    .join(', ');
  const c = stats.clusters;
  const order = c.complexity.map((_, j) => j).filter((j) => c.n[j] > 0);
  order.sort((a, b) => c.complexity[b] - c.complexity[a]);
  const show = (j: number): string => `#${j} (n ${fmtInt(c.n[j])}, C ${c.complexity[j].toFixed(4)}, kept ${fmtInt(c.kept[j])})`;
  const lines = [
    `dbprune ${stats.mode}: kept ${fmtInt(t.kept)} of ${fmtInt(t.samples)} samples (${(100 * t.keep_ratio).toFixed(1)}%; target ${fmtInt(t.n_target)} of ${fmtInt(t.valid)} valid) in ${t.seconds.toFixed(2)} s, ${fmtInt(Math.round(t.samples_per_sec))} samples/s`,
    `  clusters: k ${t.k}, ${order.length} non-empty; most complex ${order.slice(0, 3).map(show).join(', ')}`,
    `  least complex ${order.slice(-2).map(show).join(', ')}`,
    `  errors: ${errors || 'none'}; duplicates: ${fmtInt(t.duplicates)}; re-normalised rows: ${fmtInt(t.renormalized)}`,
    ...Object.entries(files)
      .filter(([, p]) => p !== undefined && p.length > 0)
      .map(([name, p]) => (Array.isArray(p) ? `  ${name}: ${p.length} files, ${p[0]} …` : `  ${name}: ${p}`)),
  ];
  return `${lines.join('\n')}\n`;
}
