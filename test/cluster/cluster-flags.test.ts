/**
 * A --cluster run is exact DBP: flags it cannot honour are refused with a usage error (exit 2)
 * before anything connects to Redis, instead of being silently ignored. The Redis URL points at a
 * closed port, so a run that did not refuse would fail with ERR_DBPRUNE_CLUSTER_UNREACHABLE instead.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const closedRedis = 'redis://127.0.0.1:1';

describe('--cluster refuses the flags it cannot honour', () => {
  it.each([
    [['run', '--embeddings', 'x.npy', '--calibration', 'cal/'], '--calibration'],
    [['run', '--embeddings', 'x.npy', '--clip-score-min', '0.2'], '--clip-score-min'],
    [['run', '--embeddings', 'x.npy', '--assign', 'hnsw'], '--assign'],
    [['prune', '--embeddings', 'x.npy', '--centroids', 'c.npy', '--target', '10'], '--target'],
  ])('%j → usage error naming %s', async (args, flag) => {
    const r = await runCli([...args, '--cluster', closedRedis, '--out', 'never-written', '-q']);
    expect(r.code, r.stderr).toBe(2);
    const last = r.stderr.trim().split('\n').at(-1) ?? '';
    expect(last).toContain(flag);
    expect(last).toMatch(/\[ERR_DBPRUNE_USAGE\]$/);
  });
});
