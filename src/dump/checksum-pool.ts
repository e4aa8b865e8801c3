/**
 * rowsum-sha256-v1 over large tables, hashed on worker threads.
 *
 * A dump (and a load's check) runs on one JS thread, and one sha256 per row is its largest single
 * cost (Node's per-call overhead dwarfs the hashing of a short row). `OffloadedChecksum` collects
 * each row's canonical encoding (the bytes RowChecksum hashes) into 1 MiB batches and hands full
 * batches to a small pool of worker threads, which return partial sums; the tail is hashed in this
 * thread, so tables under one batch never touch a worker. The sum is order-independent, so partial
 * sums simply add up: the digest is exactly RowChecksum's.
 *
 * At most MAX_IN_FLIGHT batches per checksum wait for a worker (`add` returns false, `drained()`
 * says when to go on): memory stays flat when the workers are slower than the rows arrive. The
 * workers are evaluated from a string, so they run the same from dist/, tsx and vitest, and they
 * hold the process open only while they have work.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { encodeRowInto, RowChecksum } from './checksum.js';

const BATCH_BYTES = 1 << 20;
const MAX_IN_FLIGHT = 4;

// CommonJS, run by `new Worker(…, { eval: true })`; the digest and sum are RowChecksum's (checksum.ts)
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const crypto = require('node:crypto');
const digest = typeof crypto.hash === 'function'
  ? (b) => crypto.hash('sha256', b, 'buffer')
  : (b) => crypto.createHash('sha256').update(b).digest();
parentPort.on('message', ({ seq, bytes, rows, columns }) => {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const acc = new Uint32Array(8);
  let p = 0;
  for (let r = 0; r < rows; r++) {
    const start = p;
    for (let c = 0; c < columns; c++) p += buf[p] === 0xff ? 1 : 5 + buf.readUInt32BE(p + 1);
    const d = digest(buf.subarray(start, p));
    let carry = 0;
    for (let i = 7; i >= 0; i--) {
      const sum = acc[i] + d.readUInt32BE(i * 4) + carry;
      acc[i] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
  }
  parentPort.postMessage({ seq, acc });
});
`;

interface Pending {
  resolve(acc: Uint32Array): void;
  reject(error: Error): void;
}

class PoolWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #seq = 0;
  #failed: Error | undefined;

  constructor() {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true });
    this.#worker.unref();
    this.#worker.on('message', ({ seq, acc }: { seq: number; acc: Uint32Array }) => {
      const p = this.#pending.get(seq);
      this.#pending.delete(seq);
      if (this.#pending.size === 0) this.#worker.unref();
      p?.resolve(acc);
    });
    const fail = (error: Error) => {
      this.#failed ??= error;
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`checksum worker exited (code ${code})`)));
  }

  get broken(): boolean {
    return this.#failed !== undefined;
  }

  sum(buf: Buffer, rows: number, columns: number): Promise<Uint32Array> {
    if (this.#failed) return Promise.reject(this.#failed);
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      // pending work must keep the process alive, or a dump could end while its sums are out
      this.#worker.ref();
      this.#worker.postMessage({ seq, bytes: buf, rows, columns }, [buf.buffer as ArrayBuffer]);
    });
  }
}

let pool: PoolWorker[] | undefined;
let next = 0;

function pickWorker(): PoolWorker | undefined {
  // the other cores; none on a single core, where a worker would only add overhead
  pool ??= Array.from({ length: Math.min(2, availableParallelism() - 1) }, () => undefined as unknown as PoolWorker);
  if (pool.length === 0) return undefined;
  const i = next++ % pool.length;
  if (!pool[i] || pool[i].broken) pool[i] = new PoolWorker();
  return pool[i];
}

export class OffloadedChecksum {
  readonly #local = new RowChecksum();
  readonly #sums: Promise<Uint32Array>[] = [];
  #batch: Buffer = Buffer.allocUnsafeSlow(BATCH_BYTES);
  #used = 0;
  #rowsInBatch = 0;
  #columns = -1;
  #offloadedRows = 0;
  #inFlight = 0;
  #waiters: (() => void)[] = [];
  #error: unknown;

  /** Adds a row; false when the caller should wait for `drained()` before adding more. */
  add(row: readonly (Buffer | null)[]): boolean {
    if (this.#error !== undefined) throw this.#error;
    if (this.#columns !== row.length) {
      // rows of one table have one width; a different width starts a batch of its own
      this.#send();
      this.#columns = row.length;
    }
    let size = 0;
    for (const v of row) size += v === null ? 1 : 5 + v.length;
    if (this.#used + size > this.#batch.length) {
      this.#send();
      if (size > this.#batch.length) this.#batch = Buffer.allocUnsafeSlow(size);
    }
    const b = this.#batch;
    const n = encodeRowInto(b, this.#used, row);
    this.#used = n;
    this.#rowsInBatch++;
    if (this.#used >= BATCH_BYTES) this.#send();
    return this.#inFlight < MAX_IN_FLIGHT;
  }

  /** Resolves once fewer than MAX_IN_FLIGHT batches wait (rejects when a worker failed). */
  drained(): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#inFlight < MAX_IN_FLIGHT) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push(() => (this.#error !== undefined ? reject(this.#error) : resolve())));
  }

  /** The checksum of every row added: the tail hashed here, the batches' sums added in. */
  async finish(): Promise<RowChecksum> {
    this.#hashTailHere();
    const parts = await Promise.all(this.#sums);
    for (const acc of parts) this.#local.merge(acc, 0);
    this.#local.merge(new Uint32Array(8), this.#offloadedRows);
    return this.#local;
  }

  #send(): void {
    if (this.#rowsInBatch === 0) return;
    const worker = pickWorker();
    if (!worker) return this.#hashTailHere();
    const buf = this.#batch.subarray(0, this.#used);
    const rows = this.#rowsInBatch;
    this.#offloadedRows += rows;
    this.#inFlight++;
    const sum = worker.sum(buf, rows, this.#columns);
    sum.then(
      () => this.#settled(),
      (error: unknown) => {
        this.#error ??= error;
        this.#settled();
      },
    );
    this.#sums.push(sum);
    this.#batch = Buffer.allocUnsafeSlow(BATCH_BYTES);
    this.#used = 0;
    this.#rowsInBatch = 0;
  }

  #settled(): void {
    this.#inFlight--;
    for (const w of this.#waiters.splice(0)) w();
  }

  /** hashes the current batch in this thread (the tail, or everything without workers) */
  #hashTailHere(): void {
    const b = this.#batch;
    let p = 0;
    for (let r = 0; r < this.#rowsInBatch; r++) {
      const start = p;
      for (let c = 0; c < this.#columns; c++) p += b[p] === 0xff ? 1 : 5 + b.readUInt32BE(p + 1);
      this.#local.addEncoded(b.subarray(start, p));
    }
    this.#used = 0;
    this.#rowsInBatch = 0;
  }
}
