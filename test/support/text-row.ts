/** A row as the text protocol sends it, built independently of src/dump: 0xFB for NULL, else the minimal length-encoded integer and the bytes. */
export function textRow(row: readonly (Buffer | null)[]): Buffer {
  const parts: Buffer[] = [];
  for (const v of row) {
    if (v === null) parts.push(Buffer.from([0xfb]));
    else if (v.length < 0xfb) parts.push(Buffer.from([v.length]), v);
    else if (v.length < 0x10000) parts.push(Buffer.from([0xfc, v.length & 0xff, v.length >> 8]), v);
    else if (v.length < 0x1000000) parts.push(Buffer.from([0xfd, v.length & 0xff, (v.length >> 8) & 0xff, v.length >> 16]), v);
    else {
      const head = Buffer.alloc(9);
      head[0] = 0xfe;
      head.writeBigUInt64LE(BigInt(v.length), 1);
      parts.push(head, v);
    }
  }
  return Buffer.concat(parts);
}
