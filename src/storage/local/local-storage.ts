import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Writable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { StorageError, StorageNotFoundError, throwIfAborted } from '../../errors.js';
import { ByteCounter } from '../byte-counter.js';
import { assertValidKey, type ByteSource, type ObjectInfo, type ObjectStream, type OpOptions, type PutOptions, type PutResult, type Storage } from '../storage.js';
import { checkExpected, checkLanded } from '../verify-expected.js';
import { fsyncDir, fsyncFile } from '../../fs/durable.js';
import { hashFile } from '../../fs/hash-file.js';

export interface LocalStorageOptions {
  /** directory that holds the objects; created on first write */
  path: string;
}

const TMP_MARK = '.tmp-';

/**
 * Objects are plain files under `path`. A put streams into a hidden temp file in the same
 * directory (a file source on the same filesystem is hard-linked there instead: no copy), fsyncs
 * it, re-reads it to verify, renames it over the key and fsyncs the directory:
 * after a crash a key holds either the old or the new content, and leftovers are hidden temp files.
 */
export function createLocalStorage(options: LocalStorageOptions): Storage {
  const root = options.path;
  const name = `local:${root}`;
  const pathOf = (key: string): string => {
    assertValidKey(key);
    return join(root, ...key.split('/'));
  };

  async function put(key: string, source: ByteSource, opts?: PutOptions): Promise<PutResult> {
    const target = pathOf(key);
    throwIfAborted(opts?.signal);
    await mkdir(dirname(target), { recursive: true });
    const tmp = join(dirname(target), `.${key.split('/').pop()}${TMP_MARK}${randomBytes(6).toString('hex')}`);
    let kept = false;
    try {
      // a file source on this filesystem becomes the object without a copy: its read-back is what was sent
      const linked = source.filePath !== undefined && (await linkOrNot(source.filePath, tmp));
      const sent = linked ? await adoptLinked(key, tmp) : await streamInto(key, tmp, source, opts);
      checkExpected(name, key, sent, opts);
      const landed = linked ? sent : await hashFile(tmp);
      checkLanded(name, key, sent, landed);
      throwIfAborted(opts?.signal);
      await rename(tmp, target);
      kept = true;
      await fsyncDir(dirname(target));
      return sent;
    } catch (error) {
      throw classify(error, name, key);
    } finally {
      if (!kept) await unlink(tmp).catch(() => undefined);
    }
  }

  async function get(key: string, opts?: OpOptions): Promise<ObjectStream> {
    const path = pathOf(key);
    throwIfAborted(opts?.signal);
    try {
      // open first so that a missing key rejects here, before the caller sees a stream
      const handle = await open(path, 'r');
      return Object.assign(handle.createReadStream({ highWaterMark: 1 << 20, signal: opts?.signal }), { filePath: path });
    } catch (error) {
      throw classify(error, name, key);
    }
  }

  async function head(key: string): Promise<ObjectInfo> {
    try {
      const st = await stat(pathOf(key));
      if (!st.isFile()) throw new StorageNotFoundError(name, key);
      return { key, size: st.size, modified: st.mtime };
    } catch (error) {
      throw classify(error, name, key);
    }
  }

  async function* list(prefix: string, opts?: OpOptions): AsyncIterable<ObjectInfo> {
    // walk only the directory the prefix lives in; key order is a string sort, not a tree walk
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? root : join(root, ...prefix.slice(0, slash).split('/'));
    const found: ObjectInfo[] = [];
    for await (const file of walk(base)) {
      throwIfAborted(opts?.signal);
      const key = relative(root, file.path).split(sep).join('/');
      if (key.startsWith(prefix)) found.push({ key, size: file.size, modified: file.modified });
    }
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  async function del(key: string): Promise<void> {
    const path = pathOf(key);
    try {
      await unlink(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw classify(error, name, key);
    }
    // tidy empty directories so listings stay cheap; a concurrent writer may refill one, which is fine
    for (let dir = dirname(path); dir.startsWith(root) && dir !== root; dir = dirname(dir)) {
      if (!(await rmdir(dir).then(() => true, () => false))) break;
    }
  }

  return { name, capabilities: { atomicReplace: true, maxConcurrency: 4, eventuallyConsistent: false }, put, get, head, list, delete: del };
}

async function* walk(dir: string): AsyncIterable<{ path: string; size: number; modified: Date }> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile() && !(entry.name.startsWith('.') && entry.name.includes(TMP_MARK))) {
      const st = await stat(path).catch(() => undefined);
      if (st) yield { path, size: st.size, modified: st.mtime };
    }
  }
}

/** A writable over a FileHandle we keep open ourselves, so we can fsync before closing. */
function handleSink(handle: FileHandle): Writable {
  return new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      handle.write(chunk).then(() => cb(), cb);
    },
    writev(chunks, cb) {
      handle.writev(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), cb);
    },
  });
}

function classify(error: unknown, storage: string, key: string): unknown {
  if (error instanceof StorageError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return new StorageNotFoundError(storage, key, { cause: error });
  if (code === 'ABORT_ERR') return error;
  const retryable = code === 'EAGAIN' || code === 'EBUSY' || code === 'EMFILE' || code === 'ENFILE';
  const hint =
    code === 'ENOSPC'
      ? 'The disk is full: free space or point the storage at a larger volume.'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'Give the service user write access to the storage path (and add it to ReadWritePaths under systemd).'
        : undefined;
  return new StorageError(`${storage}: ${key}: ${(error as Error).message}`, { cause: error, retryable, hint });
}

/** Hard-links `from` to `to`; false where that fails (another filesystem, no link support, ...): the put then streams, and reports any real problem the usual way. */
async function linkOrNot(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch {
    return false;
  }
}

/** Streams the source into a new file `tmp`, fsynced; what was sent. */
async function streamInto(key: string, tmp: string, source: ByteSource, opts: PutOptions | undefined): Promise<PutResult> {
  const handle = await open(tmp, 'wx', 0o640);
  try {
    const counter = new ByteCounter();
    await pipeline(await source(), counter, handleSink(handle), { signal: opts?.signal });
    await handle.sync();
    return { key, size: counter.size, sha256: counter.sha256 };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** A file hard-linked to `tmp`: made readable like any object, fsynced, and read back. */
async function adoptLinked(key: string, tmp: string): Promise<PutResult> {
  await chmod(tmp, 0o640);
  await fsyncFile(tmp);
  return { key, ...(await hashFile(tmp)) };
}
