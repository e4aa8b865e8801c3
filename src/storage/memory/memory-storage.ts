import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StorageNotFoundError, throwIfAborted } from '../../errors.js';
import { ByteCounter } from '../byte-counter.js';
import { assertValidKey, type ByteSource, type ObjectInfo, type OpOptions, type PutOptions, type PutResult, type Storage } from '../storage.js';
import { checkExpected } from '../verify-expected.js';
import { createHash } from 'node:crypto';

/** In-memory storage for unit tests of the layers above storage; it passes the same contract suite. */
export function createMemoryStorage(name = 'memory'): Storage & { readonly objects: Map<string, Buffer> } {
  const objects = new Map<string, Buffer>();

  async function put(key: string, source: ByteSource, opts?: PutOptions): Promise<PutResult> {
    assertValidKey(key);
    throwIfAborted(opts?.signal);
    const counter = new ByteCounter();
    const chunks: Buffer[] = [];
    const input = await source();
    await pipeline(
      input,
      counter,
      async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) chunks.push(chunk);
      },
      { signal: opts?.signal },
    );
    const result: PutResult = { key, size: counter.size, sha256: counter.sha256 };
    checkExpected(name, key, result, opts);
    objects.set(key, Buffer.concat(chunks));
    return result;
  }

  async function get(key: string, opts?: OpOptions): Promise<Readable> {
    assertValidKey(key);
    throwIfAborted(opts?.signal);
    const body = objects.get(key);
    if (!body) throw new StorageNotFoundError(name, key);
    return Readable.from([body]);
  }

  async function head(key: string): Promise<ObjectInfo> {
    assertValidKey(key);
    const body = objects.get(key);
    if (!body) throw new StorageNotFoundError(name, key);
    return { key, size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
  }

  async function* list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys = [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const key of keys) {
      const body = objects.get(key);
      if (body) yield { key, size: body.length };
    }
  }

  async function del(key: string): Promise<void> {
    assertValidKey(key);
    objects.delete(key);
  }

  return { name, objects, capabilities: { atomicReplace: true, maxConcurrency: 8, eventuallyConsistent: false }, put, get, head, list, delete: del };
}
