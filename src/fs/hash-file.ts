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
parentPort.on('message', ({ seq, path, fd: given }) => {
  // a path is opened and closed here; a descriptor is the caller's, read from its start with positioned reads
  let fd = given;
  try {
    if (fd === undefined) fd = openSync(path, 'r');
    const hash = createHash('sha256');
    let size = 0;
    for (let n; (n = readSync(fd, buf, 0, buf.length, given === undefined ? null : size)) > 0; size += n) hash.update(n === buf.length ? buf : buf.subarray(0, n));
    parentPort.postMessage({ seq, size, sha256: hash.digest('hex') });
  } catch (error) {
    parentPort.postMessage({ seq, error: { message: String(error && error.message), code: error && error.code } });
  } finally {
    if (given === undefined && fd !== undefined) closeSync(fd);
  }
});
`;

let worker: EvalWorker<Reply> | undefined;

/**
 * The file at `path`, or the open file `fd` from its start (positioned reads: its offset, which
 * another reader may share, does not move; the caller keeps it open until this settles).
 */
export async function hashFile(file: string | number): Promise<FileFacts> {
  if (!worker || worker.broken) worker = new EvalWorker<Reply>('file hash worker', WORKER_SOURCE);
  const { size, sha256, error } = await worker.ask(typeof file === 'number' ? { fd: file } : { path: file });
  if (error) throw Object.assign(new Error(error.message), error.code ? { code: error.code } : {});
  return { size: size!, sha256: sha256! };
}
