/** Issue #11 item 9: one slow URL at the head of the list must not let completed downloads pile up. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import type { ImageSample } from '../../src/core/sample.js';
import { download } from '../../src/stages/download.js';
import { runThrough, startServer } from './image-fixtures.js';

const IMAGE = Buffer.alloc(256 * 1024, 3);
IMAGE.set([0xff, 0xd8, 0xff], 0);
const HEAD_DELAY_MS = 1500;
const FAST = 60;

let server: Awaited<ReturnType<typeof startServer>>;
let servedBeforeHead = 0;
let headAnswered = false;

beforeAll(async () => {
  server = await startServer((req, res) => {
    const send = (): void => {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(IMAGE.length) });
      res.end(IMAGE);
    };
    if (req.url === '/head.jpg') {
      setTimeout(() => {
        headAnswered = true;
        send();
      }, HEAD_DELAY_MS);
      return;
    }
    if (!headAnswered) servedBeforeHead++;
    send();
  });
});
afterAll(() => server.close());

describe('download: reorder window bounded in bytes', () => {
  it('stops starting requests while completed bytes wait behind a slow head, and still emits everything in order', async () => {
    const refs = [{ key: 'head', url: `${server.url}/head.jpg` }, ...Array.from({ length: FAST }, (_, i) => ({ key: `k${i}`, url: `${server.url}/${i}.jpg` }))];
    const concurrency = 4;
    const out = await runThrough<ImageSample>(refs, download({ allowPrivate: true, concurrency, reorderWindow: 64, reorderWindowBytes: 1024 * 1024, retries: 0 }));
    expect(out.map((s) => s.key)).toEqual(refs.map((r) => r.key));
    expect(out.every((s) => s.image?.equals(IMAGE))).toBe(true);
    // 1 MiB holds 4 images of 256 KiB; the requests already in flight when it filled may finish
    expect(servedBeforeHead).toBeLessThanOrEqual(4 + concurrency);
    expect(servedBeforeHead).toBeGreaterThanOrEqual(4);
  });

  it('validates reorderWindowBytes', () => {
    expect(() => download({ reorderWindowBytes: 1000 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_OPTION }));
  });
});
