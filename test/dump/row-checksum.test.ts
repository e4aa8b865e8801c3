/**
 * The table checksum: the row hash is MurmurHash3_x86_128 (published vectors), summed over rows;
 * the worker pool and this thread give exactly the reference digest (computed here with BigInt and
 * the JavaScript reference hash) for both algorithms; the sum ignores row order and catches a
 * changed, lost or duplicated row; v1 is still sha256 of its canonical encoding per row (older dumps
 * keep verifying). Rows are given as the text protocol sends them, with every length form.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MURMUR3_VECTORS, murmur3x86_128 } from '../support/murmur3.js';
import { textRow } from '../support/text-row.js';
import { RowChecksum, type ChecksumAlgorithm } from '../../src/dump/checksum.js';
import { RowBatches, runHere } from '../../src/dump/row-workers.js';

type Row = (Buffer | null)[];

function rows(n: number, seed = 1): Row[] {
  let x = seed;
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  return Array.from({ length: n }, (_, i) => [
    Buffer.from(String(i)),
    next() % 7 === 0 ? null : Buffer.from('v'.repeat(next() % 300)),
    // sometimes a row far larger than one worker batch
    i % 997 === 5 ? Buffer.alloc(1_200_000 + (next() % 17), i & 0xff) : Buffer.from([next() & 0xff, 0, 0xff]),
    i % 3 === 0 ? Buffer.alloc(300 + (next() % 70_000), 0xfb) : Buffer.from([0xfb, 0xfc]),
  ]);
}

/** rowsum-sha256-v1's canonical encoding, written independently of the code under test */
function v1Encoding(row: Row): Buffer {
  return Buffer.concat(
    row.map((v) => {
      if (v === null) return Buffer.from([0xff]);
      const head = Buffer.alloc(5);
      head.writeUInt32BE(v.length, 1);
      return Buffer.concat([head, v]);
    }),
  );
}

/** the digest as checksum.ts defines it, with BigInt and the reference hashes */
function reference(all: Row[], algorithm: ChecksumAlgorithm): string {
  const bits = algorithm === 'rowsum-mm3-v2' ? 128n : 256n;
  const out = new Uint32Array(4);
  let total = 0n;
  for (const r of all) {
    if (algorithm === 'rowsum-sha256-v1') total += BigInt(`0x${createHash('sha256').update(v1Encoding(r)).digest('hex')}`);
    else {
      const b = textRow(r);
      murmur3x86_128(b, 0, b.length, out);
      total += [...out].reduce((n, w) => (n << 32n) | BigInt(w), 0n);
    }
  }
  return `${algorithm}:${(total % (1n << bits)).toString(16).padStart(Number(bits / 4n), '0')}`;
}

async function offloaded(all: Row[], algorithm: ChecksumAlgorithm): Promise<string> {
  const sum = new RowBatches(all[0]!.length, algorithm);
  for (const r of all) {
    // a packet's payload follows its 4-byte header, inside a larger buffer
    const b = Buffer.concat([Buffer.from('hdr!'), textRow(r), Buffer.from('tail')]);
    if (!sum.add(b, 4, b.length - 4)) await sum.drained();
  }
  return (await sum.finish()).digest();
}

/** every row in one batch, in this thread */
function here(all: Row[], algorithm: ChecksumAlgorithm): RowChecksum {
  const sum = new RowChecksum(algorithm);
  runHere(Buffer.concat(all.flatMap((r) => [Buffer.from('hdr!'), textRow(r)])), all.length, all[0]!.length, sum);
  return sum;
}

describe('the reference row hash', () => {
  it('is MurmurHash3_x86_128 with seed 0 (published test vectors), over any slice', () => {
    const out = new Uint32Array(4);
    for (const [text, want] of MURMUR3_VECTORS) {
      const b = Buffer.from(`ab${text}cd`);
      murmur3x86_128(b, 2, b.length - 2, out);
      expect([...out].map((x) => x.toString(16).padStart(8, '0')).join(''), text).toBe(want);
    }
  });
});

describe('table checksum', () => {
  const table = rows(6000);

  it.each(['rowsum-mm3-v2', 'rowsum-sha256-v1'] as const)('%s: worker batches and this thread give the reference digest, in any row order', async (algorithm) => {
    const want = reference(table, algorithm);
    const mine = here(table, algorithm);
    expect(mine.rows).toBe(table.length);
    expect(mine.digest()).toBe(want);
    expect(await offloaded(table, algorithm)).toBe(want);
    expect(await offloaded([...table].reverse(), algorithm)).toBe(want);
  });

  it('takes every length form, 8-byte lengths too (a value of 16 MiB or more)', () => {
    const big = [[Buffer.from('1'), Buffer.alloc(16 * 1024 * 1024 + 3, 0x61), null]];
    expect(here(big, 'rowsum-mm3-v2').digest()).toBe(reference(big, 'rowsum-mm3-v2'));
  });

  it('catches a changed, a lost and a duplicated row', async () => {
    const base = reference(table, 'rowsum-mm3-v2');
    const changed = table.map((r, i) => (i === 4321 ? [r[0]!, Buffer.from('x'), r[2]!, r[3]!] : r));
    expect(await offloaded(changed, 'rowsum-mm3-v2')).not.toBe(base);
    expect(await offloaded(table.slice(1), 'rowsum-mm3-v2')).not.toBe(base);
    expect(await offloaded([...table, table[10]!], 'rowsum-mm3-v2')).not.toBe(base);
    // NULL and an empty value differ
    expect(here([[Buffer.alloc(0)]], 'rowsum-mm3-v2').digest()).not.toBe(here([[null]], 'rowsum-mm3-v2').digest());
  });

  it.each(['rowsum-mm3-v2', 'rowsum-sha256-v1'] as const)('%s: refuses a batch whose rows do not hold the columns', (algorithm) => {
    const row = Buffer.concat([Buffer.from('hdr!'), textRow(table[3]!)]);
    // one byte short, and one column more than the rows have
    expect(() => runHere(row.subarray(0, row.length - 1), 1, 4, new RowChecksum(algorithm))).toThrow(/did not hold 4 values per row/);
    expect(() => runHere(row, 1, 5, new RowChecksum(algorithm))).toThrow(/did not hold 5 values per row/);
  });
});
