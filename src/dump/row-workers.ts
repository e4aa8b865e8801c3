/**
 * Worker threads for the per-row work of dumps and loads: the row checksum (checksum.ts) and the
 * INSERT encoding (sql-encode.ts).
 *
 * A dump (and a load's check) reads rows on one JS thread, which the connections' packets keep busy
 * already. Rows are copied, as the text protocol sent them (text-row.ts), into 512 KiB batches
 * (smaller ones cost speed, larger ones memory); a batch goes to a worker, which sums it and (for a
 * dump) encodes its INSERT statements, and sends them back. The sum is order-independent, so
 * partial sums simply add up: the digest is exactly RowChecksum's. Small tails are done in this thread, so small tables never touch a worker, and
 * nothing needs workers: without spare cores the same functions run here.
 *
 * The workers are evaluated from a string holding the functions' own source, so they run the same
 * from dist/, tsx and vitest; they hold the process open only while they have work.
 */
import { isUtf8 } from 'node:buffer';
import { availableParallelism } from 'node:os';
import { EvalWorker } from '../threads/eval-worker.js';
import { CHECKSUM_ALGORITHM, RowChecksum, type ChecksumAlgorithm } from './checksum.js';
import { murmur3x86_128 } from './row-hash.js';
import { encodeInserts, nextSpecialByte, type InsertPlan } from './sql-encode.js';
import { textRowEnd, textRowToV1 } from './text-row.js';

export const BATCH_BYTES = 512 * 1024;
/** each row in a batch follows 4 bytes that are not read (its packet header, as received) */
export const ROW_HEAD = 4;
/** batches of one table out at once: memory stays flat when the workers are slower than the rows */
export const MAX_IN_FLIGHT = 4;

// CommonJS, run by `new Worker(…, { eval: true })`; the sum is RowChecksum's (checksum.ts)
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { isUtf8 } = require('node:buffer');
const crypto = require('node:crypto');
${murmur3x86_128.toString()}
${textRowEnd.toString()}
${textRowToV1.toString()}
const WAY_PLAIN = 0, WAY_QUOTED = 1, WAY_HEX = 2, WAY_TEXT = 3, WAY_TEXT_HEX = 4, WAY_SKIP = 5;
${nextSpecialByte.toString()}
${encodeInserts.toString()}
// the encoder's arena, kept from batch to batch
const arena = {};
const sha256 = typeof crypto.hash === 'function'
  ? (b) => crypto.hash('sha256', b, 'buffer')
  : (b) => crypto.createHash('sha256').update(b).digest();
parentPort.on('message', ({ seq, bytes, rows, columns, algorithm, plan }) => {
  try {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const words = algorithm === 'rowsum-mm3-v2' ? 4 : 8;
    const acc = new Uint32Array(words);
    const row = new Uint32Array(words);
    let v1 = Buffer.alloc(0);
    let p = 0;
    for (let r = 0; r < rows; r++) {
      const start = (p += 4);
      p = ${textRowEnd.name}(buf, p, columns);
      if (words === 4) ${murmur3x86_128.name}(buf, start, p, row);
      else {
        if (v1.length < p - start + 4 * columns) v1 = Buffer.alloc(2 * (p - start + 4 * columns));
        const d = sha256(v1.subarray(0, ${textRowToV1.name}(buf, start, columns, v1)));
        for (let i = 0; i < 8; i++) row[i] = d.readUInt32BE(i * 4);
      }
      let carry = 0;
      for (let i = words - 1; i >= 0; i--) {
        const sum = acc[i] + row[i] + carry;
        acc[i] = sum >>> 0;
        carry = sum > 0xffffffff ? 1 : 0;
      }
    }
    if (!plan) return parentPort.postMessage({ seq, acc, bytes }, [bytes.buffer]);
    const sql = ${encodeInserts.name}(buf, buf.length, rows, plan, isUtf8, arena);
    parentPort.postMessage({ seq, acc, sql, bytes }, [sql.buffer, bytes.buffer]);
  } catch (error) {
    parentPort.postMessage({ seq, error: String(error && error.stack || error) });
  }
});
`;

export interface BatchResult {
  /** the batch's partial checksum */
  acc: Uint32Array;
  /** its INSERT statements, when a plan was given */
  sql?: Buffer;
}

interface Reply {
  seq: number;
  acc?: Uint32Array;
  sql?: Uint8Array;
  /** the batch, handed back for reuse */
  bytes?: Uint8Array;
  error?: string;
}

/** batch buffers back from the workers, reused so a dump does not allocate a buffer per batch */
const freeBatches: ArrayBuffer[] = [];

function newBatch(): Buffer {
  const b = freeBatches.pop();
  return b ? Buffer.from(b, 0, BATCH_BYTES) : Buffer.allocUnsafeSlow(BATCH_BYTES);
}

class PoolWorker {
  readonly #worker = new EvalWorker<Reply>('row worker', WORKER_SOURCE);

  get broken(): boolean {
    return this.#worker.broken;
  }

  /** sums (and with `plan` encodes) the batch; the batch's memory moves to the worker */
  async run(buf: Buffer, rows: number, columns: number, algorithm: ChecksumAlgorithm, plan?: InsertPlan): Promise<BatchResult> {
    const { acc, sql, bytes, error } = await this.#worker.ask({ bytes: buf, rows, columns, algorithm, plan }, [buf.buffer as ArrayBuffer]);
    if (bytes && bytes.buffer.byteLength === BATCH_BYTES && freeBatches.length < 8) freeBatches.push(bytes.buffer as ArrayBuffer);
    if (error !== undefined || !acc) throw new Error(`row worker: ${error}`);
    return { acc, ...(sql ? { sql: Buffer.from(sql.buffer, sql.byteOffset, sql.byteLength) } : {}) };
  }
}

let pool: PoolWorker[] | undefined;
let next = 0;

/** A worker for one batch (round robin), or undefined on a single core, where a worker only adds overhead. */
export function rowWorker(): PoolWorker | undefined {
  pool ??= Array.from({ length: Math.min(2, availableParallelism() - 1) }, () => undefined as unknown as PoolWorker);
  if (pool.length === 0) return undefined;
  const i = next++ % pool.length;
  if (!pool[i] || pool[i].broken) pool[i] = new PoolWorker();
  return pool[i];
}

const hereArena: { arena?: Buffer } = {};

/** What a worker does with a batch, done in this thread (tails, single cores). */
export function runHere(buf: Buffer, rows: number, columns: number, sum: RowChecksum, plan?: InsertPlan): Buffer | undefined {
  let p = 0;
  for (let r = 0; r < rows; r++) {
    const start = (p += ROW_HEAD);
    p = textRowEnd(buf, p, columns);
    sum.addTextRow(buf, start, p, columns);
  }
  return plan ? encodeInserts(buf, p, rows, plan, isUtf8, hereArena) : undefined;
}

/**
 * One table's rows on their way through the workers: `add` copies each row into the current batch,
 * full batches go to a worker, and their results come back in the order the rows came: sums merged
 * into `finish()`'s RowChecksum, statements (with a plan) handed to `onSql` in row order.
 */
export class RowBatches {
  readonly #sum: RowChecksum;
  readonly #columns: number;
  readonly #plan: InsertPlan | undefined;
  readonly #onSql: (sql: Buffer) => void;
  #batch: Buffer = newBatch();
  /** bytes of the batch taken, the pending span included */
  #used = 0;
  #rows = 0;
  /** rows not copied yet: `#spanBuf[#spanStart, #spanEnd)`, contiguous packets of one socket read */
  #spanBuf: Buffer | undefined;
  #spanStart = 0;
  #spanEnd = 0;
  /** every batch's result step, chained: results are taken in row order */
  #chain: Promise<void> = Promise.resolve();
  #inFlight = 0;
  #waiters: (() => void)[] = [];
  #error: unknown;

  constructor(columns: number, algorithm: ChecksumAlgorithm = CHECKSUM_ALGORITHM, plan?: InsertPlan, onSql: (sql: Buffer) => void = () => undefined) {
    this.#sum = new RowChecksum(algorithm);
    this.#columns = columns;
    this.#plan = plan;
    this.#onSql = onSql;
  }

  /**
   * Adds the text-protocol row `b[start, end)`, a packet's payload: `b` also holds the packet's
   * 4-byte header before it, which comes along (a batch is `[4 bytes][row]…`). Rows the server sent
   * back to back are copied in one piece, not one call per row (a copy costs ~200 ns on Node 20).
   * The bytes must stay unchanged until the batch is sent: mysql2 hands out each socket read once.
   * False when the caller should wait for `drained()`.
   */
  add(b: Buffer, start: number, end: number): boolean {
    if (this.#error !== undefined) throw this.#error;
    const size = end - start + ROW_HEAD;
    if (this.#used + size > this.#batch.length) {
      this.#send(false);
      if (size > this.#batch.length) this.#batch = Buffer.allocUnsafeSlow(size);
    }
    if (b !== this.#spanBuf || start - ROW_HEAD !== this.#spanEnd) {
      this.#copySpan();
      this.#spanBuf = b;
      this.#spanStart = start - ROW_HEAD;
    }
    this.#spanEnd = end;
    this.#used += size;
    this.#rows++;
    if (this.#used >= BATCH_BYTES) this.#send(false);
    return this.#inFlight < MAX_IN_FLIGHT;
  }

  #copySpan(): void {
    const b = this.#spanBuf;
    if (!b) return;
    const at = this.#used - (this.#spanEnd - this.#spanStart);
    b.copy(this.#batch, at, this.#spanStart, this.#spanEnd);
    this.#spanBuf = undefined;
  }

  /** Resolves once fewer than MAX_IN_FLIGHT batches are out (rejects when one failed). */
  drained(): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#inFlight < MAX_IN_FLIGHT) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push(() => (this.#error !== undefined ? reject(this.#error) : resolve())));
  }

  /** The checksum of every row added, once every batch's result (and statements) went out. */
  async finish(): Promise<RowChecksum> {
    this.#send(true);
    await this.#chain;
    if (this.#error !== undefined) throw this.#error;
    return this.#sum;
  }

  #send(last: boolean): void {
    if (this.#rows === 0) return;
    this.#copySpan();
    const buf = this.#batch.subarray(0, this.#used);
    const rows = this.#rows;
    this.#batch = last ? Buffer.alloc(0) : newBatch();
    this.#used = 0;
    this.#rows = 0;
    // the tail is done here: a worker round trip would cost more than it
    const worker = last ? undefined : rowWorker();
    this.#inFlight++;
    const result = worker?.run(buf, rows, this.#columns, this.#sum.algorithm, this.#plan);
    result?.catch(() => undefined); // handled in the chain, in order
    this.#chain = this.#chain
      .then(async () => {
        if (this.#error !== undefined) return;
        if (!result) {
          const sql = runHere(buf, rows, this.#columns, this.#sum, this.#plan);
          if (sql) this.#onSql(sql);
          return;
        }
        const r = await result;
        this.#sum.merge(r.acc, rows);
        if (r.sql) this.#onSql(r.sql);
      })
      .catch((error: unknown) => {
        this.#error ??= error;
      })
      .finally(() => {
        this.#inFlight--;
        for (const w of this.#waiters.splice(0)) w();
      });
  }
}
