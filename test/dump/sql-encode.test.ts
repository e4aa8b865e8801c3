/**
 * The INSERT encoding from text-protocol rows is exactly `literal()` (columns.ts) for every column kind
 * and awkward value, with the statement-size rule; the same through the worker threads over many
 * batches (compared tuple by tuple, since statements also end at batch boundaries there).
 */
import { describe, expect, it } from 'vitest';
import { textRow } from '../support/text-row.js';
import { insertHead, literal } from '../../src/dump/columns.js';
import { insertPlan, InsertEncoder } from '../../src/dump/insert-encoder.js';
import { RowKernels, rowKernelsModule } from '../../src/dump/row-kernels.js';
import { statementBuffersAllocated } from '../../src/dump/row-workers.js';
import { encodeInserts } from '../../src/dump/sql-encode.js';
import type { DumpColumn } from '../../src/dump/types.js';
import { isUtf8 } from 'node:buffer';

type Row = (Buffer | null)[];

const columns: DumpColumn[] = [
  { name: 'id', kind: 'num', charset: null, generated: false },
  { name: 'f', kind: 'float', charset: null, generated: false },
  { name: 'at', kind: 'temporal', charset: null, generated: false },
  { name: 'bits', kind: 'bit', charset: null, generated: false },
  { name: 'blob', kind: 'binary', charset: null, generated: false },
  { name: 'u', kind: 'text', charset: 'utf8mb4', generated: false },
  { name: 'u2', kind: 'text', charset: 'utf8mb4', generated: false },
  { name: 'l1', kind: 'text', charset: 'latin1', generated: false },
  { name: 'g', kind: 'text', charset: 'utf8mb4', generated: true },
];

const TEXTS = ['', 'plain ascii', "it's", 'back\\slash', 'nul\0byte', 'line\nfeed\r', 'ctrl-z\x1a', 'naïve ☃ 😀', "'", '\\'];

function value(i: number, c: number, x: number): Buffer | null {
  if ((i + c) % 11 === 0) return null;
  switch (c) {
    case 0:
      return Buffer.from(String(i));
    case 1:
      return Buffer.from(`${x % 1000}.125e${x % 7}`);
    case 2:
      return Buffer.from('2024-02-29 23:59:59.000001');
    case 3:
      return Buffer.from([x & 0xff]);
    case 4:
      return i % 50 === 0 ? Buffer.alloc(70_000 + (x % 100), x & 0xff) : Buffer.from([0, 0x27, 0x5c, 0xff, x & 0xff]);
    case 5:
      return Buffer.from(TEXTS[x % TEXTS.length]!.repeat(1 + (x % 30)));
    case 6:
      // invalid UTF-8 in a utf8 column goes out in hex; lengths of 10/13/39/92 bytes are "special" bytes
      return i % 7 === 0 ? Buffer.from([0xc3, 0x28, 0x41]) : Buffer.from('x'.repeat([10, 13, 39, 92, 200, 300][x % 6]!));
    case 7:
      return Buffer.from('caf\xe9', 'latin1');
    default:
      return Buffer.from('generated');
  }
}

function rows(n: number): Row[] {
  let x = 7;
  return Array.from({ length: n }, (_, i) => columns.map((_, c) => value(i, c, (x = (Math.imul(x, 1103515245) + 12345) >>> 0))));
}


/** statements as literal() and the cut rule make them, as a binary string */
function reference(all: Row[], limit: number): string {
  const head = insertHead('t', columns);
  let out = '';
  let tuples = 0;
  let len = 0;
  for (const r of all) {
    const t = `(${r.flatMap((v, c) => (columns[c]!.generated ? [] : [literal(columns[c]!, v)])).join(',')})`;
    if (tuples > 0 && len + t.length + 1 > limit) {
      out += ';\n';
      tuples = 0;
      len = 0;
    }
    out += tuples === 0 ? head + t : `,${t}`;
    tuples++;
    len += t.length + 1;
  }
  return tuples > 0 ? `${out};\n` : out;
}

/** the batch placed where processBatch places it, in kernels of its own or given ones */
function placed(batch: Buffer, k = new RowKernels(rowKernelsModule())): RowKernels {
  k.bytes(k.arena + batch.length).set(batch, k.arena);
  return k;
}

describe('INSERT encoding', () => {
  it('writes exactly literal() with the statement cut rule, in one batch', () => {
    const all = rows(400);
    // one memory for all: what a bigger batch left behind is written over
    const k = new RowKernels(rowKernelsModule());
    for (const [n, limit] of [[400, 1], [400, 600], [17, 100_000], [400, 1 << 20]] as const) {
      const some = all.slice(0, n);
      const batch = Buffer.concat(some.flatMap((r) => [Buffer.from('hdr!'), textRow(r)]));
      const sql = encodeInserts(placed(batch, k), batch.length, some.length, insertPlan('t', columns, limit), isUtf8);
      expect(sql.toString('latin1')).toBe(reference(some, limit));
      expect(isUtf8(sql)).toBe(true);
    }
  });

  it('refuses a batch whose rows do not hold the columns', () => {
    const batch = Buffer.concat([Buffer.alloc(4), textRow(rows(1)[0]!)]);
    const short = batch.subarray(0, batch.length - 1);
    expect(() => encodeInserts(placed(short), short.length, 1, insertPlan('t', columns, 1000), isUtf8)).toThrow(/did not hold 9 values/);
  });

  it('grows the memory while it writes, when the statements outgrow the room set aside', () => {
    // hex doubles every value: the statements take more than twice the rows' bytes
    const binary = columns.map((c) => ({ ...c, kind: 'binary' as const, charset: null, generated: false }));
    const all = Array.from({ length: 3000 }, (_, i) => binary.map((_, c) => Buffer.alloc(20 + ((i * 7 + c) % 300), (i + c) & 0xff)));
    const batch = Buffer.concat(all.flatMap((r) => [Buffer.from('hdr!'), textRow(r)]));
    const k = placed(batch);
    const room = k.bytes(0).length;
    const sql = encodeInserts(k, batch.length, all.length, insertPlan('t', binary, 1 << 30), isUtf8);
    expect(k.bytes(0).length).toBeGreaterThan(room);
    expect(sql.length).toBeGreaterThan(2 * batch.length);
    const head = insertHead('t', binary);
    const tuples = all.map((r) => `(${r.map((v, c) => literal(binary[c]!, v)).join(',')})`);
    expect(sql.toString('latin1')).toBe(`${head}${tuples.join(',')};\n`);
  });

  it('statement buffers given back once written serve later batches; those still held never change', async () => {
    const all = rows(6000);
    const before = statementBuffersAllocated();
    const encoder = new InsertEncoder('t', columns, 1 << 20);
    const held: { b: Buffer; copy: Buffer }[] = [];
    const parts: Buffer[] = [];
    encoder.on('data', (b: Buffer) => {
      parts.push(Buffer.from(b));
      // every third one is kept (as a slow writer would); the rest go back at once, twice even
      if (parts.length % 3 === 0) held.push({ b, copy: Buffer.from(b) });
      else {
        encoder.release(b);
        encoder.release(b);
      }
    });
    const ended = new Promise((resolve) => encoder.on('end', resolve));
    for (const r of all) {
      const b = Buffer.concat([Buffer.from('hdr!'), textRow(r)]);
      if (!encoder.row(b, 4, b.length)) await new Promise<void>((resolve, reject) => encoder.whenReady(resolve, reject));
    }
    await encoder.finish();
    await ended;
    const head = insertHead('t', columns);
    const tuplesOf = (sql: string) => sql.slice(head.length, -2).split(`;\n${head}`).join(',');
    expect(tuplesOf(Buffer.concat(parts).toString('latin1'))).toBe(tuplesOf(reference(all, 1 << 20)));
    for (const h of held) expect(h.b.equals(h.copy)).toBe(true);
    // buffers were reused: far fewer made than batches written (a transfer gives each a new ArrayBuffer object)
    expect(parts.length).toBeGreaterThan(10);
    // (a machine without a spare core has no workers and pools nothing: this test needs one)
    expect(statementBuffersAllocated() - before).toBeGreaterThan(0);
    expect(statementBuffersAllocated() - before).toBeLessThan(parts.length / 2);
  });

  it('through the workers, over many batches: the same tuples in the same order, statements within the limit', async () => {
    const all = rows(6000);
    const limit = 200_000;
    const encoder = new InsertEncoder('t', columns, limit);
    const out: Buffer[] = [];
    encoder.on('data', (b: Buffer) => out.push(b));
    const ended = new Promise((resolve) => encoder.on('end', resolve));
    // packets arrive back to back in socket reads of a few rows (copied in one piece) or alone
    for (let i = 0; i < all.length; i += 1 + (i % 13)) {
      const group = all.slice(i, i + 1 + (i % 13)).map(textRow);
      const b = Buffer.concat(group.flatMap((row) => [Buffer.from('hdr!'), row]));
      let at = 0;
      for (const row of group) {
        if (!encoder.row(b, at + 4, at + 4 + row.length)) await new Promise<void>((resolve, reject) => encoder.whenReady(resolve, reject));
        at += 4 + row.length;
      }
    }
    const sum = await encoder.finish();
    await ended;
    expect(sum.rows).toBe(all.length);
    const head = insertHead('t', columns);
    const tuplesOf = (sql: string) => sql.slice(head.length, -2).split(`;\n${head}`).join(',');
    const got = Buffer.concat(out).toString('latin1');
    expect(tuplesOf(got)).toBe(tuplesOf(reference(all, limit)));
    for (const statement of got.split(';\n').slice(0, -1)) {
      if (statement.length > limit + head.length) expect(statement.indexOf('),(')).toBe(-1);
    }
  });
});
