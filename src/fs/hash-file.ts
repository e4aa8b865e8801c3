/**
 * sha256 and size of a local file, read in a worker thread into one reused buffer.
 *
 * Spooled segments, dump chunks and linked puts are hashed from disk. A read stream would hash on
 * the event loop and allocate a buffer per read; during a dump those buffers (hundreds of MB)
 * count against V8's heap limit as external memory and made the main thread run a full GC about
 * every 100 ms, with two cores' worth of helper threads marking a 10 MB heap. Here the event loop
 * only waits.
 */
import { EvalWorker } from '../threads/eval-worker.js';

export interface FileFacts {
  size: number;
  sha256: string;
}

interface Reply {
  seq: number;
  size?: number;
  sha256?: string;
  error?: { message: string; code?: string };
}

// CommonJS, run by `new Worker(…, { eval: true })`
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { closeSync, openSync, readSync } = require('node:fs');
const { createHash } = require('node:crypto');
// 1 MiB reads keep hashing near OpenSSL's speed
const buf = Buffer.allocUnsafeSlow(1 << 20);
parentPort.on('message', ({ seq, path }) => {
  let fd;
  try {
    fd = openSync(path, 'r');
    const hash = createHash('sha256');
    let size = 0;
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; size += n) hash.update(n === buf.length ? buf : buf.subarray(0, n));
    parentPort.postMessage({ seq, size, sha256: hash.digest('hex') });
  } catch (error) {
    parentPort.postMessage({ seq, error: { message: String(error && error.message), code: error && error.code } });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
});
`;

let worker: EvalWorker<Reply> | undefined;

export async function hashFile(path: string): Promise<FileFacts> {
  if (!worker || worker.broken) worker = new EvalWorker<Reply>('file hash worker', WORKER_SOURCE);
  const { size, sha256, error } = await worker.ask({ path });
  if (error) throw Object.assign(new Error(error.message), error.code ? { code: error.code } : {});
  return { size: size!, sha256: sha256! };
}
