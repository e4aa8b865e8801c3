/**
 * Writes whole SQL statements into compressed chunk files and uploads each one.
 *
 * A chunk is compressed into a local temp file (zstd writes it itself) and handed to `storage.put`
 * as a file source (the Storage contract's retries need a source they can reopen, which a live
 * SELECT is not); what `put` verified as stored, size and sha256, goes into the manifest. The file
 * is not hashed here as well: its bytes come from the file either way, and the put reads them
 * anyway (the local driver hard-links the file and reads it back). A chunk is cut at a
 * statement boundary once `chunkBytes` of SQL went into it. The upload of chunk n overlaps the
 * writing of chunk n+1; at most one upload per table is in flight, so disk use stays at about two
 * compressed chunks per table being dumped, and memory is flat (stream buffers only).
 */
import { once } from 'node:events';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileSource } from '../storage/file-source.js';
import type { Storage } from '../storage/storage.js';
import { compressInto, type FileCompressor } from './codec.js';
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
  /** called with each buffer the sink was given, once the compressor took it: its memory may be reused */
  written?(chunk: Buffer): void;
}

class ChunkFile {
  sqlBytes = 0;

  private constructor(
    readonly path: string,
    readonly handle: FileHandle,
    readonly codec: FileCompressor,
  ) {
    this.codec.done.catch(() => undefined);
  }

  static async create(path: string, compression: DumpCompression, gzipLevel: number | undefined): Promise<ChunkFile> {
    const handle = await open(path, 'wx', 0o600);
    try {
      return new ChunkFile(path, handle, compressInto(compression, handle.fd, gzipLevel));
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async write(buf: Buffer, written?: (buf: Buffer) => void): Promise<void> {
    this.sqlBytes += buf.length;
    const more = this.codec.input.write(buf, (error) => {
      if (!error) written?.(buf);
    });
    if (!more) await Promise.race([once(this.codec.input, 'drain'), this.codec.done]);
  }

  /** the finished file's size */
  async finish(): Promise<number> {
    this.codec.input.end();
    try {
      await this.codec.done;
      return (await this.handle.stat()).size;
    } finally {
      await this.handle.close();
    }
  }

  abort(): void {
    this.codec.input.destroy();
    this.codec.done.finally(() => this.handle.close()).catch(() => undefined);
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
      const file = await ChunkFile.create(path, this.#o.compression, this.#o.gzipLevel);
      if (this.destroyed) {
        // destroyed while the file was being opened: _destroy saw no file to stop or remove
        file.abort();
        await file.codec.done.catch(() => undefined);
        await unlink(path).catch(() => undefined);
        throw new Error('the chunk sink was destroyed');
      }
      this.#current = file;
      await this.#current.write(this.#o.header);
    }
    this.sqlBytes += chunk.length;
    await this.#current.write(chunk, this.#o.written);
    if (this.#current.sqlBytes >= this.#o.chunkBytes) await this.#rotate();
  }

  async #rotate(): Promise<void> {
    const file = this.#current;
    if (!file) return;
    this.#current = undefined;
    const size = await file.finish();
    const key = this.#o.keyOf(this.#n);
    // one upload in flight: wait for the previous one before starting the next
    await this.#upload;
    const upload = this.#put(key, file.path, size);
    upload.catch(() => undefined);
    this.#upload = upload;
  }

  async #put(key: string, path: string, size: number): Promise<void> {
    const full = `${this.#o.prefix}/${key}`;
    // a file source: a local storage on this filesystem takes the file as it is, without a copy
    const stored = await this.#o.storage.put(full, fileSource(path), { expected: { size }, sizeHint: size, signal: this.#o.signal });
    this.files.push({ key, size: stored.size, sha256: stored.sha256 });
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
