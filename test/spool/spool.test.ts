import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { SpoolFullError } from '../../src/errors.js';
import { createManifest, type ManifestRecord } from '../../src/manifest/manifest.js';
import { createLogger, createSilentLogger } from '../../src/ops/logger.js';
import { openSpool } from '../../src/spool/spool.js';
import { createSpoolDrainer } from '../../src/spool/spool-drainer.js';
import { StorageError } from '../../src/errors.js';
import { hashStream } from '../../src/storage/byte-counter.js';
import { createMemoryStorage } from '../../src/storage/memory/memory-storage.js';
import { withRetry } from '../../src/storage/retrying-storage.js';
import { createS3Storage } from '../../src/storage/s3/s3-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { randomStream } from '../support/bytes.js';
import { faultyStorage } from '../support/faulty-storage.js';
import { startS3rver, stopAllS3rver, type S3rverHandle } from '../support/s3rver.js';
import { waitFor } from '../support/wait.js';

const dirs: string[] = [];
afterAll(async () => {
  await stopAllS3rver();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}, 60_000);

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spool-test-'));
  dirs.push(dir);
  return dir;
}

async function fileOf(dir: string, name: string, size: number): Promise<{ path: string; sha256: string }> {
  const path = join(dir, name);
  const { stream, digest } = randomStream(size);
  await pipeline(stream, createWriteStream(path));
  return { path, sha256: digest() };
}

async function allRecords(storage: Storage): Promise<ManifestRecord[]> {
  const out: ManifestRecord[] = [];
  for await (const r of createManifest(storage).records()) out.push(r);
  return out;
}

/** bytes of every file under dir: how far an upload into s3rver has come */
async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) total += await stat(join(entry.parentPath, entry.name)).then((s) => s.size, () => 0);
  }
  return total;
}

describe('spool', () => {
  it('keeps items in order, moves the source file in, and survives reopening', async () => {
    const dir = await scratch();
    const spool = await openSpool({ dir: join(dir, 'spool'), maxBytes: 1 << 20, logger: createSilentLogger() });
    const a = await fileOf(dir, 'a', 1000);
    await spool.add(a.path, { key: 'k/a', record: { kind: 'file' } });
    await spool.addBuffer(Buffer.from('gap report'), { key: 'k/b', record: { kind: 'gap' } });
    await expect(stat(a.path)).rejects.toThrow(/ENOENT/);
    const again = await openSpool({ dir: join(dir, 'spool'), maxBytes: 1 << 20, logger: createSilentLogger() });
    const items = await again.list();
    expect(items.map((i) => i.key)).toEqual(['k/a', 'k/b']);
    expect(items[0]).toMatchObject({ size: 1000, sha256: a.sha256 });
    expect(await again.stats()).toMatchObject({ items: 2, bytes: 1010 });
  });

  it('refuses an item beyond the cap with an alarm, keeps the source file, drops nothing', async () => {
    const dir = await scratch();
    const alarms: unknown[] = [];
    const lines: string[] = [];
    const logger = createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) });
    const spool = await openSpool({ dir: join(dir, 'spool'), maxBytes: 1500, logger, onAlarm: (stats) => alarms.push(stats) });
    await spool.add((await fileOf(dir, 'a', 1000)).path, { key: 'a', record: { kind: 'file' } });
    const b = await fileOf(dir, 'b', 1000);
    await expect(spool.add(b.path, { key: 'b', record: { kind: 'file' } })).rejects.toBeInstanceOf(SpoolFullError);
    expect(alarms).toHaveLength(1);
    expect(lines.join('')).toMatch(/spool full/);
    expect((await stat(b.path)).size).toBe(1000);
    expect((await spool.list()).map((i) => i.key)).toEqual(['a']);
  });

  it('after a crash in the middle of an add, has the whole item or none of it', async () => {
    const dir = await scratch();
    const spoolDir = join(dir, 'spool');
    const spool = await openSpool({ dir: spoolDir, maxBytes: 1 << 20, logger: createSilentLogger() });
    await spool.add((await fileOf(dir, 'a', 100)).path, { key: 'a', record: { kind: 'file' } });
    // crash after the data moved in, before the descriptor's rename: the add completes on open
    const [done] = await spool.list();
    await writeFile(join(spoolDir, 'tmp', '000000000000002-000000.json'), JSON.stringify({ id: '000000000000002-000000', key: 'b', size: 3, sha256: 'x', record: { kind: 'file' }, enqueuedAt: 2 }));
    await writeFile(join(spoolDir, 'items', '000000000000002-000000.data'), 'bbb');
    // crash before the data moved: the caller still has its file, the spool forgets the item
    await writeFile(join(spoolDir, 'tmp', '000000000000003-000000.json'), '{}');
    // crash in the middle of a removal (descriptor gone, data left): the upload had completed
    await writeFile(join(spoolDir, 'items', '000000000000001-000000.data'), 'uploaded already');
    const reopened = await openSpool({ dir: spoolDir, maxBytes: 1 << 20, logger: createSilentLogger() });
    expect((await reopened.list()).map((i) => i.key).sort()).toEqual([done!.key, 'b']);
    expect(await readdir(join(spoolDir, 'tmp'))).toEqual([]);
    // a and b, each a descriptor and its data; the orphan data is gone
    expect(await readdir(join(spoolDir, 'items'))).toHaveLength(4);
  });
});

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
        started.push(key);
        peak = Math.max(peak, ++inFlight);
        try {
          return await memory.put(key, source, opts);
        } finally {
          inFlight--;
        }
      },
    };
    const drainer = createSpoolDrainer({ spool, storage, manifest: createManifest(storage), concurrency: 3, logger: createSilentLogger() });
    expect(await drainer.drainOnce()).toEqual({ uploaded: 7, failed: 0, remaining: 0 });
    expect(started.filter((k) => !k.startsWith('manifest/'))).toEqual(['k/0', 'k/1', 'k/2', 'k/3', 'k/4', 'k/5', 'k/6']);
    expect(peak).toBeLessThanOrEqual(3);
    const records = await allRecords(memory);
    expect(records).toHaveLength(7);
    expect(records.find((r) => r.key === 'k/3')).toMatchObject({ kind: 'file', n: 3, size: 5003 });
  });

  it('keeps an item while its target fails and delivers it once the target is back', async () => {
    const dir = await scratch();
    const spool = await openSpool({ dir: join(dir, 'spool'), maxBytes: 1 << 30, logger: createSilentLogger() });
    const f = await fileOf(dir, 'f', 4096);
    await spool.add(f.path, { key: 'k/f', record: { kind: 'file' } });
    const memory = createMemoryStorage();
    const faulty = faultyStorage(memory);
    faulty.fail('put', 3, () => new StorageError('target down', { retryable: true }));
    let now = 0;
    const drainer = createSpoolDrainer({ spool, storage: faulty.storage, manifest: createManifest(faulty.storage), concurrency: 1, logger: createSilentLogger(), clock: () => now, retryDelayMs: 1000 });
    for (let round = 0; round < 3; round++) {
      expect(await drainer.drainOnce()).toMatchObject({ uploaded: 0, failed: 1, remaining: 1 });
      // not due again until its pause has passed
      expect(await drainer.drainOnce()).toMatchObject({ uploaded: 0, failed: 0, remaining: 1 });
      now += 60_000;
    }
    expect(await drainer.drainOnce()).toEqual({ uploaded: 1, failed: 0, remaining: 0 });
    expect((await hashStream(await memory.get('k/f'))).sha256).toBe(f.sha256);
    expect((await allRecords(memory)).map((r) => r.key)).toEqual(['k/f']);
  });

  it('S3 stopped in the middle of an upload and restarted: the item lands once, verified', { timeout: 120_000 }, async () => {
    const dir = await scratch();
    const s3 = await startS3rver({ bucket: 'spool-outage' });
    const storage = withRetry(createS3Storage({ bucket: s3.bucket, prefix: 'k/', client: s3.client() }), { maxAttempts: 2, baseDelayMs: 50 });
    const spool = await openSpool({ dir: join(dir, 'spool'), maxBytes: 1 << 30, logger: createSilentLogger() });
    const big = await fileOf(dir, 'big', 96 * 1024 * 1024);
    await spool.add(big.path, { key: 'segments/big', record: { kind: 'file' } });
    const drainer = createSpoolDrainer({ spool, storage, manifest: createManifest(storage), concurrency: 1, logger: createSilentLogger(), retryDelayMs: 50, pollMs: 100 });
    drainer.start();
    await waitFor(async () => (await bytesUnder(s3.directory)) > 8 * 1024 * 1024, { what: 'the upload to be under way', timeoutMs: 30_000, intervalMs: 10 });
    await s3.stop();
    expect((await spool.list()).length).toBe(1);
    await s3.restart();
    await drainer.waitIdle(90_000);
    await drainer.stop();
    const back = await hashStream(await storage.get('segments/big'));
    expect(back).toEqual({ size: 96 * 1024 * 1024, sha256: big.sha256 });
    const records = await allRecords(storage);
    expect(records.map((r) => r.key)).toEqual(['segments/big']);
    expect(records[0]).toMatchObject({ size: 96 * 1024 * 1024, sha256: big.sha256 });
    await storage.close?.();
  });

  it('kill -9 of the uploading process mid-upload: nothing lost, no half object, one manifest record', { timeout: 120_000 }, async () => {
    const dir = await scratch();
    const s3: S3rverHandle = await startS3rver({ bucket: 'spool-kill' });
    const spoolDir = join(dir, 'spool');
    const spool = await openSpool({ dir: spoolDir, maxBytes: 1 << 30, logger: createSilentLogger() });
    const big = await fileOf(dir, 'big', 96 * 1024 * 1024);
    const small = await fileOf(dir, 'small', 1000);
    await spool.add(big.path, { key: 'segments/1-big', record: { kind: 'file' } });
    await spool.add(small.path, { key: 'segments/2-small', record: { kind: 'file' } });

    const child = spawn(process.execPath, ['--import', 'tsx', 'test/spool/support/drain-child.ts'], {
      env: { ...process.env, SPOOL_CHILD: JSON.stringify({ spoolDir, endpoint: s3.endpoint, bucket: s3.bucket }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    await waitFor(async () => (await bytesUnder(s3.directory)) > 16 * 1024 * 1024, { what: 'the child to be uploading', timeoutMs: 60_000, intervalMs: 10 });
    child.kill('SIGKILL');
    await exited;

    const storage = createS3Storage({ bucket: s3.bucket, prefix: 'k/', client: s3.client(), multipartThreshold: 8 * 1024 * 1024, partSize: 8 * 1024 * 1024 });
    // nothing half-written is visible under the key, and nothing is recorded for it
    const listed: string[] = [];
    for await (const o of storage.list('segments/')) listed.push(o.key);
    expect(listed).not.toContain('segments/1-big');
    expect((await allRecords(storage)).map((r) => r.key)).not.toContain('segments/1-big');

    const again = await openSpool({ dir: spoolDir, maxBytes: 1 << 30, logger: createSilentLogger() });
    expect((await again.list()).map((i) => i.key)).toEqual(['segments/1-big', 'segments/2-small']);
    const drainer = createSpoolDrainer({ spool: again, storage, manifest: createManifest(storage), concurrency: 1, logger: createSilentLogger() });
    expect(await drainer.drainOnce()).toEqual({ uploaded: 2, failed: 0, remaining: 0 });
    expect(await hashStream(await storage.get('segments/1-big'))).toEqual({ size: 96 * 1024 * 1024, sha256: big.sha256 });
    expect(await hashStream(await storage.get('segments/2-small'))).toEqual({ size: 1000, sha256: small.sha256 });
    const records = await allRecords(storage);
    expect(records.map((r) => r.key).sort()).toEqual(['segments/1-big', 'segments/2-small']);
    await storage.close?.();
  });
});
