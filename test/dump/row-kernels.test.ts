/**
 * The row kernels (row-kernels.wat): the module in row-kernels-binary.ts is what the .wat assembles
 * to; the hash is MurmurHash3_x86_128 (published vectors, and the JavaScript reference on random
 * input at every alignment and length); the scan finds exactly the bytes a text literal cannot hold,
 * for every byte value, start, end and alignment; a grown memory keeps its bytes.
 */
import { describe, expect, it } from 'vitest';
import { assembleRowKernels, binaryModuleSource, BINARY_FILE } from '../../scripts/lib/assemble-row-kernels.js';
import { readFile } from 'node:fs/promises';
import { MURMUR3_VECTORS, murmur3x86_128 } from '../support/murmur3.js';
import { RowKernels, rowKernelsModule } from '../../src/dump/row-kernels.js';

const hex = (w: Uint32Array) => [...w].map((x) => x.toString(16).padStart(8, '0')).join('');

function kernels(): { k: RowKernels; mem: () => Buffer } {
  const k = new RowKernels(rowKernelsModule());
  return { k, mem: () => k.bytes(0) };
}

describe('row kernels', () => {
  it('row-kernels-binary.ts holds what row-kernels.wat assembles to (run `npm run build:wasm` after editing it)', async () => {
    expect(await readFile(BINARY_FILE, 'utf8')).toBe(binaryModuleSource(await assembleRowKernels()));
  });

  it('hash: the published MurmurHash3_x86_128 vectors, at any offset', () => {
    const { k, mem } = kernels();
    for (const [text, want] of MURMUR3_VECTORS) {
      for (const at of [100, 101, 102, 103]) {
        const b = Buffer.from(text);
        mem().fill(0x5a, at - 4, at + b.length + 20);
        b.copy(mem(), at);
        k.exports.hash(at, at + b.length, 16);
        expect(hex(new Uint32Array(k.exports.memory.buffer, 16, 4)), text).toBe(want);
      }
    }
  });

  it('hash: equal to the reference for every length up to 80 bytes, at every alignment, whatever follows', () => {
    const { k, mem } = kernels();
    const want = new Uint32Array(4);
    let x = 99;
    const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
    let checked = 0;
    for (let len = 0; len <= 80; len++) {
      for (let at = 256; at < 260; at++) {
        const m = mem();
        for (let i = at - 8; i < at + len + 24; i++) m[i] = next();
        murmur3x86_128(m, at, at + len, want);
        k.exports.hash(at, at + len, 16);
        expect(hex(new Uint32Array(k.exports.memory.buffer, 16, 4))).toBe(hex(want));
        checked++;
      }
    }
    expect(checked).toBe(81 * 4);
  });

  it('scan: finds the same byte as a byte-by-byte search, for every byte value, from every start, to every end', () => {
    const { k, mem } = kernels();
    const special = (v: number) => v >= 0x80 || [0x00, 0x0a, 0x0d, 0x5c, 0x27, 0x1a].includes(v);
    const base = 1024;
    let checked = 0;
    const wrong: string[] = [];
    for (let v = 0; v < 256; v++) {
      for (let at = 0; at < 40; at++) {
        // plain bytes around one byte of value v; what lies past the end must not count
        const m = mem();
        m.fill(0x41, base - 16, base + 80);
        m[base + at] = v;
        m[base + 70] = 0x27;
        for (const from of [0, 1, 2, 3, 5, 15, 16, 17, at]) {
          for (const end of [at, at + 1, 33, 40, 64]) {
            if (from > end) continue;
            const expected = special(v) && at >= from && at < end ? at : end;
            const got = k.exports.next_special(base + from, base + end) - base;
            if (got !== expected) wrong.push(`byte ${v} at ${at}, from ${from} to ${end}: ${got}, expected ${expected}`);
            checked++;
          }
        }
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(checked).toBeGreaterThan(40_000);
  });

  it('a grown memory keeps its bytes; past 64 MiB it is marked for replacement', () => {
    const { k } = kernels();
    const before = k.bytes(100);
    before.write('kept', 50);
    expect(k.oversized).toBe(false);
    const after = k.bytes(65 * 1024 * 1024);
    expect(after.length).toBeGreaterThanOrEqual(65 * 1024 * 1024 + 16);
    expect(after.toString('latin1', 50, 54)).toBe('kept');
    expect(before.length).toBe(0);
    expect(k.oversized).toBe(true);
  });
});
