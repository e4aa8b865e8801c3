/**
 * Rows (arrays of raw Buffers) in, whole INSERT statements (Buffers, one per line) out, with the
 * running checksum (hashed on worker threads, see checksum-pool.ts). The bytes are exactly those of `literal()` (src/dump/columns.ts) joined into
 * `INSERT … VALUES (…),(…);\n`, but written straight into one Buffer per statement: building them as
 * JS strings cost several allocations per value, and the dump is bound by this loop on one thread.
 */
import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { OffloadedChecksum } from './checksum-pool.js';
import { insertHead, UTF8_CHARSETS } from './columns.js';
import type { DumpColumn } from './types.js';

const QUOTE = 0x27;
const COMMA = 0x2c;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** the escaped form's second byte for the bytes ESCAPE_RE (columns.ts) escapes, 0 for the rest */
const ESCAPED = new Uint8Array(256);
for (const [byte, as] of [[0x00, '0'], [0x0a, 'n'], [0x0d, 'r'], [0x5c, '\\'], [0x27, "'"], [0x1a, 'Z']] as const) ESCAPED[byte] = as.charCodeAt(0);
const NULL_BYTES = Buffer.from('NULL', 'latin1');
const HEX_OPEN = Buffer.from("X'", 'latin1');
const END = Buffer.from(';\n', 'latin1');

const enum Way {
  Plain,
  Quoted,
  Hex,
  Text,
}

interface Column {
  way: Way;
  /** text only: valid UTF-8 goes out as an escaped '…' literal */
  utf8: boolean;
  /** text only: the opening of the hex form used for everything else */
  hexOpen: Buffer;
}

function planOf(c: DumpColumn): Column {
  switch (c.kind) {
    case 'num':
    case 'float':
      return { way: Way.Plain, utf8: false, hexOpen: HEX_OPEN };
    case 'temporal':
      return { way: Way.Quoted, utf8: false, hexOpen: HEX_OPEN };
    case 'bit':
    case 'binary':
      return { way: Way.Hex, utf8: false, hexOpen: HEX_OPEN };
    case 'text': {
      const named = c.charset !== null && /^[a-z0-9_]+$/.test(c.charset);
      return { way: Way.Text, utf8: c.charset === null || UTF8_CHARSETS.has(c.charset), hexOpen: named ? Buffer.from(`_${c.charset} X'`, 'latin1') : HEX_OPEN };
    }
  }
}

export class InsertEncoder extends Transform {
  /** finish() gives the table's RowChecksum once the rows are through */
  readonly checksum = new OffloadedChecksum();
  readonly #head: Buffer;
  readonly #cols: Column[];
  readonly #insertIdx: number[];
  readonly #limit: number;
  #out: Buffer;
  #pos = 0;
  /** tuples in the statement being built, and their bytes plus one separator each (the cut rule) */
  #tuples = 0;
  #len = 0;

  constructor(table: string, columns: readonly DumpColumn[], statementBytes: number) {
    super({ writableObjectMode: true, readableObjectMode: false, writableHighWaterMark: 256, readableHighWaterMark: 1 << 20 });
    this.#head = Buffer.from(insertHead(table, columns), 'latin1');
    this.#cols = columns.map(planOf);
    this.#insertIdx = columns.flatMap((c, i) => (c.generated ? [] : [i]));
    this.#limit = statementBytes;
    this.#out = this.#fresh(0);
    this.#pos = this.#head.length;
  }

  override _transform(row: (Buffer | null)[], _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      const go = this.checksum.add(row);
      const separated = this.#tuples > 0;
      if (separated) this.#byte(COMMA);
      const start = this.#pos;
      this.#byte(0x28);
      for (let k = 0; k < this.#insertIdx.length; k++) {
        const i = this.#insertIdx[k]!;
        if (k > 0) this.#byte(COMMA);
        this.#value(this.#cols[i]!, row[i] ?? null);
      }
      this.#byte(0x29);
      const tupleLen = this.#pos - start;
      if (separated && this.#len + tupleLen + 1 > this.#limit) {
        // the tuple does not fit: the statement ends before its separator, the tuple starts the next one
        const next = this.#fresh(tupleLen);
        next.set(this.#out.subarray(start, this.#pos), this.#head.length);
        this.#pos = start - 1;
        this.#emit();
        this.#out = next;
        this.#pos = this.#head.length + tupleLen;
        this.#tuples = 0;
        this.#len = 0;
      }
      this.#tuples++;
      this.#len += tupleLen + 1;
      if (go) cb();
      else this.checksum.drained().then(() => cb(), cb);
    } catch (error) {
      cb(error as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.#tuples > 0) this.#emit();
    cb();
  }

  /** a new statement buffer holding the head, with room for `extra` more bytes besides the usual */
  #fresh(extra: number): Buffer {
    const b = Buffer.allocUnsafe(this.#head.length + Math.max(this.#limit, 4096) + extra + 64);
    b.set(this.#head, 0);
    return b;
  }

  #emit(): void {
    this.#room(END.length);
    this.#out.set(END, this.#pos);
    this.push(this.#out.subarray(0, this.#pos + END.length));
  }

  #room(n: number): void {
    if (this.#pos + n <= this.#out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.#out.length, this.#pos + n + 64));
    bigger.set(this.#out.subarray(0, this.#pos), 0);
    this.#out = bigger;
  }

  #byte(b: number): void {
    this.#room(1);
    this.#out[this.#pos++] = b;
  }

  #bytes(v: Uint8Array): void {
    this.#room(v.length);
    this.#out.set(v, this.#pos);
    this.#pos += v.length;
  }

  #value(c: Column, v: Buffer | null): void {
    if (v === null) return this.#bytes(NULL_BYTES);
    switch (c.way) {
      case Way.Plain:
        return this.#bytes(v);
      case Way.Quoted:
        this.#byte(QUOTE);
        this.#bytes(v);
        return this.#byte(QUOTE);
      case Way.Hex:
        return this.#hex(HEX_OPEN, v);
      case Way.Text:
        if (c.utf8 && this.#escaped(v)) return;
        return this.#hex(c.hexOpen, v);
    }
  }

  #hex(open: Buffer, v: Buffer): void {
    this.#room(open.length + 2 * v.length + 1);
    const out = this.#out;
    out.set(open, this.#pos);
    let p = this.#pos + open.length;
    for (let i = 0; i < v.length; i++) {
      const b = v[i]!;
      out[p++] = HEX[b >>> 4]!;
      out[p++] = HEX[b & 15]!;
    }
    out[p++] = QUOTE;
    this.#pos = p;
  }

  /** '…' with the escapes, when `v` is valid UTF-8; false (nothing written) when it is not */
  #escaped(v: Buffer): boolean {
    this.#room(2 * v.length + 2);
    const out = this.#out;
    let p = this.#pos;
    out[p++] = QUOTE;
    let high = 0;
    for (let i = 0; i < v.length; i++) {
      const b = v[i]!;
      high |= b;
      const e = ESCAPED[b]!;
      if (e === 0) out[p++] = b;
      else {
        out[p++] = 0x5c;
        out[p++] = e;
      }
    }
    // ASCII is valid UTF-8; anything else needs the real check
    if (high >= 0x80 && !isUtf8(v)) return false;
    out[p++] = QUOTE;
    this.#pos = p;
    return true;
  }
}
