import { open, rm, type FileHandle } from 'node:fs/promises';
import { eventChecksumMatches } from './binlog-event.js';
import { BadEventChecksum, SegmentIo } from './segment-io-worker.js';

/**
 * The bytes of one segment on their way to its temporary file: copied into 1 MiB write buffers,
 * which the segment worker (segment-io-worker.ts) checks, hashes and writes, a full buffer at a time
 * (one syscall per MiB, not per event). A background datasync every 16 MiB leaves little for the
 * fsync at the end. Nothing here knows binlog positions: a bad event is reported by its file offset
 * through `badEvent`, which the segment writer turns into its own error.
 */

export const WRITE_BUFFER_BYTES = 1024 * 1024;
const BACKGROUND_SYNC_BYTES = 16 * 1024 * 1024;

/** The write buffers of one writer, handed from segment to segment. At most `count` exist. */
export class WriteBuffers {
  readonly #free: Buffer[] = [];
  #created = 0;

  constructor(readonly count: number) {}

  /** a free buffer, or undefined when all `count` are in use */
  take(): Buffer | undefined {
    const buf = this.#free.pop();
    if (buf) return buf;
    if (this.#created >= this.count) return undefined;
    this.#created++;
    // a whole ArrayBuffer of its own: it moves to the worker and back
    return Buffer.allocUnsafeSlow(WRITE_BUFFER_BYTES);
  }

  give(buf: Buffer): void {
    // buffers made past `count` (after a failure) are dropped, so the pool never grows
    if (this.#free.length < this.count) this.#free.push(buf);
  }
}

/** a buffer with the worker: it comes back with the failure of its chunk, if any */
type InFlight = Promise<{ buffer: Buffer; error?: unknown }>;

export class SegmentFile {
  readonly #handle: FileHandle;
  readonly #path: string;
  readonly #buffers: WriteBuffers;
  readonly #badEvent: (fileOffset: number, size: number) => Error;
  readonly #io: SegmentIo;
  #cur: Buffer | undefined;
  #used = 0;
  /** offset and length in #cur of each event the worker must check */
  #checks: number[] = [];
  #inFlight: InFlight[] = [];
  /** bytes handed to writes so far: the file offset of #cur[0] */
  #shipped = 0;
  #unsynced = 0;
  #syncing: Promise<void> | undefined;
  /** bytes appended */
  size = 0;

  private constructor(handle: FileHandle, path: string, buffers: WriteBuffers, badEvent: (fileOffset: number, size: number) => Error) {
    this.#handle = handle;
    this.#path = path;
    this.#buffers = buffers;
    this.#badEvent = badEvent;
    this.#io = new SegmentIo(handle.fd);
  }

  /** creates `path`, which must not exist */
  static async create(path: string, buffers: WriteBuffers, badEvent: (fileOffset: number, size: number) => Error): Promise<SegmentFile> {
    return new SegmentFile(await open(path, 'wx'), path, buffers, badEvent);
  }

  /**
   * Appends `raw`; with `check`, its CRC32 trailer is verified before the segment can finish.
   * Returns a promise only when it had to wait for a buffer; `raw` may be reused once it settles.
   */
  append(raw: Buffer, check: boolean): Promise<void> | undefined {
    const cur = this.#cur;
    if (cur && raw.length <= cur.length - this.#used) {
      cur.set(raw, this.#used);
      if (check) this.#checks.push(this.#used, raw.length);
      this.#used += raw.length;
      this.size += raw.length;
      return undefined;
    }
    return this.#appendSlow(raw, check);
  }

  async #appendSlow(raw: Buffer, check: boolean): Promise<void> {
    if (raw.length <= WRITE_BUFFER_BYTES) {
      if (this.#cur) this.#ship();
      this.#cur = await this.#takeBuffer();
      this.append(raw, check);
      return;
    }
    // larger than a buffer: checked here (rare, and zlib is fast on big inputs), copied in pieces
    if (check && !eventChecksumMatches(raw)) throw this.#badEvent(this.size, raw.length);
    this.size += raw.length;
    for (let off = 0; off < raw.length; ) {
      if (!this.#cur || this.#used === this.#cur.length) {
        if (this.#cur) this.#ship();
        this.#cur = await this.#takeBuffer();
      }
      const n = Math.min(raw.length - off, this.#cur.length - this.#used);
      this.#cur.set(raw.subarray(off, off + n), this.#used);
      this.#used += n;
      off += n;
    }
  }

  /** hands #cur to the worker */
  #ship(): void {
    const length = this.#used;
    const fileOffset = this.#shipped;
    const checks = this.#checks.length > 0 ? Uint32Array.from(this.#checks) : undefined;
    const chunk = this.#cur!.subarray(0, length);
    this.#cur = undefined;
    this.#used = 0;
    this.#checks = [];
    this.#shipped += length;
    this.#inFlight.push(
      this.#io.write(chunk, checks).then(
        ({ buffer, error }) => {
          if (!error) this.#afterWrite(length);
          return { buffer, error: error instanceof BadEventChecksum ? this.#badEvent(fileOffset + error.offset, error.size) : error };
        },
        // the worker died: its memory is gone with it
        (error: unknown) => ({ buffer: Buffer.allocUnsafeSlow(WRITE_BUFFER_BYTES), error }),
      ),
    );
  }

  async #takeBuffer(): Promise<Buffer> {
    const free = this.#buffers.take();
    if (free) return free;
    const oldest = this.#inFlight.shift();
    if (!oldest) return Buffer.allocUnsafeSlow(WRITE_BUFFER_BYTES);
    const { buffer, error } = await oldest;
    if (error !== undefined) {
      this.#buffers.give(buffer);
      throw error;
    }
    return buffer;
  }

  #afterWrite(bytes: number): void {
    this.#unsynced += bytes;
    if (this.#unsynced >= BACKGROUND_SYNC_BYTES && !this.#syncing) {
      // the kernel writes back while events keep arriving; a failure here surfaces at the final sync
      this.#unsynced = 0;
      const clear = () => {
        this.#syncing = undefined;
      };
      this.#syncing = this.#handle.datasync().then(clear, clear);
    }
  }

  /** Waits for every buffer in flight; they go back to the pool whatever happened. */
  async #settle(): Promise<void> {
    const inFlight = this.#inFlight;
    this.#inFlight = [];
    let failure: unknown;
    for (const { buffer, error } of await Promise.all(inFlight)) {
      this.#buffers.give(buffer);
      failure ??= error;
    }
    if (this.#cur) this.#buffers.give(this.#cur);
    this.#cur = undefined;
    if (failure !== undefined) throw failure;
  }

  /** Everything written, checked, fsynced and closed; the sha256 of the file. */
  async finish(): Promise<string> {
    try {
      if (this.#cur && this.#used > 0) this.#ship();
      await this.#settle();
      await this.#syncing;
      await this.#handle.sync();
      return await this.#io.digest();
    } catch (error) {
      this.#io.drop();
      throw error;
    } finally {
      // every chunk is back: the worker is done with the descriptor
      await this.#handle.close();
    }
  }

  /** Stops and removes the file. */
  async discard(): Promise<void> {
    await this.#settle().catch(() => undefined);
    this.#io.drop();
    await this.#syncing;
    await this.#handle.close().catch(() => undefined);
    await rm(this.#path, { force: true });
  }
}
