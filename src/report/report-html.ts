/**
 * `report.html`: one self-contained page a curator opens after a run — no network at all (a
 * Content-Security-Policy forbids every fetch; SVG, CSS, JS and data are inline, thumbnails are
 * `data:` URLs, fonts are the system's). It reads `stats.json` (any version-1 file: exact or
 * streaming mode, with or without the `report` section of {@link ReportCollector}) and, when
 * present, `thumbnails.json`, and shows:
 *
 * - d_intra against d_inter per cluster (the paper's Figure 2): one SVG point per non-empty cluster
 *   (`circle[data-cluster]`), area by cluster size, colour by keep fraction, with a legend;
 * - per cluster, target quota against realised kept count, clusters sorted by complexity;
 * - for a cluster chosen in a `<select>`: its figures, its δ distribution (kept / dropped) with the
 *   keep threshold, and its kept and dropped thumbnails;
 * - keep ratio over the stream's progress, error counts by reason, throughput, run parameters;
 * - a thumbnail gallery of all clusters, most complex first.
 *
 * Keep threshold per cluster: `clusters.threshold` when the pipeline wrote it (streaming: the last
 * θ_j); otherwise, in exact mode, the smallest kept δ (`hard`) or the largest kept δ (`easy`) from
 * the report section's exact extremes (`report.delta.kept_min` / `kept_max`); `random` has none.
 */
import { joinLocation as join, readLocation } from '../io/storage/index.js';
import { DbpruneError, ErrorCodes, throwIfAborted } from '../core/errors.js';
import { writeFileAtomic, type OutputSet } from '../io/output-set.js';
import type { ReportThumbnails } from './report-data.js';
import type { RunStats } from '../io/stats.js';
import { REPORT_BROWSER_SCRIPT } from './browser-script.js';
import { REPORT_CSS } from './report-style.js';

/** Options of {@link writeReport}: page title (≤ 200 characters), stats.json and thumbnails.json paths (defaults in the output folder). */
export interface WriteReportOptions {
  /** Page title. Default "dbprune report — <outDir's base name>". At most 200 characters. */
  title?: string;
  /** stats.json to read. Default `<outDir>/stats.json`. */
  statsPath?: string;
  /** thumbnails.json to read when it exists. Default `<outDir>/thumbnails.json`; null: none. */
  thumbnailsPath?: string | null;
  /** Write report.html into this output set (the caller commits it) instead of atomically on its own. */
  outputs?: OutputSet;
  signal?: AbortSignal;
}

/**
 * Reads `<outDir>/stats.json` (and `<outDir>/thumbnails.json` when present) and writes the
 * self-contained `<outDir>/report.html` atomically. Returns the report's path.
 *
 * A missing or unreadable thumbnails.json only removes the thumbnails (the page says why).
 *
 * @throws ERR_DBPRUNE_INPUT_NOT_FOUND (context.file) when stats.json does not exist;
 *   ERR_DBPRUNE_INPUT_FORMAT when it is not a version-1 stats.json; ERR_DBPRUNE_ABORTED.
 */
export async function writeReport(outDir: string, opts: WriteReportOptions = {}): Promise<string> {
  const statsPath = opts.statsPath ?? join(outDir, 'stats.json');
  const thumbsPath = opts.thumbnailsPath === undefined ? join(outDir, 'thumbnails.json') : opts.thumbnailsPath;
  throwIfAborted(opts.signal);
  let text: string;
  try {
    text = (await readLocation(statsPath)).toString('utf8');
  } catch (e) {
    const code = (e as { code?: string }).code === ErrorCodes.INPUT_NOT_FOUND ? ErrorCodes.INPUT_NOT_FOUND : ErrorCodes.INPUT_FORMAT;
    throw new DbpruneError(code, `${statsPath}: cannot read stats (${(e as Error).message})`, { file: statsPath }, { cause: e });
  }
  let stats: RunStats;
  try {
    stats = JSON.parse(text) as RunStats;
  } catch (e) {
    throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${statsPath}: not JSON (${(e as Error).message})`, { file: statsPath }, { cause: e });
  }
  checkStats(stats, statsPath);

  let thumbnails: ReportThumbnails | undefined;
  let thumbNote: string | undefined;
  if (thumbsPath !== null) {
    try {
      const t = JSON.parse((await readLocation(thumbsPath)).toString('utf8')) as ReportThumbnails;
      if (t && Array.isArray(t.items)) thumbnails = t;
      else thumbNote = 'thumbnails.json has no items list; thumbnails left out.';
    } catch (e) {
      if ((e as { code?: string }).code !== ErrorCodes.INPUT_NOT_FOUND) thumbNote = `thumbnails.json could not be read (${(e as Error).message}); thumbnails left out.`;
    }
  }
  throwIfAborted(opts.signal);
  const base = outDir.replace(/[/\\]+$/, '').split(/[/\\]/).pop() || outDir;
  const title = (opts.title ?? `dbprune report — ${base}`).slice(0, 200);
  const html = renderReportHtml(stats, thumbnails, { title, thumbnailsNote: thumbNote });
  const path = join(outDir, 'report.html');
  if (opts.outputs) return opts.outputs.writeFile(path, html);
  return writeFileAtomic(path, html);
}

function checkStats(s: RunStats, file: string): void {
  const bad = (why: string): never => {
    throw new DbpruneError(ErrorCodes.INPUT_FORMAT, `${file}: not a dbprune stats.json (${why})`, { file });
  };
  if (!s || typeof s !== 'object') bad('not an object');
  if (s.version !== 1) bad(`version ${JSON.stringify(s.version)}, expected 1`);
  if (!s.totals || typeof s.totals !== 'object') bad('no totals');
  if (!s.clusters || !Array.isArray(s.clusters.n)) bad('no clusters.n');
  const k = s.clusters.n.length;
  for (const col of ['d_intra', 'd_inter', 'complexity', 'quota', 'kept'] as const) {
    const v = s.clusters[col];
    if (!Array.isArray(v) || v.length !== k) bad(`clusters.${col} is not an array of length ${k}`);
  }
}

/** Serialises data for an inline `<script type="application/json">`: no `<` can close the tag. */
function inlineJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A warning under the title when streaming decisions rested on a calibration that disagrees with the stream. */
function calibrationBanner(stats: RunStats): string {
  const check = (stats.streaming as { calibration_check?: { agrees?: unknown; mix_dispersion?: unknown; distance_ratio?: unknown; keep_rate_gain?: unknown } } | undefined)
    ?.calibration_check;
  if (!check || check.agrees !== false) return '';
  const fixed = (v: unknown, digits: number): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–');
  return `\n    <p class="warn" id="calibration-warning">Calibration disagrees with this stream: cluster mix dispersion ${fixed(check.mix_dispersion, 1)}, mean distance ×${fixed(check.distance_ratio, 2)}. The keep ratio was held near the target (keep-rate gain ${fixed(check.keep_rate_gain, 2)}), but the plan was sized for another distribution: refit with <code>dbprune fit</code> on a sample of this data.</p>`;
}

/**
 * Renders the report page from parsed stats.json (and thumbnails.json) to an HTML string, with
 * no I/O. `thumbnailsNote` is shown in the thumbnails section (why there are none).
 */
export function renderReportHtml(stats: RunStats, thumbnails?: ReportThumbnails, opts: { title?: string; thumbnailsNote?: string } = {}): string {
  const title = opts.title ?? 'dbprune report';
  const data = { stats, thumbs: thumbnails ?? null, thumbsNote: opts.thumbnailsNote ?? null };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>${escapeHtml(title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<header class="top">
  <div class="wrap">
    <h1>${escapeHtml(title)}</h1>
    <p class="sub" id="subtitle"></p>${calibrationBanner(stats)}
  </div>
</header>
<main class="wrap">
  <section class="cards" id="summary" aria-label="Totals"></section>
  <section class="panel" id="fig-scatter">
    <h2>Concept complexity <span class="hint">d<sub>intra</sub> against d<sub>inter</sub> per cluster (the paper's Figure 2)</span></h2>
    <p class="note">Each point is a non-empty cluster: area by its size, colour by the fraction of it kept. Click a point to inspect the cluster below.</p>
    <div id="scatter"></div>
  </section>
  <section class="panel" id="fig-quota">
    <h2>Quota and kept count per cluster <span class="hint">sorted by complexity</span></h2>
    <p class="note" id="quota-note"></p>
    <div id="quota"></div>
  </section>
  <section class="panel" id="fig-cluster">
    <h2>Cluster <select id="cluster-select" aria-label="cluster"></select></h2>
    <div class="cluster-grid">
      <table class="kv" id="cluster-detail"></table>
      <div><div id="hist"></div><p class="note" id="threshold-note"></p></div>
    </div>
    <div id="cluster-thumbs"></div>
  </section>
  <div class="two">
    <section class="panel" id="fig-progress">
      <h2>Keep ratio over the stream</h2>
      <div id="progress"></div>
    </section>
    <section class="panel" id="fig-errors">
      <h2>Dropped before deciding <span class="hint">errors by reason, duplicates</span></h2>
      <div id="errors"></div>
      <h2 class="h2b">Throughput</h2>
      <div id="throughput"></div>
    </section>
  </div>
  <section class="panel" id="fig-gallery">
    <h2>Kept and dropped samples by cluster <span class="hint">most complex first</span></h2>
    <div id="gallery"></div>
  </section>
  <section class="panel" id="fig-params">
    <h2>Run parameters</h2>
    <table class="kv" id="params"></table>
  </section>
  <footer class="foot" id="footer"></footer>
</main>
<script type="application/json" id="dbprune-data">${inlineJson(data)}</script>
<script>${REPORT_BROWSER_SCRIPT}</script>
</body>
</html>
`;
}
