/**
 * The report's browser script and stylesheet are modules of their own, inlined into report.html.
 * These checks need no browser (report.test.ts renders the page in Chromium): the script compiles,
 * keeps its promise to never parse data as HTML, and cannot close its own <script> element.
 */
import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { REPORT_BROWSER_SCRIPT } from '../../src/report/browser-script.js';
import { renderReportHtml } from '../../src/report/report-html.js';
import { REPORT_CSS } from '../../src/report/report-style.js';
import type { RunStats } from '../../src/io/stats.js';

const stats: RunStats = {
  version: 1,
  mode: 'exact',
  method: 'dbp',
  params: { keep: 0.5 },
  totals: {
    samples: 2, valid: 2, n_target: 1, kept: 1, dropped: 1, keep_ratio: 0.5, errors: {}, duplicates: 0, renormalized: 0,
    k: 1, min_samples: 1, lambda: 0, seconds: 1, samples_per_sec: 2,
  },
  clusters: { n: [2], d_intra: [0.1], d_inter: [0.5], complexity: [0.2], p: [1], quota: [1], quota_real: [1], lb: [0], ub: [2], kept: [1] },
};

describe('report page modules', () => {
  it('the browser script compiles as a classic script and never writes HTML from data', () => {
    // compiled, not run (the script needs a DOM)
    expect(() => new Script(REPORT_BROWSER_SCRIPT, { filename: 'report-browser-script.js' })).not.toThrow();
    expect(REPORT_BROWSER_SCRIPT).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect(REPORT_BROWSER_SCRIPT).not.toMatch(/<\/script/i);
    expect(REPORT_CSS).not.toMatch(/<\/style/i);
  });

  it('the page inlines the script and the stylesheet once each, with data that cannot close its tag', () => {
    const html = renderReportHtml({ ...stats, params: { note: '</script><script>alert(1)</script>' } });
    expect(html.split(REPORT_BROWSER_SCRIPT).length).toBe(2);
    expect(html.split(REPORT_CSS).length).toBe(2);
    expect(html.match(/<script/g)?.length).toBe(2); // the JSON data and the page script
    expect(html).not.toContain('</script><script>alert(1)');
  });
});
