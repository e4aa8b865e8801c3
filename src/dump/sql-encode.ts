/**
 * Text-protocol rows (text-row.ts) in, whole `INSERT … VALUES (…),(…);\n` statements out: the bytes of
 * `literal()` (columns.ts) for every value, without an object, string or Buffer per value.
 *
 * The rows lie in the row kernels' memory (row-kernels.ts) and the SQL is written after them in the
 * same memory, so every value is placed by `copyWithin` (a plain memmove; on Node 20 `Buffer#copy`
 * and `set(subarray)` cost ~4x more per call, and a JS byte loop more still). Whether a text value
 * can be copied as is (no byte to escape, nothing non-ASCII) is answered by the kernels' SIMD scan,
 * whose result most values never meet. A statement is cut before the tuple that would take it past
 * `limit` bytes, and at the end of the batch.
 *
 * Self-contained on purpose (no imports, no inner functions; `isUtf8` is passed in): the dump's
 * workers run its source text (row-workers.ts), and without workers it runs here.
 */
import type { RowKernels } from './row-kernels.js';


/** How a selected column is written (InsertPlan.ways). */
export const WAY_PLAIN = 0;
export const WAY_QUOTED = 1;
export const WAY_HEX = 2;
/** character data: an escaped '…' literal when it is valid UTF-8, else the column's hex form */
export const WAY_TEXT = 3;
/** character data in a charset other than utf8/ascii: always the column's `_charset X'…'` */
export const WAY_TEXT_HEX = 4;
/** generated columns: read (the checksum covers them), never inserted */
export const WAY_SKIP = 5;

export interface InsertPlan {
  /** `INSERT INTO … VALUES ` as bytes */
  head: Uint8Array;
  /** per selected column, a WAY_* */
  ways: Uint8Array;
  /** per selected column, the opening of its hex form (`X'` or `_latin1 X'`) */
  hexOpens: Uint8Array[];
  /** statement size at which the next tuple starts a new statement */
  limit: number;
}

/**
 * Encodes `rows` rows of the `len` bytes at `k.arena` in the kernels' memory, each after 4 unread
 * bytes (RowBatches' layout), into statements at the start of `into` when they fit there, else in
 * a buffer of their own.
 */
export function encodeInserts(k: RowKernels, len: number, rows: number, plan: InsertPlan, isUtf8: (b: Uint8Array) => boolean, into?: ArrayBuffer): Buffer {
  const ways = plan.ways;
  const opens = plan.hexOpens;
  const head = plan.head;
  const cols = ways.length;
  const scan = k.exports.next_special;
  let maxOpen = 2;
  for (let c = 0; c < cols; c++) if (opens[c]!.length > maxOpen) maxOpen = opens[c]!.length;
  // room a row may need at most: hex doubles a value and adds its opening, escaping at most doubles
  // it, and the row may start a statement; the memory grows when the next row might not fit
  const perValue = maxOpen + 6;
  const end = k.arena + len;
  let a = k.bytes(end + Math.ceil(len * 1.25) + 4096 + head.length);
  // the next byte at or after the current value that a text literal cannot hold as is
  let special = -1;
  let o = end;
  let tuples = 0;
  let stmtLen = 0;
  let p = k.arena;
  for (let r = 0; r < rows; r++) {
    // each row follows 4 bytes that are not read (its packet header: see RowBatches)
    p += 4;
    let q = p;
    for (let c = 0; c < cols; c++) {
      const f = a[q]!;
      if (f < 0xfb) q += 1 + f;
      else if (f === 0xfb) q += 1;
      else if (f === 0xfc) q += 3 + (a[q + 1]! | (a[q + 2]! << 8));
      else if (f === 0xfd) q += 4 + (a[q + 1]! | (a[q + 2]! << 8) | (a[q + 3]! << 16));
      else q += 9 + (a[q + 1]! | (a[q + 2]! << 8) | (a[q + 3]! << 16)) + a[q + 4]! * 0x1000000;
    }
    const need = o + 2 * (q - p) + cols * perValue + 2 * head.length + 8;
    if (need > a.length) a = k.bytes(Math.max(need + (end - q), Math.ceil(1.5 * a.length)));
    if (tuples === 0) {
      a.set(head, o);
      o += head.length;
    } else a[o++] = 0x2c;
    const tupleStart = o;
    a[o++] = 0x28;
    let first = true;
    for (let c = 0; c < cols; c++) {
      const f = a[p]!;
      let vlen = -1;
      if (f < 0xfb) {
        vlen = f;
        p += 1;
      } else if (f === 0xfb) p += 1;
      else if (f === 0xfc) {
        vlen = a[p + 1]! | (a[p + 2]! << 8);
        p += 3;
      } else if (f === 0xfd) {
        vlen = a[p + 1]! | (a[p + 2]! << 8) | (a[p + 3]! << 16);
        p += 4;
      } else {
        vlen = (a[p + 1]! | (a[p + 2]! << 8) | (a[p + 3]! << 16)) + a[p + 4]! * 0x1000000;
        p += 9;
      }
      const s = p;
      const e = vlen > 0 ? p + vlen : p;
      p = e;
      const way = ways[c]!;
      if (way === WAY_SKIP) continue;
      if (!first) a[o++] = 0x2c;
      first = false;
      if (vlen < 0) {
        a[o++] = 0x4e; // NULL
        a[o++] = 0x55;
        a[o++] = 0x4c;
        a[o++] = 0x4c;
        continue;
      }
      let hex = way === WAY_HEX || way === WAY_TEXT_HEX;
      if (way === WAY_PLAIN || way === WAY_QUOTED) {
        if (way === WAY_QUOTED) a[o++] = 0x27;
        if (vlen < 16) for (let i = s; i < e; i++) a[o++] = a[i]!;
        else {
          a.copyWithin(o, s, e);
          o += vlen;
        }
        if (way === WAY_QUOTED) a[o++] = 0x27;
      } else if (way === WAY_TEXT) {
        if (special < s) special = scan(s, end);
        a[o++] = 0x27;
        if (special >= e) {
          a.copyWithin(o, s, e);
          o += vlen;
          a[o++] = 0x27;
        } else {
          // escape what needs it; a value that is not valid UTF-8 goes out in hex instead
          const mark = o - 1;
          let high = 0;
          for (let i = s; i < e; i++) {
            const x = a[i]!;
            high |= x;
            if (x === 0x00) (a[o++] = 0x5c), (a[o++] = 0x30);
            else if (x === 0x0a) (a[o++] = 0x5c), (a[o++] = 0x6e);
            else if (x === 0x0d) (a[o++] = 0x5c), (a[o++] = 0x72);
            else if (x === 0x5c) (a[o++] = 0x5c), (a[o++] = 0x5c);
            else if (x === 0x27) (a[o++] = 0x5c), (a[o++] = 0x27);
            else if (x === 0x1a) (a[o++] = 0x5c), (a[o++] = 0x5a);
            else a[o++] = x;
          }
          if (high >= 0x80 && !isUtf8(a.subarray(s, e))) {
            o = mark;
            hex = true;
          } else a[o++] = 0x27;
        }
      }
      if (hex) {
        const open = opens[c]!;
        a.set(open, o);
        o += open.length;
        for (let i = s; i < e; i++) {
          const x = a[i]!;
          const hi = x >>> 4;
          const lo = x & 15;
          a[o++] = hi < 10 ? 0x30 + hi : 0x57 + hi;
          a[o++] = lo < 10 ? 0x30 + lo : 0x57 + lo;
        }
        a[o++] = 0x27;
      }
    }
    a[o++] = 0x29;
    const tupleLen = o - tupleStart;
    if (tuples > 0 && stmtLen + tupleLen + 1 > plan.limit) {
      // the tuple does not fit: its separator becomes the statement's end, and a new head goes before it
      const at = tupleStart - 1 + 2 + head.length;
      a.copyWithin(at, tupleStart, o);
      a[tupleStart - 1] = 0x3b;
      a[tupleStart] = 0x0a;
      a.set(head, tupleStart + 1);
      o = at + tupleLen;
      tuples = 0;
      stmtLen = 0;
    }
    tuples++;
    stmtLen += tupleLen + 1;
  }
  if (p !== end) throw new Error(`a batch of ${rows} rows and ${len} bytes did not hold ${cols} values per row (they ended at ${p - k.arena})`);
  if (tuples > 0) {
    a[o++] = 0x3b;
    a[o++] = 0x0a;
  }
  const out = into !== undefined && into.byteLength >= o - end ? Buffer.from(into, 0, o - end) : Buffer.allocUnsafeSlow(o - end);
  a.copy(out, 0, end, o);
  return out;
}
