import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * A stream of `size` random bytes that never holds more than one chunk in memory, and the
 * sha256 of what it produced (valid once the stream has been fully read).
 */
export function randomStream(size: number, chunkSize = 1 << 20): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let left = size;
  let hex: string | undefined;
  const stream = new Readable({
    highWaterMark: chunkSize,
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(chunkSize, left));
      left -= chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest: () => (hex ??= hash.digest('hex')) };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A stream that yields `before` and then fails, to prove a broken source leaves no object behind. */
export function failingStream(before: Buffer, message = 'source broke'): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(before);
        return;
      }
      this.destroy(new Error(message));
    },
  });
}

/**
 * Byte-for-byte equality of two buffers as one fast check: `toEqual` on a multi-MiB Buffer compares
 * element by element through the generic matcher and takes minutes. On a mismatch the message
 * gives sizes, digests and the first differing offset.
 */
export function expectSameBytes(actual: Buffer, expected: Buffer, label = 'bytes'): void {
  if (actual.equals(expected)) return;
  let at = 0;
  while (at < Math.min(actual.length, expected.length) && actual[at] === expected[at]) at++;
  throw new Error(
    `${label} differ: ${actual.length} bytes (sha256 ${sha256(actual)}) vs expected ${expected.length} bytes (sha256 ${sha256(expected)}), first difference at offset ${at}`,
  );
}
