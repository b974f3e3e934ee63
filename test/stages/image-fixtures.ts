/** Test fixtures for the image stages: tars and images built on the fly (not a test file). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import { pack as tarPack } from 'tar-stream';

export interface Member {
  name: string;
  data: Buffer | string;
}

export function makeTar(members: Member[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = tarPack();
    const chunks: Buffer[] = [];
    p.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
    for (const m of members) {
      const data = typeof m.data === 'string' ? Buffer.from(m.data) : m.data;
      p.entry({ name: m.name, size: data.length, mtime: new Date(0) }, data);
    }
    p.finalize();
  });
}

/** A solid-colour image in the given format. */
export function solidImage(rgb: [number, number, number], format: 'jpeg' | 'png' | 'webp' = 'jpeg', w = 40, h = 30): Promise<Buffer> {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .toFormat(format)
    .toBuffer();
}

/** `n` samples `KEY.jpg` + `KEY.txt` + `KEY.json`, keys `${prefix}0000..`. */
export async function sampleMembers(n: number, prefix = 'k'): Promise<{ members: Member[]; keys: string[] }> {
  const members: Member[] = [];
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `${prefix}${String(i).padStart(4, '0')}`;
    keys.push(key);
    members.push({ name: `${key}.jpg`, data: await solidImage([(i * 37) % 256, (i * 91) % 256, (i * 13) % 256]) });
    members.push({ name: `${key}.txt`, data: `caption ${i}` });
    members.push({ name: `${key}.json`, data: JSON.stringify({ url: `http://img.invalid/${key}.jpg`, key, status: 'success' }) });
  }
  return { members, keys };
}

export function tempDir(prefix = 'dbprune-img-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeFile(dir: string, name: string, data: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Answers with a sample's image bytes and the content type of its extension (png, webp, else jpeg),
 *  as an image host does; no sample is a 404. */
export function sendImage(res: ServerResponse, s: { image?: Buffer; imageExt?: string } | undefined): void {
  if (!s) {
    res.writeHead(404).end('no');
    return;
  }
  res.writeHead(200, { 'content-type': s.imageExt === 'png' ? 'image/png' : s.imageExt === 'webp' ? 'image/webp' : 'image/jpeg' });
  res.end(s.image);
}

export async function startServer(handler: Handler): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Runs `items` (an array or a source stream) through the given stages and collects what comes out. */
export async function runThrough<T>(items: unknown[] | NodeJS.ReadableStream, ...stages: NodeJS.ReadWriteStream[]): Promise<T[]> {
  const out: T[] = [];
  const sink = new Writable({
    objectMode: true,
    write(chunk: T, _e, cb) {
      out.push(chunk);
      cb();
    },
  });
  await (pipeline as unknown as (...s: unknown[]) => Promise<void>)(Array.isArray(items) ? Readable.from(items, { objectMode: true }) : items, ...stages, sink);
  return out;
}

/** A PNG whose IHDR claims width × height (valid CRC), with a tiny bogus IDAT. */
export function pngClaiming(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00])), chunk('IEND', Buffer.alloc(0))]);
}
