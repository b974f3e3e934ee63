/** The report page's stylesheet, inlined into report.html's `<style>` (the page loads nothing). */
export const REPORT_CSS = `
:root{--fg:#1d2330;--muted:#5f6b7a;--line:#e3e7ed;--bg:#f5f6f8;--card:#fff;--keep:#2f9e44;--drop:#adb5bd;--quota:#c5dcf5;--accent:#1c5fa8;--thr:#d9480f}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Liberation Sans","DejaVu Sans",Arial,sans-serif;font-variant-numeric:tabular-nums}
.wrap{max-width:1180px;margin:0 auto;padding:0 20px}
.top{background:#fff;border-bottom:1px solid var(--line);padding:18px 0 12px;margin-bottom:18px}
h1{font-size:22px;margin:0 0 2px;font-weight:650;letter-spacing:-.01em}
h2{font-size:16px;margin:0 0 8px;font-weight:620}
.h2b{margin-top:18px}
.hint{font-weight:400;color:var(--muted);font-size:13px;margin-left:6px}
.sub{margin:0;color:var(--muted)}
.warn{margin:8px 0 0;padding:6px 10px;border-left:4px solid var(--thr);background:#fff4e6}
.note{color:var(--muted);margin:0 0 8px;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin-bottom:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:21px;font-weight:620;margin-top:2px}
.card .extra{color:var(--muted);font-size:12px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin-bottom:16px}
.two{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.two .panel{margin-bottom:16px}
@media (max-width:860px){.two{grid-template-columns:1fr}.cluster-grid{grid-template-columns:1fr!important}}
svg{display:block;width:100%;height:auto;overflow:visible}
svg text{fill:#4a5563;font-size:11px}
svg .axis-label{fill:#2b3340;font-size:12px;font-weight:560}
svg .grid{stroke:#eef1f4}
svg .domain{stroke:#9aa4b1}
.empty{color:var(--muted);font-style:italic;padding:18px 0}
select{font:inherit;padding:3px 6px;border:1px solid #c9d0d9;border-radius:6px;background:#fff;max-width:100%}
.cluster-grid{display:grid;grid-template-columns:300px 1fr;gap:18px;align-items:start}
table.kv{border-collapse:collapse;width:100%}
#params{max-width:760px}
table.kv th{text-align:left;font-weight:500;color:var(--muted);padding:3px 10px 3px 0;white-space:nowrap;vertical-align:top}
table.kv td{padding:3px 0;word-break:break-word}
table.kv tr+tr th,table.kv tr+tr td{border-top:1px solid #f0f2f5}
.bars .row{display:grid;grid-template-columns:minmax(90px,170px) 1fr 80px;gap:8px;align-items:center;margin:3px 0}
.bars .name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bars .bar{height:12px;background:var(--accent);border-radius:2px;min-width:1px}
.bars .bar.err{background:#e8590c}.bars .bar.dup{background:#868e96}
.bars .num{text-align:right}
.thumbs h3{font-size:13px;margin:10px 0 6px;font-weight:600}
.tgrid{display:flex;flex-wrap:wrap;gap:10px}
.tgrid figure{margin:0;width:104px}
.tgrid img{width:104px;height:104px;object-fit:cover;border-radius:4px;display:block;background:#eee;image-rendering:auto}
.tgrid figcaption{font-size:11px;line-height:1.3;color:#39414d;margin-top:3px;display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden}
.tgrid .d{color:var(--muted)}
.keep img{outline:2px solid var(--keep);outline-offset:-2px}
.drop img{outline:2px solid var(--drop);outline-offset:-2px}
.gal-row{display:grid;grid-template-columns:170px 1fr 1fr;gap:14px;padding:10px 0;border-top:1px solid var(--line)}
.gal-row .meta{font-size:12px;color:var(--muted)}
.gal-row .meta b{color:var(--fg);font-size:14px;font-weight:600;cursor:pointer}
.gal-row .tgrid figure{width:64px}.gal-row .tgrid img{width:64px;height:64px}
.gal-row .tgrid figcaption{-webkit-line-clamp:2;font-size:10px}
.gal-row .side{font-size:11px;color:var(--muted);margin-bottom:3px}
button{font:inherit;padding:5px 12px;border:1px solid #c9d0d9;border-radius:6px;background:#fff;cursor:pointer;margin-top:10px}
.legend{display:flex;gap:14px;font-size:12px;color:var(--muted);margin:4px 0 0;flex-wrap:wrap}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.foot{color:var(--muted);font-size:12px;padding:6px 0 30px}
code{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
`;
