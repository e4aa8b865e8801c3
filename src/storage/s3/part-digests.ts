import { createHash, type Hash } from 'node:crypto';

/**
 * md5 of each `partSize` slice of a stream, as bytes pass: S3 reports a multipart object's ETag as
 * md5(md5(part1) ‖ md5(part2) ‖ …) + "-N", so knowing the part boundaries lets a put check the
 * ETag without reading the object back. The boundaries must be the uploader's (uploadMultipart cuts
 * every part at exactly `partSize` bytes but the last).
 */
export class PartDigests {
  readonly #partSize: number;
  readonly #done: Buffer[] = [];
  #current: Hash = createHash('md5');
  #inPart = 0;

  constructor(partSize: number) {
    this.#partSize = partSize;
  }

  update(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(chunk.length - offset, this.#partSize - this.#inPart);
      this.#current.update(take === chunk.length ? chunk : chunk.subarray(offset, offset + take));
      this.#inPart += take;
      offset += take;
      if (this.#inPart === this.#partSize) {
        this.#done.push(this.#current.digest());
        this.#current = createHash('md5');
        this.#inPart = 0;
      }
    }
  }

  /** the multipart ETag (without quotes); call once, after the last byte */
  etag(): string {
    const parts = [...this.#done];
    if (this.#inPart > 0 || parts.length === 0) parts.push(this.#current.digest());
    return `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
  }
}
