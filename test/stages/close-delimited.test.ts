/**
 * Issue #11 item 1: servers that close the connection (HTTP/1.0 without Content-Length, or
 * `Connection: close`) while a large body is held back by a slow consumer. With undici 7 streaming
 * the shard, the process died with an uncaught `assert(!this.paused)` (nodejs/undici#5360) in most
 * runs of this test; the fetch now goes through node:http (src/net/http-stream.ts).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/fixture.js';
import { startServer } from './image-fixtures.js';

const SHARD_BYTES = 4 * 1024 * 1024;
const IMAGE_BYTES = 3 * 1024 * 1024;
const REPEAT = 5;
const shard = Buffer.alloc(SHARD_BYTES, 7);
const image = Buffer.alloc(IMAGE_BYTES, 9);
image.set([0xff, 0xd8, 0xff], 0); // a JPEG signature: the download stage sniffs it

let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  server = await startServer((req, res) => {
    const body = req.url?.includes('/img/') ? image : shard;
    const type = req.url?.includes('/img/') ? 'image/jpeg' : 'application/x-tar';
    if (req.url?.startsWith('/http10/')) {
      // HTTP/1.0, no Content-Length: the body ends when the server closes the connection.
      const socket = res.socket as Socket;
      socket.write(`HTTP/1.0 200 OK\r\nContent-Type: ${type}\r\n\r\n`);
      socket.end(body);
      return;
    }
    res.writeHead(200, { connection: 'close', 'content-type': type, 'content-length': String(body.length) });
    res.end(body);
  });
});

afterAll(() => server.close());

function runChild(shardUrls: string[], imageUrls: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(repoRoot, 'test', 'helpers', 'slow-consumer.ts'), shardUrls.join(' '), imageUrls.join(' ')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('servers that close the connection under backpressure', () => {
  it('shards and images arrive whole, with no crash (HTTP/1.0 and Connection: close)', async () => {
    const shards: string[] = [];
    const images: string[] = [];
    for (let i = 0; i < REPEAT; i++) {
      for (const kind of ['http10', 'close']) {
        shards.push(`${server.url}/${kind}/${i}.tar`);
        images.push(`${server.url}/${kind}/img/${i}.jpg`);
      }
    }
    const r = await runChild(shards, images);
    expect(r.stderr).not.toMatch(/AssertionError/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { shardBytes: number[]; images: { key: string; bytes?: number; error?: string }[] };
    expect(out.shardBytes).toEqual(shards.map(() => SHARD_BYTES));
    expect(out.images.map((s) => [s.key, s.bytes, s.error])).toEqual(images.map((_, i) => [String(i), IMAGE_BYTES, undefined]));
  });
});
