// jsonLine builds each JSONL manifest line as text (issue 16): it must be byte-for-byte what
// JSON.stringify of the row object in MANIFEST_COLUMNS order gives, for awkward values too.
import { describe, expect, it } from 'vitest';
import { statusOfReason, type ManifestRow } from '../../src/core/sample.js';
import { jsonLine, MANIFEST_COLUMNS } from '../../src/io/manifest.js';

function reference(r: ManifestRow): string {
  const d = r.distance;
  return JSON.stringify({
    key: r.key,
    shard: r.shard ?? null,
    url: r.url ?? null,
    caption: r.caption ?? null,
    uid: r.uid ?? null,
    decision: r.decision,
    reason: r.reason,
    cluster: r.cluster,
    distance: d === null || d === undefined || !Number.isFinite(d) ? null : d,
    duplicate_of: r.duplicate_of ?? null,
    error: r.error ?? null,
    status: statusOfReason(r.reason),
  });
}

describe('jsonLine', () => {
  const rows: ManifestRow[] = [
    { key: 'k0', shard: 's', url: null, caption: null, decision: 'keep', reason: 'dbp', cluster: 3, distance: Math.fround(0.000123456), duplicate_of: null, error: null },
    { key: 'quo"te\\back', shard: null, url: 'http://x/ü?a=1&b="2"', caption: 'line\nbreak\ttab \u2028 \ud800 lone 😀', uid: 'u-1', decision: 'drop', reason: 'duplicate', cluster: 0, distance: 1e-21, duplicate_of: 'k0', error: null },
    { key: 'e', shard: 'x', url: null, caption: '', decision: 'drop', reason: 'error:decode', cluster: -1, distance: NaN, duplicate_of: null, error: 'bad </script> \u0000' },
    { key: 'f', shard: 'x', url: null, caption: null, uid: undefined, decision: 'drop', reason: 'filter:nsfw', cluster: -1, distance: null, duplicate_of: null, error: 'too "hot"' },
    { key: 'g', shard: 'x', url: null, caption: null, decision: 'drop', reason: 'error:download', cluster: 12, distance: Infinity, duplicate_of: null, error: 'HTTP 404' },
  ];
  it('matches JSON.stringify of the row object, key order included', () => {
    for (const r of rows) {
      expect(jsonLine(r)).toBe(reference(r));
      expect(Object.keys(JSON.parse(jsonLine(r)) as object)).toEqual([...MANIFEST_COLUMNS]);
    }
  });
});
