/**
 * MurmurHash3_x86_128 (Austin Appleby, seed 0) of `b[start, end)`, written to `out` as h1..h4: the
 * JavaScript the dump ran before the row kernels (row-kernels.wat), kept as the tests' reference.
 */
export function murmur3x86_128(b: Uint8Array, start: number, end: number, out: Uint32Array): void {
  const c1 = 0x239b961b;
  const c2 = 0xab0e9789;
  const c3 = 0x38b34ae5;
  const c4 = 0xa1e38b93;
  const len = end - start;
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let h4 = 0;
  let k1 = 0;
  let k2 = 0;
  let k3 = 0;
  let k4 = 0;
  let i = start;
  const blocksEnd = start + (len & ~15);
  for (; i < blocksEnd; i += 16) {
    k1 = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    k2 = b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24);
    k3 = b[i + 8]! | (b[i + 9]! << 8) | (b[i + 10]! << 16) | (b[i + 11]! << 24);
    k4 = b[i + 12]! | (b[i + 13]! << 8) | (b[i + 14]! << 16) | (b[i + 15]! << 24);

    k1 = Math.imul(k1, c1);
    k1 = (k1 << 15) | (k1 >>> 17);
    h1 ^= Math.imul(k1, c2);
    h1 = (h1 << 19) | (h1 >>> 13);
    h1 = (h1 + h2) | 0;
    h1 = (Math.imul(h1, 5) + 0x561ccd1b) | 0;

    k2 = Math.imul(k2, c2);
    k2 = (k2 << 16) | (k2 >>> 16);
    h2 ^= Math.imul(k2, c3);
    h2 = (h2 << 17) | (h2 >>> 15);
    h2 = (h2 + h3) | 0;
    h2 = (Math.imul(h2, 5) + 0x0bcaa747) | 0;

    k3 = Math.imul(k3, c3);
    k3 = (k3 << 17) | (k3 >>> 15);
    h3 ^= Math.imul(k3, c4);
    h3 = (h3 << 15) | (h3 >>> 17);
    h3 = (h3 + h4) | 0;
    h3 = (Math.imul(h3, 5) + 0x96cd1c35) | 0;

    k4 = Math.imul(k4, c4);
    k4 = (k4 << 18) | (k4 >>> 14);
    h4 ^= Math.imul(k4, c1);
    h4 = (h4 << 13) | (h4 >>> 19);
    h4 = (h4 + h1) | 0;
    h4 = (Math.imul(h4, 5) + 0x32ac3b17) | 0;
  }

  // the tail: up to 15 bytes, little-endian into k1..k4
  k1 = 0;
  k2 = 0;
  k3 = 0;
  k4 = 0;
  const rest = end - i;
  for (let j = rest - 1; j >= 0; j--) {
    const v = b[i + j]!;
    if (j >= 12) k4 = (k4 << 8) | v;
    else if (j >= 8) k3 = (k3 << 8) | v;
    else if (j >= 4) k2 = (k2 << 8) | v;
    else k1 = (k1 << 8) | v;
  }
  if (rest > 12) {
    k4 = Math.imul(k4, c4);
    k4 = (k4 << 18) | (k4 >>> 14);
    h4 ^= Math.imul(k4, c1);
  }
  if (rest > 8) {
    k3 = Math.imul(k3, c3);
    k3 = (k3 << 17) | (k3 >>> 15);
    h3 ^= Math.imul(k3, c4);
  }
  if (rest > 4) {
    k2 = Math.imul(k2, c2);
    k2 = (k2 << 16) | (k2 >>> 16);
    h2 ^= Math.imul(k2, c3);
  }
  if (rest > 0) {
    k1 = Math.imul(k1, c1);
    k1 = (k1 << 15) | (k1 >>> 17);
    h1 ^= Math.imul(k1, c2);
  }

  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;

  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  h2 ^= h2 >>> 16;
  h2 = Math.imul(h2, 0x85ebca6b);
  h2 ^= h2 >>> 13;
  h2 = Math.imul(h2, 0xc2b2ae35);
  h2 ^= h2 >>> 16;
  h3 ^= h3 >>> 16;
  h3 = Math.imul(h3, 0x85ebca6b);
  h3 ^= h3 >>> 13;
  h3 = Math.imul(h3, 0xc2b2ae35);
  h3 ^= h3 >>> 16;
  h4 ^= h4 >>> 16;
  h4 = Math.imul(h4, 0x85ebca6b);
  h4 ^= h4 >>> 13;
  h4 = Math.imul(h4, 0xc2b2ae35);
  h4 ^= h4 >>> 16;

  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  out[0] = h1;
  out[1] = h2;
  out[2] = h3;
  out[3] = h4;
}

/** MurmurHash3_x86_128, seed 0: published vectors (text, h1..h4 as hex) */
export const MURMUR3_VECTORS: [string, string][] = [
  ['', '00000000000000000000000000000000'],
  ['H', 'f69feb5df45637a0f45637a0f45637a0'],
  ['Hello World!', '6bee9883eb1be4f59dfb7172ae3fbea9'],
  ['Hello World! Hello World!', '86163d2b245b8ee23c4d056024166d77'],
  ['Hello World! Hello World! Hello ', '4855a598c76f875e7760fe307dcc7b58'],
  ['メロスは激怒した。必ず、かの', '1d028a63972c672b69df633a4bf21e2e'],
];
