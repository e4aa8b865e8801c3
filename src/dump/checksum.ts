/**
 * The per-table content checksum: for every row a hash of the row's raw column values (as the dump's
 * `selectSql` returns them), and for the table the sum of those row hashes as big-endian integers,
 * modulo 2^bits. Two versions exist, named in the digest and in dump.json's checksumAlgorithm:
 * - `rowsum-mm3-v2` (new dumps): MurmurHash3_x86_128, seed 0, as h1..h4 (row-kernels.wat), of the
 *   row exactly as the text protocol sends it (text-row.ts: per column 0xFB for NULL, or a minimal
 *   length-encoded integer and the bytes). WebAssembly over whole batches of rows: no copy per value
 *   and no native call per row, which made v1's sha256 the largest cost of a dump.
 * - `rowsum-sha256-v1` (dumps written before): sha256 of a canonical encoding (per column 0xFF for
 *   NULL, or 0x00, a 32-bit big-endian length and the bytes). Still verified, so older dumps load
 *   checked.
 *
 * The sum makes it independent of row order, so tables without a primary key (and any table read in
 * another order) check the same; duplicate rows count as many times as they occur (a multiset hash,
 * unlike XOR). It detects accidental differences (a lost, changed, extra or duplicated row); it is
 * not meant to resist a forger who can choose rows, and neither hash is needed for that: every file
 * is also sha256-checked against dump.json. Generated columns are included (they are read, never
 * inserted), so a differently computed STORED/VIRTUAL value is caught too.
 */

export type ChecksumAlgorithm = 'rowsum-sha256-v1' | 'rowsum-mm3-v2';

/** what new dumps record */
export const CHECKSUM_ALGORITHM: ChecksumAlgorithm = 'rowsum-mm3-v2';

const WORDS: Record<ChecksumAlgorithm, number> = { 'rowsum-sha256-v1': 8, 'rowsum-mm3-v2': 4 };

export function isChecksumAlgorithm(s: unknown): s is ChecksumAlgorithm {
  return typeof s === 'string' && Object.hasOwn(WORDS, s);
}

export class RowChecksum {
  readonly algorithm: ChecksumAlgorithm;
  readonly #acc: Uint32Array;
  #rows = 0;

  constructor(algorithm: ChecksumAlgorithm = CHECKSUM_ALGORITHM) {
    this.algorithm = algorithm;
    this.#acc = new Uint32Array(WORDS[algorithm]);
  }

  /** Adds the partial sum of `rows` rows (processBatch's, row-workers.ts; the sum is order-independent). */
  merge(acc: Uint32Array, rows: number): void {
    const mine = this.#acc;
    let carry = 0;
    for (let i = mine.length - 1; i >= 0; i--) {
      const sum = mine[i]! + acc[i]! + carry;
      mine[i] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
    this.#rows += rows;
  }

  get rows(): number {
    return this.#rows;
  }

  digest(): string {
    let hex = '';
    for (const w of this.#acc) hex += w.toString(16).padStart(8, '0');
    return `${this.algorithm}:${hex}`;
  }
}
