/**
 * Writes whole SQL statements into compressed chunk files and uploads each one.
 *
 * A chunk is compressed into a local temp file while its sha256 and size are computed, then handed
 * to `storage.put` with a factory that reopens the file and `expected` {size, sha256}: the Storage
 * contract's retries need a source they can reopen, which a live SELECT is not. A chunk is cut at a
 * statement boundary once `chunkBytes` of SQL went into it. The upload of chunk n overlaps the
 * writing of chunk n+1; at most one upload per table is in flight, so disk use stays at about two
 * compressed chunks per table being dumped, and memory is flat (stream buffers only).
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VerificationError } from '../errors.js';
import { ByteCounter } from '../storage/byte-counter.js';
import { fileSource } from '../storage/file-source.js';
import type { Storage } from '../storage/storage.js';
import { compressor, type CodecStream } from './codec.js';
import type { DumpCompression, DumpFileRecord } from './types.js';

export interface ChunkSinkOptions {
  storage: Storage;
  /** the dump's prefix, without trailing slash */
  prefix: string;
  /** relative key of chunk n (1-based) */
  keyOf(n: number): string;
  chunkBytes: number;
  compression: DumpCompression;
  gzipLevel?: number;
  /** a directory for temp files, unique to this sink's owner */
  tmpDir: string;
  /** written at the start of every chunk, so each file also loads on its own */
  header: Buffer;
  signal?: AbortSignal;
}

class ChunkFile {
  readonly codec: CodecStream;
  readonly counter = new ByteCounter();
  readonly piped: Promise<void>;
  sqlBytes = 0;

  constructor(readonly path: string, compression: DumpCompression, gzipLevel: number | undefined) {
    this.codec = compressor(compression, gzipLevel);
    this.piped = pipeline(this.codec.output, this.counter, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
    this.piped.catch(() => undefined);
    this.codec.done.catch(() => undefined);
  }

  async write(buf: Buffer): Promise<void> {
    this.sqlBytes += buf.length;
    if (!this.codec.input.write(buf)) {
      await Promise.race([once(this.codec.input, 'drain'), this.piped.then(() => undefined), this.codec.done]);
    }
  }

  async finish(): Promise<{ size: number; sha256: string }> {
    this.codec.input.end();
    await Promise.all([this.piped, this.codec.done]);
    return { size: this.counter.size, sha256: this.counter.sha256 };
  }

  abort(): void {
    this.codec.input.destroy();
    this.codec.output.destroy();
  }
}

export class ChunkSink extends Writable {
  readonly files: DumpFileRecord[] = [];
  sqlBytes = 0;
  readonly #o: ChunkSinkOptions;
  #n = 0;
  #current: ChunkFile | undefined;
  #upload: Promise<void> = Promise.resolve();
  readonly #tmpFiles = new Set<string>();

  constructor(options: ChunkSinkOptions) {
    super({ highWaterMark: 1 << 20 });
    this.#o = options;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.#writeAsync(chunk).then(() => cb(), cb);
  }

  async #writeAsync(chunk: Buffer): Promise<void> {
    if (!this.#current) {
      this.#n++;
      const path = join(this.#o.tmpDir, `chunk-${process.pid}-${Math.random().toString(36).slice(2)}-${this.#n}`);
      this.#tmpFiles.add(path);
      this.#current = new ChunkFile(path, this.#o.compression, this.#o.gzipLevel);
      await this.#current.write(this.#o.header);
    }
    this.sqlBytes += chunk.length;
    await this.#current.write(chunk);
    if (this.#current.sqlBytes >= this.#o.chunkBytes) await this.#rotate();
  }

  async #rotate(): Promise<void> {
    const file = this.#current;
    if (!file) return;
    this.#current = undefined;
    const landed = await file.finish();
    const key = this.#o.keyOf(this.#n);
    // one upload in flight: wait for the previous one before starting the next
    await this.#upload;
    const upload = this.#put(key, file.path, landed);
    upload.catch(() => undefined);
    this.#upload = upload;
  }

  async #put(key: string, path: string, landed: { size: number; sha256: string }): Promise<void> {
    const full = `${this.#o.prefix}/${key}`;
    // a file source: a local storage on this filesystem takes the file as it is, without a copy
    const result = await this.#o.storage.put(full, fileSource(path), {
      expected: landed,
      sizeHint: landed.size,
      signal: this.#o.signal,
    });
    if (result.size !== landed.size || result.sha256 !== landed.sha256) {
      throw new VerificationError(`${this.#o.storage.name}: ${full}: stored ${result.size} bytes sha256 ${result.sha256}, wrote ${landed.size} bytes sha256 ${landed.sha256}`, { retryable: false });
    }
    this.files.push({ key, size: landed.size, sha256: landed.sha256 });
    await unlink(path).catch(() => undefined);
    this.#tmpFiles.delete(path);
  }

  override _final(cb: (error?: Error | null) => void): void {
    (async () => {
      await this.#rotate();
      await this.#upload;
    })().then(() => cb(), cb);
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    this.#current?.abort();
    this.#current = undefined;
    const tmp = [...this.#tmpFiles];
    // let a running upload settle before its file goes
    this.#upload
      .catch(() => undefined)
      .then(() => Promise.all(tmp.map((p) => unlink(p).catch(() => undefined))))
      .then(() => cb(error));
  }
}
