import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { readManifest } from './src/io/manifest.js';
const rows = readManifest(process.argv[2]);
const label = new Map<string, string>();
for (const m of process.argv.slice(3)) for (const r of await parquetReadObjects({ file: await asyncBufferFromFile(m) })) label.set(String(r.key), String(r.concept));
const by = new Map<number, Map<string, number>>();
const all = new Map<string, number>();
for (const r of rows) { if (r.cluster < 0) continue; const l = label.get(r.key)!; const m = by.get(r.cluster) ?? new Map(); m.set(l, (m.get(l) ?? 0) + 1); by.set(r.cluster, m); all.set(l, (all.get(l) ?? 0) + 1); }
let pure = 0, n = 0; for (const m of by.values()) { pure += Math.max(...m.values()); for (const v of m.values()) n += v; }
console.log('rows', rows.length, 'purity', (pure / n).toFixed(3), 'majority baseline', (Math.max(...all.values()) / n).toFixed(3), 'clusters', by.size);
