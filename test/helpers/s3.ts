/**
 * A real S3 server on loopback for the tests: s3rver in a child process on 127.0.0.1 (free port),
 * stopped by PID; the environment a dbprune process needs to reach it; and a TCP proxy in front of
 * it that resets chosen requests (server faults mid-upload).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './fixture.js';

export interface S3TestServer {
  endpoint: string;
  pid: number;
  /** Environment for a dbprune process (credentials s3rver accepts, endpoint, path style, no IMDS). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Environment that points the AWS SDK at `endpoint` with s3rver's credentials and nothing else. */
export function s3Env(endpoint: string, creds: { id: string; secret: string } = { id: 'S3RVER', secret: 'S3RVER' }): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: creds.id,
    AWS_SECRET_ACCESS_KEY: creds.secret,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: endpoint,
    AWS_S3_FORCE_PATH_STYLE: 'true',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(tmpdir(), 'dbprune-no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(tmpdir(), 'dbprune-no-aws-credentials'),
    AWS_PROFILE: '',
  };
}

/** Starts s3rver with `buckets` created; data in a temp directory removed on stop. */
export async function startS3Server(buckets: string[] = ['bucket']): Promise<S3TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'dbprune-s3rver-'));
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', join(repoRoot, 'test', 'helpers', 's3rver-child.mjs'), dir, ...buckets], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
    child.once('error', reject);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    pid: child.pid as number,
    env: s3Env(endpoint),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(child.pid as number, 'SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) process.kill(child.pid as number, 'SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface FaultProxy {
  endpoint: string;
  /** Requests answered with a fault (reset or error status). */
  readonly faults: number;
  stop(): Promise<void>;
}

/** What the proxy does with a request: pass it on, reset the connection, or answer with an S3 error status. */
export type Fault = undefined | 'reset' | 500 | 503;

/**
 * An HTTP proxy on 127.0.0.1 in front of `target`: for each request `decide` picks a fault — a
 * connection reset (no response), or a 500/503 with S3's XML error body (503 = SlowDown,
 * throttling) — or nothing, and then the request is forwarded.
 */
export async function startFaultProxy(target: string, decide: (req: IncomingMessage) => Fault): Promise<FaultProxy> {
  const t = new URL(target);
  let faults = 0;
  const server: Server = createServer((req, res) => {
    const fault = decide(req);
    if (fault !== undefined) {
      faults++;
      if (fault === 'reset') {
        req.socket.resetAndDestroy();
        return;
      }
      const code = fault === 503 ? 'SlowDown' : 'InternalError';
      req.resume();
      res.writeHead(fault, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`);
      return;
    }
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    get faults() {
      return faults;
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
