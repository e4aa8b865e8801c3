/**
 * A row as the server sends it in the text protocol: per column 0xFB for NULL, or a length-encoded
 * integer and that many bytes. Dumps, loads' checks and the drill read rows as these bytes, straight
 * from the connection's packets (row-packets.ts): no object or Buffer per value.
 *
 * Self-contained on purpose (no imports, no inner functions): the checksum workers run their
 * source text (row-workers.ts).
 */

/** Where the row of `columns` values starting at `p` ends. */
export function textRowEnd(b: Uint8Array, p: number, columns: number): number {
  for (let c = 0; c < columns; c++) {
    const f = b[p]!;
    if (f < 0xfb) p += 1 + f;
    else if (f === 0xfb) p += 1;
    else if (f === 0xfc) p += 3 + (b[p + 1]! | (b[p + 2]! << 8));
    else if (f === 0xfd) p += 4 + (b[p + 1]! | (b[p + 2]! << 8) | (b[p + 3]! << 16));
    // 8-byte lengths: a value never exceeds max_allowed_packet (1 GiB), the high bytes are 0
    else p += 9 + (b[p + 1]! | (b[p + 2]! << 8) | (b[p + 3]! << 16)) + b[p + 4]! * 0x1000000;
  }
  return p;
}

/**
 * Writes the row starting at `p` in rowsum-sha256-v1's canonical encoding (NULL: 0xFF; a value:
 * 0x00, its 32-bit big-endian length, its bytes) into `out` from 0; returns the length. `out` needs
 * the row's size plus 4 bytes per column.
 */
export function textRowToV1(b: Uint8Array, p: number, columns: number, out: Uint8Array): number {
  let n = 0;
  for (let c = 0; c < columns; c++) {
    const f = b[p]!;
    if (f === 0xfb) {
      out[n++] = 0xff;
      p += 1;
      continue;
    }
    let len = 0;
    if (f < 0xfb) {
      len = f;
      p += 1;
    } else if (f === 0xfc) {
      len = b[p + 1]! | (b[p + 2]! << 8);
      p += 3;
    } else if (f === 0xfd) {
      len = b[p + 1]! | (b[p + 2]! << 8) | (b[p + 3]! << 16);
      p += 4;
    } else {
      len = (b[p + 1]! | (b[p + 2]! << 8) | (b[p + 3]! << 16)) + b[p + 4]! * 0x1000000;
      p += 9;
    }
    out[n] = 0;
    out[n + 1] = len >>> 24;
    out[n + 2] = (len >>> 16) & 0xff;
    out[n + 3] = (len >>> 8) & 0xff;
    out[n + 4] = len & 0xff;
    out.set(b.subarray(p, p + len), n + 5);
    n += 5 + len;
    p += len;
  }
  return n;
}
