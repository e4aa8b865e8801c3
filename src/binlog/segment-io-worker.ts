import { Worker } from 'node:worker_threads';
import { makeCrc32 } from './binlog-event.js';

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
 * One worker serves every segment of the process; it is evaluated from source, so it runs the same
 * from dist/, tsx and vitest, and holds the process open only while it has work.
 */

/**
 * Index of the first event in `checks` (pairs of offset and length in `buf`) whose CRC32 trailer is
 * wrong, or -1. A Format_description event is checksummed as if LOG_EVENT_BINLOG_IN_USE_F were
 * clear (binlog-event.ts, eventChecksumMatches). Self-contained: it runs in the worker from its source.
 */
export function firstBadEvent(buf: Uint8Array, checks: Uint32Array, crc32: (data: Uint8Array, value?: number) => number): number {
  for (let i = 0; i < checks.length; i += 2) {
    const start = checks[i]!;
    const size = checks[i + 1]!;
    if (size < 23) return i / 2;
    const end = start + size - 4;
    const stored = (buf[end]! | (buf[end + 1]! << 8) | (buf[end + 2]! << 16) | (buf[end + 3]! << 24)) >>> 0;
    let crc: number;
    if (buf[start + 4] === 15 && (buf[start + 17]! & 1) !== 0) {
      // the in-use flag is byte 17; the CRC was computed with it clear
      crc = crc32(buf.subarray(start, start + 17));
      crc = crc32(Uint8Array.of(buf[start + 17]! & 0xfe), crc);
      crc = crc32(buf.subarray(start + 18, end), crc);
    } else {
      crc = crc32(buf.subarray(start, end));
    }
    if (crc >>> 0 !== stored) return i / 2;
  }
  return -1;
}

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

interface Pending {
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

class SegmentWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #seq = 0;
  #failed: Error | undefined;

  constructor() {
    // it holds a hash and a few messages: small heaps keep the archiver's RSS down (measured ~10 MiB less)
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } });
    this.#worker.unref();
    this.#worker.on('message', (reply: Reply) => {
      const p = this.#pending.get(reply.seq);
      this.#pending.delete(reply.seq);
      if (this.#pending.size === 0) this.#worker.unref();
      p?.resolve(reply);
    });
    const fail = (error: Error) => {
      this.#failed ??= error;
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`binlog segment worker exited (code ${code})`)));
  }

  get broken(): boolean {
    return this.#failed !== undefined;
  }

  post(message: Record<string, unknown>): void {
    this.#worker.postMessage(message);
  }

  ask(message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.#failed) return Promise.reject(this.#failed);
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      // a segment being written must keep the process alive
      this.#worker.ref();
      this.#worker.postMessage({ ...message, seq }, transfer);
    });
  }
}

let worker: SegmentWorker | undefined;
let segments = 0;

/** Checks, hashes and writes the chunks of one segment file, in the order given. */
export class SegmentIo {
  readonly #worker: SegmentWorker;
  readonly #segment = ++segments;

  /** `fd` stays open until every chunk has come back */
  constructor(fd: number) {
    if (!worker || worker.broken) worker = new SegmentWorker();
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
