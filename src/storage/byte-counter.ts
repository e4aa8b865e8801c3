import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * A pass-through that hashes and counts the bytes as they stream, so a put learns its size and
 * sha256 without a second read. Optional extra digests (e.g. md5 for an S3 ETag) ride along.
 */
export class ByteCounter extends Transform {
  #size = 0;
  readonly #sha256: Hash = createHash('sha256');
  readonly #extra: Map<string, Hash>;
  #sha256Hex: string | undefined;

  constructor(extraAlgorithms: readonly string[] = []) {
    // large chunks keep hashing near OpenSSL speed (see notes/baselines.md: 64 KiB halves it)
    super({ highWaterMark: 1 << 20 });
    this.#extra = new Map(extraAlgorithms.map((a) => [a, createHash(a)]));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#size += chunk.length;
    this.#sha256.update(chunk);
    for (const h of this.#extra.values()) h.update(chunk);
    cb(null, chunk);
  }

  get size(): number {
    return this.#size;
  }

  /** hex sha256; only valid once the stream has ended */
  get sha256(): string {
    this.#sha256Hex ??= this.#sha256.digest('hex');
    return this.#sha256Hex;
  }

  digest(algorithm: string, encoding: 'hex' | 'base64' = 'hex'): string {
    const h = this.#extra.get(algorithm);
    if (!h) throw new Error(`digest ${algorithm} was not requested`);
    return h.digest(encoding);
  }
}

/** sha256 and size of a whole stream (used for read-back verification). */
export async function hashStream(stream: NodeJS.ReadableStream): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    hash.update(chunk);
  }
  return { size, sha256: hash.digest('hex') };
}
