/**
 * The per-table content checksum, `rowsum-sha256-v1`: for every row, sha256 over a canonical encoding
 * of its raw column values (the bytes `selectSql` returns: per column 0xFF for NULL, or 0x00, a
 * 4-byte big-endian length and the bytes); the table checksum is the sum of those row digests as
 * 256-bit integers, modulo 2^256.
 *
 * The sum makes it independent of row order, so tables without a primary key (and any table read in
 * another order) check the same; duplicate rows count as many times as they occur (a multiset hash,
 * unlike XOR). It detects accidental differences (a lost, changed, extra or duplicated row); it is
 * not meant to resist a forger who can choose rows. Generated columns are included (they are read,
 * never inserted), so a differently computed STORED/VIRTUAL value is caught too.
 */
import { createHash } from 'node:crypto';

export const CHECKSUM_ALGORITHM = 'rowsum-sha256-v1' as const;

const NULL_MARK = Buffer.from([0xff]);

export class RowChecksum {
  readonly #acc = new Uint32Array(8);
  #rows = 0;
  readonly #head = Buffer.alloc(5);

  add(row: readonly (Buffer | null)[]): void {
    const h = createHash('sha256');
    for (const v of row) {
      if (v === null) h.update(NULL_MARK);
      else {
        this.#head[0] = 0;
        this.#head.writeUInt32BE(v.length, 1);
        h.update(this.#head).update(v);
      }
    }
    const d = h.digest();
    let carry = 0;
    for (let i = 7; i >= 0; i--) {
      const sum = this.#acc[i]! + d.readUInt32BE(i * 4) + carry;
      this.#acc[i] = sum >>> 0;
      carry = sum > 0xffffffff ? 1 : 0;
    }
    this.#rows++;
  }

  get rows(): number {
    return this.#rows;
  }

  digest(): string {
    let hex = '';
    for (const w of this.#acc) hex += w.toString(16).padStart(8, '0');
    return `${CHECKSUM_ALGORITHM}:${hex}`;
  }
}
