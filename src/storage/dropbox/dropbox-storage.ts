import { createHash } from 'node:crypto';
import { Readable, Transform, addAbortSignal, type TransformCallback } from 'node:stream';
import { VerificationError, throwIfAborted } from '../../errors.js';
import { assertValidKey, type ByteSource, type ObjectInfo, type OpOptions, type PutOptions, type PutResult, type Storage } from '../storage.js';
import { checkExpected } from '../verify-expected.js';
import { CONTENT_HASH_BLOCK, ContentHasher } from './content-hash.js';
import type { DropboxFileMetadata, DropboxLike } from './dropbox-client.js';
import { classifyDropboxError, isNotFound, type DropboxOperation } from './dropbox-errors.js';

export { createDropboxClient, createDropboxFetch, type DropboxLike } from './dropbox-client.js';

export interface DropboxStorageOptions {
  /** Dropbox folder holding the objects: '' (the app folder itself) or '/a/b' without a trailing slash */
  root: string;
  client: DropboxLike;
  /**
   * Bytes per upload request, a multiple of 4 MiB (default 8 MiB). A source that fits in one chunk
   * goes up in a single files/upload; anything longer through an upload session. One chunk is the
   * most the driver holds in memory.
   */
  chunkSize?: number;
  /** list_folder page size (default 2000, Dropbox's maximum) */
  pageSize?: number;
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;
const MAX_CHUNK = 148 * 1024 * 1024;

/**
 * Objects are files under `root` in Dropbox. Dropbox commits a file only when files/upload or
 * upload_session/finish completes, and replaces it atomically then, so a broken or aborted put
 * (which never reaches that call) leaves nothing. What landed is verified with the size and
 * content_hash Dropbox reports, computed on our side as the bytes stream past.
 *
 * Dropbox paths are case-insensitive: keys that differ only in case are the same file, and a
 * listing spells folder names the way they were first created.
 */
export function createDropboxStorage(options: DropboxStorageOptions): Storage {
  const { client } = options;
  const root = options.root.replace(/\/+$/, '');
  if (root !== '' && !root.startsWith('/')) throw new Error(`dropbox root must be '' or start with '/': ${JSON.stringify(options.root)}`);
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  if (chunkSize <= 0 || chunkSize % CONTENT_HASH_BLOCK !== 0 || chunkSize > MAX_CHUNK) {
    throw new Error(`dropbox chunkSize must be a multiple of 4 MiB up to 148 MiB, got ${chunkSize}`);
  }
  const pageSize = options.pageSize ?? 2000;
  const rootDepth = root === '' ? 1 : root.split('/').length;
  const name = `dropbox:${root === '' ? '/' : root}`;
  const pathOf = (key: string): string => {
    assertValidKey(key);
    return `${root}/${key}`;
  };
  const fail = (operation: DropboxOperation, key: string) => (error: unknown) => {
    throw classifyDropboxError(error, { storage: name, operation, key });
  };

  async function put(key: string, source: ByteSource, opts?: PutOptions): Promise<PutResult> {
    const path = pathOf(key);
    throwIfAborted(opts?.signal);
    const sha256 = createHash('sha256');
    const dropboxHash = new ContentHasher();
    let size = 0;
    const mode = { '.tag': 'overwrite' } as const;
    let input: Readable | undefined;
    try {
      input = await source();
      if (opts?.signal) addAbortSignal(opts.signal, input);
      const chunks = chunksOf(input, chunkSize)[Symbol.asyncIterator]();
      const next = async (): Promise<Buffer> => {
        const { value } = await chunks.next();
        const chunk = value as Buffer;
        size += chunk.length;
        sha256.update(chunk);
        dropboxHash.update(chunk);
        throwIfAborted(opts?.signal);
        return chunk;
      };
      const sent = (): PutResult => ({ key, size, sha256: sha256.digest('hex') });

      // the last chunk is always shorter than chunkSize (possibly empty): that is how we see the end
      let chunk = await next();
      let landed: DropboxFileMetadata;
      let result: PutResult;
      if (chunk.length < chunkSize) {
        result = sent();
        checkExpected(name, key, result, opts);
        landed = (await client.filesUpload({ path, mode, contents: chunk, mute: true })).result;
      } else {
        const { session_id } = (await client.filesUploadSessionStart({ contents: chunk })).result;
        let offset = chunk.length;
        for (chunk = await next(); chunk.length === chunkSize; chunk = await next()) {
          await client.filesUploadSessionAppendV2({ cursor: { session_id, offset }, contents: chunk });
          offset += chunk.length;
        }
        // only now, with every byte read and checked, does the file come into being
        result = sent();
        checkExpected(name, key, result, opts);
        landed = (await client.filesUploadSessionFinish({ cursor: { session_id, offset }, commit: { path, mode, mute: true }, contents: chunk })).result;
      }
      await verifyLanded(key, path, result, dropboxHash.digest(), landed);
      return result;
    } catch (error) {
      input?.destroy();
      throw classifyDropboxError(error, { storage: name, operation: 'put', key });
    }
  }

  async function verifyLanded(key: string, path: string, sent: PutResult, ours: string, landed: DropboxFileMetadata): Promise<void> {
    if (landed.size === sent.size && landed.content_hash === ours) return;
    // the bad file is already committed: take it away so nobody restores from it
    await client.filesDeleteV2({ path }).catch(() => undefined);
    throw new VerificationError(
      `${name}: ${key}: dropbox stored ${landed.size} bytes with content_hash ${landed.content_hash ?? 'none'}, but ${sent.size} bytes with content_hash ${ours} were sent`,
    );
  }

  async function get(key: string, opts?: OpOptions): Promise<Readable> {
    const path = pathOf(key);
    throwIfAborted(opts?.signal);
    const { result, body } = await client.download({ path }, opts?.signal).catch(fail('get', key));
    // Dropbox vouches for the bytes with its content_hash; check it on the way through so corruption
    // in storage or transit fails the stream instead of passing silently
    const verifying = new VerifyingStream(name, key, result);
    // pipe() does not carry errors: a connection cut mid-body must fail the stream, not stall it
    body.on('error', (error: Error) => verifying.destroy(classifyDropboxError(error, { storage: name, operation: 'get', key }) as Error));
    verifying.on('error', () => body.destroy());
    return body.pipe(verifying);
  }

  async function head(key: string, opts?: OpOptions): Promise<ObjectInfo> {
    throwIfAborted(opts?.signal);
    const { result } = await client.filesGetMetadata({ path: pathOf(key) }).catch(fail('head', key));
    if (result['.tag'] !== 'file') throw classifyDropboxError(notFound(), { storage: name, operation: 'head', key });
    return info(key, result as DropboxFileMetadata);
  }

  async function* list(prefix: string, opts?: OpOptions): AsyncIterable<ObjectInfo> {
    // list only the folder the prefix lives in; Dropbox hands entries out in no particular order
    const slash = prefix.lastIndexOf('/');
    const folder = slash < 0 ? root : `${root}/${prefix.slice(0, slash)}`;
    const found: ObjectInfo[] = [];
    try {
      let page = (await client.filesListFolder({ path: folder, recursive: true, limit: pageSize })).result;
      for (;;) {
        for (const entry of page.entries) {
          if (entry['.tag'] !== 'file' || entry.path_display === undefined) continue;
          const key = entry.path_display.split('/').slice(rootDepth).join('/');
          if (key.startsWith(prefix)) found.push(info(key, entry as DropboxFileMetadata));
        }
        if (!page.has_more) break;
        throwIfAborted(opts?.signal);
        page = (await client.filesListFolderContinue({ cursor: page.cursor })).result;
      }
    } catch (error) {
      if (isNotFound(error)) return;
      throw classifyDropboxError(error, { storage: name, operation: 'list', key: prefix });
    }
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  async function del(key: string, opts?: OpOptions): Promise<void> {
    throwIfAborted(opts?.signal);
    try {
      await client.filesDeleteV2({ path: pathOf(key) });
    } catch (error) {
      if (isNotFound(error)) return;
      throw classifyDropboxError(error, { storage: name, operation: 'delete', key });
    }
  }

  return {
    name,
    // Dropbox serialises commits per namespace and answers bursts with too_many_write_operations
    capabilities: { atomicReplace: true, maxConcurrency: 2, eventuallyConsistent: false },
    put,
    get,
    head,
    list,
    delete: del,
  };
}

function info(key: string, meta: DropboxFileMetadata): ObjectInfo {
  return { key, size: meta.size, ...(meta.server_modified ? { modified: new Date(meta.server_modified) } : {}) };
}

function notFound(): Error {
  return Object.assign(new Error('not a file'), { status: 409, error: { error_summary: 'path/not_found/', error: { '.tag': 'path', path: { '.tag': 'not_found' } } } });
}

/**
 * Re-cuts a byte stream into chunks of exactly `size` bytes, then one final shorter chunk (empty
 * when the source ends on a boundary), so the consumer learns the end without reading ahead.
 */
async function* chunksOf(source: AsyncIterable<Buffer | string>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const piece of source) {
    let buf = typeof piece === 'string' ? Buffer.from(piece) : piece;
    while (buf.length > 0) {
      const take = Math.min(size - length, buf.length);
      parts.push(buf.subarray(0, take));
      length += take;
      buf = buf.subarray(take);
      if (length === size) {
        yield Buffer.concat(parts, length);
        parts = [];
        length = 0;
      }
    }
  }
  yield Buffer.concat(parts, length);
}

/** Passes a download through, failing at the end if size or content_hash differ from Dropbox's metadata. */
class VerifyingStream extends Transform {
  readonly #hash = new ContentHasher();
  #size = 0;

  constructor(
    readonly storage: string,
    readonly key: string,
    readonly meta: DropboxFileMetadata,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#size += chunk.length;
    this.#hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const hash = this.#hash.digest();
    if (this.#size === this.meta.size && (this.meta.content_hash === undefined || hash === this.meta.content_hash)) return cb();
    cb(
      new VerificationError(
        `${this.storage}: ${this.key}: downloaded ${this.#size} bytes with content_hash ${hash}, dropbox lists ${this.meta.size} bytes with content_hash ${this.meta.content_hash}`,
      ),
    );
  }
}
