/**
 * The table checksum: the row hash is MurmurHash3_x86_128 (published vectors), the worker pool gives
 * exactly the in-thread digest for both algorithms, the sum ignores row order and catches a changed,
 * lost or duplicated row, and v1 is still sha256 of its canonical encoding per row (older dumps keep
 * verifying). Rows are given as the text protocol sends them, with every length form.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { textRow } from '../support/text-row.js';
import { RowChecksum, type ChecksumAlgorithm } from '../../src/dump/checksum.js';
import { RowBatches } from '../../src/dump/row-workers.js';
import { murmur3x86_128 } from '../../src/dump/row-hash.js';
import { textRowEnd } from '../../src/dump/text-row.js';

const hex = (w: Uint32Array) => [...w].map((x) => x.toString(16).padStart(8, '0')).join('');

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

async function offloaded(all: Row[], algorithm: ChecksumAlgorithm): Promise<string> {
  const sum = new RowBatches(all[0]!.length, algorithm);
  for (const r of all) {
    // a packet's payload follows its 4-byte header, inside a larger buffer
    const b = Buffer.concat([Buffer.from('hdr!'), textRow(r), Buffer.from('tail')]);
    if (!sum.add(b, 4, b.length - 4)) await sum.drained();
  }
  return (await sum.finish()).digest();
}

function inThread(all: Row[], algorithm: ChecksumAlgorithm): RowChecksum {
  const sum = new RowChecksum(algorithm);
  for (const r of all) {
    const b = textRow(r);
    expect(textRowEnd(b, 0, r.length)).toBe(b.length);
    sum.addTextRow(b, 0, b.length, r.length);
  }
  return sum;
}

describe('row hash', () => {
  it('is MurmurHash3_x86_128 with seed 0 (published test vectors), over any slice', () => {
    const out = new Uint32Array(4);
    const vectors: [string, string][] = [
      ['', '00000000000000000000000000000000'],
      ['H', 'f69feb5df45637a0f45637a0f45637a0'],
      ['Hello World!', '6bee9883eb1be4f59dfb7172ae3fbea9'],
      ['Hello World! Hello World!', '86163d2b245b8ee23c4d056024166d77'],
      ['Hello World! Hello World! Hello ', '4855a598c76f875e7760fe307dcc7b58'],
      ['メロスは激怒した。必ず、かの', '1d028a63972c672b69df633a4bf21e2e'],
    ];
    for (const [text, want] of vectors) {
      const b = Buffer.from(`ab${text}cd`);
      murmur3x86_128(b, 2, b.length - 2, out);
      expect(hex(out), text).toBe(want);
    }
  });
});

describe('table checksum', () => {
  const table = rows(6000);

  it.each(['rowsum-mm3-v2', 'rowsum-sha256-v1'] as const)('%s: worker batches give the in-thread digest, in any row order', async (algorithm) => {
    const here = inThread(table, algorithm);
    expect(here.rows).toBe(table.length);
    expect(here.digest()).toMatch(new RegExp(`^${algorithm}:[0-9a-f]{${algorithm === 'rowsum-mm3-v2' ? 32 : 64}}$`));
    expect(await offloaded(table, algorithm)).toBe(here.digest());
    expect(await offloaded([...table].reverse(), algorithm)).toBe(here.digest());
  });

  it('catches a changed, a lost and a duplicated row', async () => {
    const base = inThread(table, 'rowsum-mm3-v2').digest();
    const changed = table.map((r, i) => (i === 4321 ? [r[0]!, Buffer.from('x'), r[2]!, r[3]!] : r));
    expect(await offloaded(changed, 'rowsum-mm3-v2')).not.toBe(base);
    expect(await offloaded(table.slice(1), 'rowsum-mm3-v2')).not.toBe(base);
    expect(await offloaded([...table, table[10]!], 'rowsum-mm3-v2')).not.toBe(base);
    // NULL and an empty value differ
    const nullRow = inThread([[null]], 'rowsum-mm3-v2').digest();
    expect(inThread([[Buffer.alloc(0)]], 'rowsum-mm3-v2').digest()).not.toBe(nullRow);
  });

  it('v1 is the sum of the sha256 of each row\'s canonical encoding (what older dumps recorded)', () => {
    const few = table.slice(0, 50);
    let total = 0n;
    for (const r of few) total += BigInt(`0x${createHash('sha256').update(v1Encoding(r)).digest('hex')}`);
    const want = (total % (1n << 256n)).toString(16).padStart(64, '0');
    expect(inThread(few, 'rowsum-sha256-v1').digest()).toBe(`rowsum-sha256-v1:${want}`);
  });
});
