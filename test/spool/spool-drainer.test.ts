import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { createManifest } from '../../src/manifest/manifest.js';
import { createSilentLogger } from '../../src/ops/logger.js';
import { openSpool, type Spool } from '../../src/spool/spool.js';
import { createSpoolDrainer } from '../../src/spool/spool-drainer.js';
import { hashStream } from '../../src/storage/byte-counter.js';
import { createMemoryStorage } from '../../src/storage/memory/memory-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { sha256 } from '../support/bytes.js';
import { faultyStorage } from '../support/faulty-storage.js';
import { waitFor } from '../support/wait.js';
import { allRecords, capturingLogger, fileOf } from './support/spool-fixtures.js';

/** The drainer against the memory driver: order, bound, retries, and every crash window of an upload. */

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'drainer-test-'));
  dirs.push(dir);
  return dir;
}

async function spoolWith(dir: string, items: [key: string, body: string][], logger = createSilentLogger()): Promise<Spool> {
  const spool = await openSpool({ dir: join(dir, 'spool'), maxBytes: 1 << 30, logger });
  for (const [key, body] of items) await spool.addBuffer(Buffer.from(body), { key, record: { kind: 'file', note: key } });
  return spool;
}

const putString = (storage: Storage, key: string, body: string) => storage.put(key, () => Readable.from([Buffer.from(body)]));

describe('spool drainer', () => {
  it('uploads oldest first with bounded concurrency, verified and recorded, then removes', async () => {
    const dir = await scratch();
    const spool = await openSpool({ dir: join(dir, 'spool'), maxBytes: 1 << 30, logger: createSilentLogger() });
    for (let i = 0; i < 7; i++) await spool.add((await fileOf(dir, `f${i}`, 5000 + i)).path, { key: `k/${i}`, record: { kind: 'file', n: i } });
    const memory = createMemoryStorage();
    let inFlight = 0;
    let peak = 0;
    const started: string[] = [];
    const storage: Storage = {
      ...memory,
      put: async (key, source, opts) => {
        if (key.startsWith('manifest/')) return memory.put(key, source, opts);
        started.push(key);
        peak = Math.max(peak, ++inFlight);
        try {
          // let the others start: without a bound they would all be in flight here
          await new Promise((resolve) => setImmediate(resolve));
          return await memory.put(key, source, opts);
        } finally {
          inFlight--;
        }
      },
    };
    const uploaded: string[] = [];
    const drainer = createSpoolDrainer({ spool, storage, manifest: createManifest(storage), concurrency: 3, logger: createSilentLogger(), onUploaded: (i) => uploaded.push(i.key) });
    expect(await drainer.drainOnce()).toEqual({ uploaded: 7, failed: 0, remaining: 0 });
    expect(started).toEqual(['k/0', 'k/1', 'k/2', 'k/3', 'k/4', 'k/5', 'k/6']);
    expect(peak).toBe(3);
    expect(uploaded.sort()).toEqual(started);
    const records = await allRecords(memory);
    expect(records).toHaveLength(7);
    expect(records.find((r) => r.key === 'k/3')).toMatchObject({ v: 1, kind: 'file', n: 3, size: 5003 });
    expect(await spool.stats()).toEqual({ items: 0, bytes: 0 });
  });

  it('keeps an item while its target fails, backs off, lets later items pass, and delivers it once the target is back', async () => {
    const dir = await scratch();
    const spool = await spoolWith(dir, [['k/first', 'first'], ['k/second', 'second']]);
    const memory = createMemoryStorage();
    const faulty = faultyStorage(memory);
    faulty.fail('put', 3, () => new StorageError('target down', { retryable: true }));
    let now = 0;
    const { logger, lines } = capturingLogger();
    const drainer = createSpoolDrainer({ spool, storage: faulty.storage, manifest: createManifest(faulty.storage), concurrency: 1, logger, clock: () => now, retryDelayMs: 1000 });
    // put 1 (first) and put 2 (second) fail
    expect(await drainer.drainOnce()).toEqual({ uploaded: 0, failed: 2, remaining: 2 });
    // not due again until the pause has passed
    expect(await drainer.drainOnce()).toEqual({ uploaded: 0, failed: 0, remaining: 2 });
    now += 1000;
    // put 3 (first) fails again; second goes through
    expect(await drainer.drainOnce()).toEqual({ uploaded: 1, failed: 1, remaining: 1 });
    now += 1000;
    // the first item's pause doubled: 2 s after its second failure
    expect(await drainer.drainOnce()).toEqual({ uploaded: 0, failed: 0, remaining: 1 });
    now += 1000;
    expect(await drainer.drainOnce()).toEqual({ uploaded: 1, failed: 0, remaining: 0 });
    expect(memory.objects.get('k/first')?.toString()).toBe('first');
    expect((await allRecords(memory)).map((r) => r.key)).toEqual(['k/first', 'k/second']);
    expect(lines.filter((l) => l.level === 'warn' && /upload of k\/first .* failed; it stays in the spool/.test(String(l.message)))).toHaveLength(2);
  });

  it('crash after the put, before the record: the next run records it once and removes it', async () => {
    const dir = await scratch();
    const spool = await spoolWith(dir, [['k/a', 'aaaa']]);
    const storage = createMemoryStorage();
    await putString(storage, 'k/a', 'aaaa');
    const drainer = createSpoolDrainer({ spool, storage, manifest: createManifest(storage), concurrency: 1, logger: createSilentLogger() });
    expect(await drainer.drainOnce()).toEqual({ uploaded: 1, failed: 0, remaining: 0 });
    expect(await allRecords(storage)).toEqual([expect.objectContaining({ key: 'k/a', size: 4, sha256: sha256('aaaa'), kind: 'file', note: 'k/a' })]);
  });

  it('crash after the record, before the removal: the next run removes it without a second upload or record', async () => {
    const dir = await scratch();
    const spool = await spoolWith(dir, [['k/a', 'aaaa']]);
    const memory = createMemoryStorage();
    const manifest = createManifest(memory, { clock: () => new Date('2026-01-01T00:00:00Z') });
    await manifest.recordObject('file', await putString(memory, 'k/a', 'aaaa'), { note: 'k/a' });
    const faulty = faultyStorage(memory);
    const drainer = createSpoolDrainer({ spool, storage: faulty.storage, manifest: createManifest(faulty.storage), concurrency: 1, logger: createSilentLogger() });
    expect(await drainer.drainOnce()).toEqual({ uploaded: 1, failed: 0, remaining: 0 });
    expect(faulty.calls.filter((c) => c.op === 'put')).toEqual([]);
    expect(await allRecords(memory)).toEqual([expect.objectContaining({ key: 'k/a', writtenAt: '2026-01-01T00:00:00.000Z' })]);
  });

  it('a record without its object (deleted behind its back): the same bytes are put again, the record stays one', async () => {
    const dir = await scratch();
    const spool = await spoolWith(dir, [['k/a', 'aaaa']]);
    const storage = createMemoryStorage();
    await createManifest(storage).recordObject('file', await putString(storage, 'k/a', 'aaaa'), { note: 'k/a' });
    await storage.delete('k/a');
    const drainer = createSpoolDrainer({ spool, storage, manifest: createManifest(storage), concurrency: 1, logger: createSilentLogger() });
    expect(await drainer.drainOnce()).toEqual({ uploaded: 1, failed: 0, remaining: 0 });
    expect(storage.objects.get('k/a')?.toString()).toBe('aaaa');
    expect(await allRecords(storage)).toHaveLength(1);
    expect(await createManifest(storage).verify({ deep: true })).toEqual({ checked: 1, missing: [], altered: [] });
  });

  it('never overwrites an object recorded with other bytes: the item stays and the conflict is an error', async () => {
    const dir = await scratch();
    const spool = await spoolWith(dir, [['k/a', 'new bytes']]);
    const storage = createMemoryStorage();
    await createManifest(storage).recordObject('file', await putString(storage, 'k/a', 'old bytes!'));
    const { logger, lines } = capturingLogger();
    const drainer = createSpoolDrainer({ spool, storage, manifest: createManifest(storage), concurrency: 1, logger });
    expect(await drainer.drainOnce()).toEqual({ uploaded: 0, failed: 1, remaining: 1 });
    expect(storage.objects.get('k/a')?.toString()).toBe('old bytes!');
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(String(errors[0]!['error'])).toMatch(/k\/a is already recorded with other bytes.*not overwriting/);
  });

  it('an item whose spooled data changed is taken out of the queue loudly, kept aside, not uploaded', async () => {
    const dir = await scratch();
    const { logger, lines } = capturingLogger();
    const spool = await spoolWith(dir, [['k/a', 'aaaa'], ['k/b', 'bbbb']], logger);
    const [a] = await spool.list();
    await writeFile(a!.dataPath, 'AAAA');
    const storage = createMemoryStorage();
    const drainer = createSpoolDrainer({ spool, storage, manifest: createManifest(storage), concurrency: 1, logger });
    expect(await drainer.drainOnce()).toEqual({ uploaded: 1, failed: 1, remaining: 0 });
    expect(storage.objects.has('k/a')).toBe(false);
    expect((await allRecords(storage)).map((r) => r.key)).toEqual(['k/b']);
    expect(await spool.stats()).toMatchObject({ items: 0, damaged: 1 });
    expect(lines.some((l) => l.level === 'error' && /k\/a.*damaged.*sha256/.test(String(l.message)))).toBe(true);
  });

  it('the daemon loop wakes on notify(), also when the item arrives during a pass', async () => {
    const dir = await scratch();
    const spool = await spoolWith(dir, [['k/0', 'zero']]);
    const memory = createMemoryStorage();
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const storage: Storage = {
      ...memory,
      put: async (key, source, opts) => {
        if (key === 'k/0') await gate;
        return memory.put(key, source, opts);
      },
    };
    // a poll interval far beyond the test's timeout: only notify() can deliver in time
    const drainer = createSpoolDrainer({ spool, storage, manifest: createManifest(storage), concurrency: 1, logger: createSilentLogger(), pollMs: 600_000 });
    drainer.start();
    try {
      await waitFor(() => release !== undefined && memory.objects.size === 0, { what: 'the first pass to be under way' });
      await spool.addBuffer(Buffer.from('one'), { key: 'k/1', record: { kind: 'file' } });
      drainer.notify();
      release!();
      await waitFor(() => memory.objects.has('k/1'), { what: 'k/1 to be uploaded after notify()', timeoutMs: 5000 });
      await spool.addBuffer(Buffer.from('two'), { key: 'k/2', record: { kind: 'file' } });
      drainer.notify();
      await drainer.waitIdle(5000);
      expect([...memory.objects.keys()].filter((k) => k.startsWith('k/')).sort()).toEqual(['k/0', 'k/1', 'k/2']);
    } finally {
      await drainer.stop();
    }
    expect(await hashStream(await memory.get('k/2'))).toEqual({ size: 3, sha256: sha256('two') });
  });
});
