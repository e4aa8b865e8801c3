import { EvalWorker } from '../threads/eval-worker.js';
import { firstBadEvent, makeCrc32 } from './binlog-event.js';

/**
 * The per-byte work of archiving, on a worker thread: the CRC32 check of each event, the sha256 of
 * each segment, and the write to its file.
 *
 * On a catch-up these were most of the main thread's time (sha256 runs at ~1.2 GB/s here, one zlib
 * call per small event costs more than its bytes, and each write is a syscall). The segment file
 * fills 1 MiB buffers and moves them here (transferred, not copied); the worker checks the listed
 * events, hashes, writes with the file's descriptor, and moves the buffer back. Chunks of a segment
 * are handled strictly in order. The main thread keeps the descriptor: it syncs it, and closes it
 * only after every chunk came back, so the worker never writes to a closed (or reused) descriptor.
 *
 * One worker (threads/eval-worker.ts) serves every segment of the process.
 */

// CommonJS, run by `new Worker(…, { eval: true })`
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
const fs = require('node:fs');
const zlib = require('node:zlib');
${makeCrc32.toString()}
${firstBadEvent.toString()}
const crc32 = typeof zlib.crc32 === 'function' ? zlib.crc32 : ${makeCrc32.name}();
const segments = new Map();
parentPort.on('message', (m) => {
  try {
    if (m.op === 'chunk') {
      const seg = segments.get(m.segment);
      const bytes = m.bytes;
      // a dropped or failed segment: its remaining chunks only come back
      if (!seg) return parentPort.postMessage({ seq: m.seq, bytes }, [bytes.buffer]);
      const bad = m.checks ? ${firstBadEvent.name}(bytes, m.checks, crc32) : -1;
      if (bad >= 0) {
        segments.delete(m.segment);
        return parentPort.postMessage({ seq: m.seq, bytes, bad: [m.checks[bad * 2], m.checks[bad * 2 + 1]] }, [bytes.buffer]);
      }
      seg.hash.update(bytes);
      try {
        for (let off = 0; off < bytes.length; ) off += fs.writeSync(seg.fd, bytes, off, bytes.length - off);
      } catch (error) {
        segments.delete(m.segment);
        return parentPort.postMessage({ seq: m.seq, bytes, error: String(error && error.message || error), code: error && error.code }, [bytes.buffer]);
      }
      parentPort.postMessage({ seq: m.seq, bytes }, [bytes.buffer]);
    } else if (m.op === 'open') {
      segments.set(m.segment, { fd: m.fd, hash: crypto.createHash('sha256') });
    } else if (m.op === 'digest') {
      const seg = segments.get(m.segment);
      segments.delete(m.segment);
      parentPort.postMessage(seg ? { seq: m.seq, sha256: seg.hash.digest('hex') } : { seq: m.seq, error: 'the segment failed earlier' });
    } else if (m.op === 'drop') {
      segments.delete(m.segment);
    }
  } catch (error) {
    // the segment is failed: its later chunks only come back
    segments.delete(m.segment);
    parentPort.postMessage({ seq: m.seq, error: String((error && error.stack) || error) });
  }
});
`;

/** An event whose CRC32 trailer does not match, by its place in the buffer that held it. */
export class BadEventChecksum extends Error {
  constructor(
    readonly offset: number,
    readonly size: number,
  ) {
    super(`event checksum mismatch at buffer offset ${offset}`);
    this.name = 'BadEventChecksum';
  }
}

interface Reply {
  seq: number;
  bytes?: Uint8Array;
  bad?: [number, number];
  sha256?: string;
  error?: string;
  code?: string;
}

let worker: EvalWorker<Reply> | undefined;
let segments = 0;

/** Checks, hashes and writes the chunks of one segment file, in the order given. */
export class SegmentIo {
  readonly #worker: EvalWorker<Reply>;
  readonly #segment = ++segments;

  /** `fd` stays open until every chunk has come back */
  constructor(fd: number) {
    // it holds a hash and a few messages: small heaps keep the archiver's RSS down (measured ~10 MiB less)
    if (!worker || worker.broken) worker = new EvalWorker('binlog segment worker', WORKER_SOURCE, { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 });
    this.#worker = worker;
    this.#worker.post({ op: 'open', segment: this.#segment, fd });
  }

  /**
   * Moves `bytes` (a whole ArrayBuffer from its start) to the worker, which checks the events at
   * `checks` (offset, length pairs), hashes and writes them after everything given before. Resolves
   * with the same memory, to reuse, and the failure if any (BadEventChecksum or the write's error);
   * after a failure nothing more of the segment is written.
   */
  async write(bytes: Buffer, checks: Uint32Array | undefined): Promise<{ buffer: Buffer; error?: Error }> {
    const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    const capacity = bytes.buffer.byteLength;
    const reply = await this.#worker.ask({ op: 'chunk', segment: this.#segment, bytes: view, checks }, [bytes.buffer as ArrayBuffer]);
    // an unexpected failure in the worker answers without the memory: the caller gets a new buffer
    const buffer = reply.bytes ? Buffer.from(reply.bytes.buffer) : Buffer.allocUnsafeSlow(capacity);
    if (reply.bad) return { buffer, error: new BadEventChecksum(reply.bad[0], reply.bad[1]) };
    if (reply.error !== undefined) {
      return { buffer, error: Object.assign(new Error(`writing a binlog segment failed: ${reply.error}`), reply.code ? { code: reply.code } : {}) };
    }
    return { buffer };
  }

  /** hex sha256 of everything written; call once every chunk came back */
  async digest(): Promise<string> {
    const reply = await this.#worker.ask({ op: 'digest', segment: this.#segment });
    if (reply.error !== undefined) throw new Error(`binlog segment worker: ${reply.error}`);
    return reply.sha256!;
  }

  drop(): void {
    this.#worker.post({ op: 'drop', segment: this.#segment });
  }
}
