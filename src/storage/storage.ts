import type { Readable } from 'node:stream';

/**
 * The one storage contract. Storage knows nothing of MySQL: it moves named byte streams.
 * Every driver (local, s3, dropbox, memory) passes the shared suite in test/storage/contract.ts.
 *
 * Keys are relative, '/'-separated, never start with '/', never contain '..' or empty segments
 * (see `assertValidKey`). Drivers map them under their configured root/prefix.
 */
export interface Storage {
  /** short name used in logs and errors, e.g. `s3:backups/prod` */
  readonly name: string;
  readonly capabilities: StorageCapabilities;

  /**
   * Streams `source()` to `key` and returns what landed. Guarantees:
   * - the object is complete or absent: a reader never sees a half-written object under `key`;
   * - what landed is verified (size and sha256 against the bytes streamed; each driver uses what
   *   its service offers: a read-back, an ETag/MD5 the service computed, Dropbox's content_hash);
   *   a mismatch throws `VerificationError`;
   * - an existing object under `key` is replaced (atomically where `capabilities.atomicReplace`).
   * `source` is a factory so that a retry can reopen it; a driver calls it exactly once per call,
   * except that it may take the bytes of a file source (`source.filePath`, see fileSource) from the
   * file itself: the local driver hard-links it where it can, so a file is not copied on its disk.
   * If `expected` is given, a size/sha256 mismatch with the streamed bytes throws before anything is kept.
   */
  put(key: string, source: ByteSource, options?: PutOptions): Promise<PutResult>;

  /**
   * Streams the object. A missing key rejects with `StorageNotFoundError` (before any byte). A
   * driver that keeps objects as local files names the file in the stream's `filePath`: a reader
   * may read the file itself instead (then destroys the stream).
   */
  get(key: string, options?: OpOptions): Promise<ObjectStream>;

  /** Size (and sha256 where the driver stores it). A missing key rejects with `StorageNotFoundError`. */
  head(key: string, options?: OpOptions): Promise<ObjectInfo>;

  /**
   * Every object whose key starts with `prefix` (a plain string prefix, not a folder), in ascending
   * key order, paginating as needed. A prefix that matches nothing yields nothing.
   */
  list(prefix: string, options?: OpOptions): AsyncIterable<ObjectInfo>;

  /** Removes the object. Deleting a missing key is not an error (idempotent). */
  delete(key: string, options?: OpOptions): Promise<void>;

  /** Releases clients and sockets. The storage must not be used afterwards. */
  close?(): Promise<void>;
}

export interface StorageCapabilities {
  /** put replaces an existing key without a window in which it is missing or partial */
  readonly atomicReplace: boolean;
  /** how many operations in flight make sense against this service */
  readonly maxConcurrency: number;
  /** list/head may lag behind a completed put */
  readonly eventuallyConsistent: boolean;
}

/** An object's bytes as `get` streams them. */
export type ObjectStream = Readable & {
  /** the local file that holds exactly these bytes, where the object is one */
  readonly filePath?: string;
};

/** Opens a fresh stream of the bytes to store. Called once per attempt. */
export type ByteSource = (() => Readable | Promise<Readable>) & {
  /** a complete local file holding exactly the bytes the factory streams, unchanged until put returns */
  readonly filePath?: string;
};

export interface OpOptions {
  signal?: AbortSignal;
}

export interface PutOptions extends OpOptions {
  /** verify the streamed bytes against these before the object is kept */
  expected?: { size?: number; sha256?: string };
  /** hint for drivers choosing between single and multipart/session uploads */
  sizeHint?: number;
}

export interface PutResult {
  key: string;
  size: number;
  /** hex sha256 of the bytes that landed */
  sha256: string;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** hex sha256 when the driver knows it without reading the object */
  sha256?: string;
  modified?: Date;
}

const badKey = /(^\/)|(\/\/)|(^|\/)\.\.?(\/|$)|[\0\r\n\\]/;

/** Throws a plain Error for keys that are not portable across drivers; this is a programming error. */
export function assertValidKey(key: string): void {
  if (key.length === 0 || key.length > 900 || badKey.test(key) || key.endsWith('/')) {
    throw new Error(`invalid storage key: ${JSON.stringify(key)}`);
  }
}
