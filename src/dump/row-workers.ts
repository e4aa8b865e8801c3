/**
 * Worker threads for the per-row work of dumps and loads: the row checksum (checksum.ts) and the
 * INSERT encoding (sql-encode.ts), both over the row kernels (row-kernels.ts).
 *
 * A dump (and a load's check) reads rows on one JS thread, which the connections' packets keep busy
 * already. Rows are copied, as the text protocol sent them (text-row.ts), into 512 KiB batches
 * (smaller ones cost speed, larger ones memory); a batch goes to a worker, which sums it and (for a
 * dump) encodes its INSERT statements, and sends them back. The sum is order-independent, so
 * partial sums simply add up: the digest is exactly RowChecksum's. Small tails are done in this
 * thread, so small tables never touch a worker, and nothing needs workers: without spare cores the
 * same function (processBatch) runs here.
 *
 * The workers are evaluated from a string holding the functions' own source, so they run the same
 * from dist/, tsx and vitest; they hold the process open only while they have work.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { EvalWorker } from '../threads/eval-worker.js';
import { CHECKSUM_ALGORITHM, RowChecksum, type ChecksumAlgorithm } from './checksum.js';
import { ROW_KERNELS_WASM } from './row-kernels-binary.js';
import { RowKernels, rowKernelsModule } from './row-kernels.js';
import { encodeInserts, type InsertPlan } from './sql-encode.js';
import { textRowEnd, textRowToV1 } from './text-row.js';

export const BATCH_BYTES = 512 * 1024;
/** each row in a batch follows 4 bytes that are not read (its packet header, as received) */
export const ROW_HEAD = 4;
/** batches of one table out at once: memory stays flat when the workers are slower than the rows */
export const MAX_IN_FLIGHT = 4;

/** What processBatch calls, passed in: the workers run its source text, which cannot import. */
interface BatchTools {
  encodeInserts: typeof encodeInserts;
  textRowEnd: typeof textRowEnd;
  textRowToV1: typeof textRowToV1;
  isUtf8: (b: Uint8Array) => boolean;
  sha256: (b: Uint8Array) => Buffer;
}

/**
 * A batch's work, in a worker or here: the batch is copied into the kernels' memory, its rows are
 * summed with `algorithm` (the partial sum comes back in `acc`) and, with a plan, encoded (into
 * `into` when the statements fit there). Self-contained: the workers run its source.
 */
export function processBatch(k: RowKernels, batch: Uint8Array, rows: number, columns: number, algorithm: ChecksumAlgorithm, plan: InsertPlan | undefined, tools: BatchTools, into?: ArrayBuffer): { acc: Uint32Array; sql?: Buffer } {
  const len = batch.length;
  k.bytes(k.arena + len).set(batch, k.arena);
  let ended = 0;
  let acc: Uint32Array;
  if (algorithm === 'rowsum-mm3-v2') {
    acc = new Uint32Array(4);
    ended = k.sumRows(k.arena, k.arena + len, rows, columns, acc) - k.arena;
  } else {
    // rowsum-sha256-v1, for dumps written before v2: sha256 of each row's canonical encoding
    acc = new Uint32Array(8);
    let v1 = Buffer.alloc(0);
    for (let r = 0; r < rows && ended <= len; r++) {
      const start = (ended += 4);
      ended = tools.textRowEnd(batch, ended, columns);
      if (!(ended <= len)) break;
      if (v1.length < ended - start + 4 * columns) v1 = Buffer.alloc(2 * (ended - start + 4 * columns));
      const d = tools.sha256(v1.subarray(0, tools.textRowToV1(batch, start, columns, v1)));
      let carry = 0;
      for (let i = 7; i >= 0; i--) {
        const sum = acc[i]! + d.readUInt32BE(i * 4) + carry;
        acc[i] = sum >>> 0;
        carry = sum > 0xffffffff ? 1 : 0;
      }
    }
  }
  if (ended !== len) throw new Error(`a batch of ${rows} rows and ${len} bytes did not hold ${columns} values per row (they ended at ${ended})`);
  return plan ? { acc, sql: tools.encodeInserts(k, len, rows, plan, tools.isUtf8, into) } : { acc };
}

// CommonJS, run by `new Worker(…, { eval: true })`
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { isUtf8 } = require('node:buffer');
const crypto = require('node:crypto');
${textRowEnd.toString()}
${textRowToV1.toString()}
const WAY_PLAIN = 0, WAY_QUOTED = 1, WAY_HEX = 2, WAY_TEXT = 3, WAY_TEXT_HEX = 4, WAY_SKIP = 5;
${encodeInserts.toString()}
${RowKernels.toString()}
${processBatch.toString()}
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const tools = { encodeInserts: ${encodeInserts.name}, textRowEnd: ${textRowEnd.name}, textRowToV1: ${textRowToV1.name}, isUtf8, sha256 };
const kernelsModule = new WebAssembly.Module(Buffer.from(${JSON.stringify(ROW_KERNELS_WASM)}, 'base64'));
let kernels;
parentPort.on('message', ({ seq, bytes, rows, columns, algorithm, plan, into }) => {
  try {
    kernels ??= new ${RowKernels.name}(kernelsModule);
    const { acc, sql } = ${processBatch.name}(kernels, bytes, rows, columns, algorithm, plan, tools, into);
    if (kernels.oversized) kernels = undefined;
    // the statements are in 'into' when they fitted there; an unused 'into' goes back as well
    const transfer = [bytes.buffer];
    if (sql) transfer.push(sql.buffer);
    if (into && (!sql || sql.buffer !== into)) transfer.push(into);
    parentPort.postMessage({ seq, acc, sql, bytes, into: sql && sql.buffer === into ? undefined : into }, transfer);
  } catch (error) {
    kernels = undefined;
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
  /** the statement buffer offered, when the statements did not use it */
  into?: ArrayBuffer;
  error?: string;
}

/** batch buffers back from the workers, reused so a dump does not allocate a buffer per batch */
const freeBatches: ArrayBuffer[] = [];

function newBatch(): Buffer {
  const b = freeBatches.pop();
  return b ? Buffer.from(b, 0, BATCH_BYTES) : Buffer.allocUnsafeSlow(BATCH_BYTES);
}

/**
 * Buffers the workers write a batch's statements into (a batch's SQL is about 1.1x its rows; hex
 * or escaping can make more, which then gets a buffer of its own). They come back through
 * `releaseStatements` once written out, because a fresh buffer per batch, arriving from another
 * thread, counts against V8's heap limit as new external memory: a dump's worth made the main
 * thread run a full GC about every 100 ms.
 */
const STATEMENT_BYTES = 1280 * 1024;
const freeStatements: ArrayBuffer[] = [];
/** pooled buffers holding statements on their way out: only those come back, and only once */
const outStatements = new WeakSet<ArrayBuffer>();

let statementBuffersMade = 0;

/** how many statement buffers were ever allocated (for tests: a pool that works stays small) */
export function statementBuffersAllocated(): number {
  return statementBuffersMade;
}

function lendStatements(): ArrayBuffer {
  const b = freeStatements.pop();
  if (b) return b;
  statementBuffersMade++;
  return Buffer.allocUnsafeSlow(STATEMENT_BYTES).buffer as ArrayBuffer;
}

function takeBack(b: ArrayBuffer): void {
  if (freeStatements.length < 16) freeStatements.push(b);
}

/**
 * Statements from `RowBatches`' onSql, written out (the stream that took them called back): their
 * buffer serves the next batch. Anything else is ignored, so any buffer may be passed.
 */
export function releaseStatements(sql: Buffer): void {
  const b = sql.buffer as ArrayBuffer;
  if (outStatements.delete(b)) takeBack(b);
}

class PoolWorker {
  readonly #worker = new EvalWorker<Reply>('row worker', WORKER_SOURCE);

  get broken(): boolean {
    return this.#worker.broken;
  }

  /** sums (and with `plan` encodes) the batch; the batch's memory moves to the worker */
  async run(buf: Buffer, rows: number, columns: number, algorithm: ChecksumAlgorithm, plan?: InsertPlan): Promise<BatchResult> {
    const into = plan ? lendStatements() : undefined;
    const transfer = into ? [buf.buffer as ArrayBuffer, into] : [buf.buffer as ArrayBuffer];
    // (a transfer moves the memory: what comes back is another ArrayBuffer object over it)
    const reply = await this.#worker.ask({ bytes: buf, rows, columns, algorithm, plan, into }, transfer);
    const { acc, sql, bytes, error } = reply;
    if (bytes && bytes.buffer.byteLength === BATCH_BYTES && freeBatches.length < 8) freeBatches.push(bytes.buffer as ArrayBuffer);
    // an offer not taken comes back at once; one taken comes back with its statements, once written
    if (reply.into) takeBack(reply.into);
    else if (into && sql) outStatements.add(sql.buffer as ArrayBuffer);
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

const hereTools: BatchTools = { encodeInserts, textRowEnd, textRowToV1, isUtf8, sha256: (b) => createHash('sha256').update(b).digest() };
let hereKernels: RowKernels | undefined;

/** What a worker does with a batch, done in this thread (tails, single cores). */
export function runHere(buf: Buffer, rows: number, columns: number, sum: RowChecksum, plan?: InsertPlan): Buffer | undefined {
  const k = (hereKernels ??= new RowKernels(rowKernelsModule()));
  try {
    const { acc, sql } = processBatch(k, buf, rows, columns, sum.algorithm, plan, hereTools);
    sum.merge(acc, rows);
    return sql;
  } finally {
    if (k.oversized) hereKernels = undefined;
  }
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
    // a machine that cannot run the kernels says so here, before any row is read
    rowKernelsModule();
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
