// Runs s3rver (a fake S3 server) on 127.0.0.1 on a free port, in its own process, for the tests.
// Usage: node s3rver-child.mjs <directory> <bucket>...  Prints {"port":N} once listening.
import S3rver from 's3rver';

const [directory, ...buckets] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: process.env.S3RVER_VERBOSE !== '1',
  directory,
  configureBuckets: buckets.map((name) => ({ name })),
});
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => {
  server.close().finally(() => process.exit(0));
});
