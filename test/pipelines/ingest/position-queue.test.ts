import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../src/core/errors.js';
import { IngestPositions } from '../../../pipelines/ingest/position-queue.js';

describe('IngestPositions', () => {
  it('takes rows in the order they were pushed and says where the last one ends', () => {
    const p = new IngestPositions();
    p.push(0, 5, 3); // resumed at sample 5 of entry 0
    p.push(0, 8, 2); // merged with the run before
    p.push(1, 0, 4);
    expect(p.take(4)).toEqual({ entry: 0, sample: 9 });
    expect(p.take(1)).toEqual({ entry: 0, sample: 10 });
    p.entryEnded(0, 10);
    expect(p.normalize({ entry: 0, sample: 10 })).toEqual({ entry: 1, sample: 0 });
    expect(p.take(4)).toEqual({ entry: 1, sample: 4 });
    p.entryEnded(1, 4);
    p.entryEnded(2, 0); // an empty entry is skipped over too
    expect(p.normalize({ entry: 1, sample: 4 })).toEqual({ entry: 3, sample: 0 });
    p.forgetBefore(3);
    expect(p.normalize({ entry: 1, sample: 4 })).toEqual({ entry: 1, sample: 4 });
  });

  it('a stage that emitted more rows than it got is an internal error, not a wrong position', () => {
    const p = new IngestPositions();
    p.push(0, 0, 2);
    expect(() => p.take(3)).toThrow(expect.objectContaining({ code: ErrorCodes.INTERNAL }));
  });
});
