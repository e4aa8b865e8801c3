import { createHash, type Hash } from 'node:crypto';

/** Dropbox hashes files in blocks of this size (https://www.dropbox.com/developers/reference/content-hash). */
export const CONTENT_HASH_BLOCK = 4 * 1024 * 1024;

/**
 * Dropbox's content_hash, computed as bytes stream past: the sha256 of the concatenated raw sha256
 * digests of every 4 MiB block. The block boundaries depend only on the byte offset, so any chunking
 * of the input gives the same hash; an empty file has no blocks, so its hash is sha256('').
 */
export class ContentHasher {
  readonly #overall: Hash = createHash('sha256');
  #block: Hash = createHash('sha256');
  #inBlock = 0;
  #hex: string | undefined;

  update(data: Buffer): this {
    if (this.#hex !== undefined) throw new Error('content hash already finalised');
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(CONTENT_HASH_BLOCK - this.#inBlock, data.length - offset);
      this.#block.update(data.subarray(offset, offset + take));
      this.#inBlock += take;
      offset += take;
      if (this.#inBlock === CONTENT_HASH_BLOCK) this.#closeBlock();
    }
    return this;
  }

  /** hex digest; the hasher cannot be updated afterwards */
  digest(): string {
    if (this.#hex === undefined) {
      if (this.#inBlock > 0) this.#closeBlock();
      this.#hex = this.#overall.digest('hex');
    }
    return this.#hex;
  }

  #closeBlock(): void {
    this.#overall.update(this.#block.digest());
    this.#block = createHash('sha256');
    this.#inBlock = 0;
  }
}

export function contentHash(data: Buffer): string {
  return new ContentHasher().update(data).digest();
}
