import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RetryExhaustedError, StorageError, StorageNotFoundError } from '../../src/errors.js';
import { createMemoryStorage } from '../../src/storage/memory/memory-storage.js';
import { withRetry, type RetryInfo } from '../../src/storage/retrying-storage.js';
import type { ObjectInfo, Storage } from '../../src/storage/storage.js';
import { readAll } from '../support/bytes.js';
import { faultyStorage } from '../support/faulty-storage.js';

const transient = (msg = 'ECONNRESET', retryAfterMs?: number) => () =>
  new StorageError(msg, { retryable: true, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) });

function setup(maxAttempts = 4) {
  const memory = createMemoryStorage('mem');
  const faults = faultyStorage(memory);
  const sleeps: number[] = [];
  const retries: RetryInfo[] = [];
  const storage = withRetry(faults.storage, {
    maxAttempts,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    random: () => 1,
    sleep: async (ms) => void sleeps.push(ms),
    onRetry: (i) => retries.push(i),
  });
  return { memory, faults, storage, sleeps, retries };
}

describe('withRetry', () => {
  it('retries transient failures with exponential backoff and reopens the source each attempt', async () => {
    const { faults, storage, sleeps } = setup();
    faults.fail('put', 2, transient());
    let opened = 0;
    const put = await storage.put('a', () => (opened++, Readable.from([Buffer.from('abc')])));
    expect(put.size).toBe(3);
    expect(sleeps).toEqual([100, 200]);
    // the fault fires before the inner put opens its source, so the one successful attempt opened it once
    expect(opened).toBe(1);
    expect(faults.calls.filter((c) => c.op === 'put')).toHaveLength(3);
  });

  it('reopens the source when an attempt fails after reading it', async () => {
    const memory = createMemoryStorage('mem');
    let calls = 0;
    const flaky: Storage = {
      ...memory,
      put: async (key, source, opts) => {
        if (++calls === 1) {
          await readAll(await source());
          throw new StorageError('connection reset mid-body', { retryable: true });
        }
        return memory.put(key, source, opts);
      },
    };
    let opened = 0;
    const storage = withRetry(flaky, { sleep: async () => undefined });
    await storage.put('k', () => (opened++, Readable.from([Buffer.from('payload')])));
    expect(opened).toBe(2);
    expect((await readAll(await memory.get('k'))).toString()).toBe('payload');
  });

  it('waits at least the Retry-After the server asked for', async () => {
    const { faults, storage, sleeps } = setup();
    faults.fail('head', 1, transient('429 too many requests', 1500));
    await storage.put('x', () => Readable.from([Buffer.from('x')]));
    await storage.head('x');
    expect(sleeps).toEqual([1500]);
  });

  it('never retries permanent errors or a missing key', async () => {
    const { faults, storage, sleeps } = setup();
    faults.fail('put', 1, () => new StorageError('403 access denied', { retryable: false }));
    await expect(storage.put('a', () => Readable.from([Buffer.from('a')]))).rejects.toThrow('403 access denied');
    await expect(storage.get('missing')).rejects.toBeInstanceOf(StorageNotFoundError);
    faults.fail('get', 1, () => new TypeError('a bug, not an outage'));
    await expect(storage.get('missing')).rejects.toBeInstanceOf(TypeError);
    expect(sleeps).toEqual([]);
  });

  it('a missing key after a transient failure is still "not found" (callers test for it)', async () => {
    const { faults, storage, sleeps } = setup();
    faults.fail('get', 1, transient());
    await expect(storage.get('missing')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(sleeps).toHaveLength(1);
  });

  it('gives up after maxAttempts with an error listing every attempt', async () => {
    const { faults, storage, retries } = setup(3);
    faults.fail('delete', 5, transient('503 slow down'));
    const error = await storage.delete('a').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    const message = (error as Error).message;
    expect(message).toContain('delete a failed after 3 attempt(s)');
    expect(message.match(/attempt \d: 503 slow down/g)).toHaveLength(3);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('stops retrying when aborted', async () => {
    const { faults } = setup();
    faults.fail('head', 10, transient());
    const controller = new AbortController();
    const storage = withRetry(faults.storage, {
      sleep: async () => controller.abort(new Error('shutting down')),
    });
    await expect(storage.head('a', { signal: controller.signal })).rejects.toThrow();
    expect(faults.calls.filter((c) => c.op === 'head')).toHaveLength(1);
  });

  it('resumes a listing that failed part-way without repeating or skipping keys', async () => {
    const memory = createMemoryStorage('mem');
    for (let i = 0; i < 30; i++) await memory.put(`k${String(i).padStart(2, '0')}`, () => Readable.from([Buffer.from('v')]));
    let listings = 0;
    const flaky: Storage = {
      ...memory,
      async *list(prefix, opts) {
        const broken = ++listings === 1;
        let n = 0;
        for await (const info of memory.list(prefix, opts)) {
          if (broken && ++n > 12) throw new StorageError('connection reset', { retryable: true });
          yield info;
        }
      },
    };
    const keys: string[] = [];
    for await (const info of withRetry(flaky, { sleep: async () => undefined }).list('k') as AsyncIterable<ObjectInfo>)
      keys.push(info.key);
    expect(listings).toBe(2);
    expect(keys).toEqual(Array.from({ length: 30 }, (_, i) => `k${String(i).padStart(2, '0')}`));
  });
});
