import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageNotFoundError } from '../../src/errors.js';
import { createManifest } from '../../src/manifest/manifest.js';
import { createSilentLogger } from '../../src/ops/logger.js';
import { openSpool } from '../../src/spool/spool.js';
import { createSpoolDrainer } from '../../src/spool/spool-drainer.js';
import { hashStream } from '../../src/storage/byte-counter.js';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import { withRetry } from '../../src/storage/retrying-storage.js';
import { createS3Storage } from '../../src/storage/s3/s3-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { startS3rver, stopAllS3rver } from '../support/s3rver.js';
import { waitFor } from '../support/wait.js';
import { allRecords, bytesUnder, capturingLogger, fileOf } from './support/spool-fixtures.js';

/**
 * Real faults in the middle of a real upload: the S3 server going away while a 64 MiB item is in
 * flight, and the uploading process killed with SIGKILL (to S3 and to a local storage).
 */

const BIG = 64 * 1024 * 1024;
const dirs: string[] = [];
afterAll(async () => {
  await stopAllS3rver();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}, 60_000);

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spool-faults-'));
  dirs.push(dir);
  return dir;
}

async function keysUnder(storage: Storage, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of storage.list(prefix)) out.push(o.key);
  return out;
}

/** After the kill: nothing half-written under the key, no record for it; a new drainer finishes the job exactly once. */
async function expectRecoveryAfterKill(storage: Storage, spoolDir: string, big: { sha256: string }, small: { sha256: string }): Promise<void> {
  expect(await keysUnder(storage, 'segments/')).not.toContain('segments/1-big');
  await expect(storage.head('segments/1-big')).rejects.toBeInstanceOf(StorageNotFoundError);
  expect((await allRecords(storage)).map((r) => r.key)).not.toContain('segments/1-big');

  const again = await openSpool({ dir: spoolDir, maxBytes: 1 << 30, logger: createSilentLogger() });
  expect((await again.list()).map((i) => i.key)).toEqual(['segments/1-big', 'segments/2-small']);
  const drainer = createSpoolDrainer({ spool: again, storage, manifest: createManifest(storage), concurrency: 1, logger: createSilentLogger() });
  expect(await drainer.drainOnce()).toEqual({ uploaded: 2, failed: 0, remaining: 0 });
  expect(await hashStream(await storage.get('segments/1-big'))).toEqual({ size: BIG, sha256: big.sha256 });
  expect(await hashStream(await storage.get('segments/2-small'))).toEqual({ size: 1000, sha256: small.sha256 });
  const records = await allRecords(storage);
  expect(records.map((r) => [r.key, r.size, r.sha256])).toEqual([
    ['segments/1-big', BIG, big.sha256],
    ['segments/2-small', 1000, small.sha256],
  ]);
  expect(await keysUnder(storage, 'segments/')).toEqual(['segments/1-big', 'segments/2-small']);
  expect(await createManifest(storage).verify({ deep: true })).toEqual({ checked: 2, missing: [], altered: [] });
}

/** Runs the drain child until `inFlight` holds, then SIGKILLs it; fails if the child finished first. */
async function killMidUpload(spoolDir: string, target: Record<string, unknown>, inFlight: () => Promise<boolean>): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/spool/support/drain-child.ts'], {
    env: { ...process.env, SPOOL_CHILD: JSON.stringify({ spoolDir, target }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  let exitedEarly = false;
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  void exited.then(() => (exitedEarly = true));
  try {
    await waitFor(async () => {
      if (exitedEarly) throw new Error(`the child exited before the kill: ${stdout}`);
      return inFlight();
    }, { what: 'the child to be uploading', timeoutMs: 60_000, intervalMs: 10 });
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  expect(stdout).toBe('draining\n');
}

describe('spool drainer under real faults', () => {
  it('S3 stopped in the middle of an upload and restarted on the same port and directory: the item lands once, verified', { timeout: 120_000 }, async () => {
    const dir = await scratch();
    const s3 = await startS3rver({ bucket: 'spool-outage' });
    const storage = withRetry(createS3Storage({ bucket: s3.bucket, prefix: 'k/', client: s3.client() }), { maxAttempts: 2, baseDelayMs: 50 });
    const spool = await openSpool({ dir: join(dir, 'spool'), maxBytes: 1 << 30, logger: createSilentLogger() });
    const big = await fileOf(dir, 'big', BIG);
    await spool.add(big.path, { key: 'segments/big', record: { kind: 'file' } });
    const { logger, lines } = capturingLogger();
    const failures = () => lines.filter((l) => /upload of segments\/big .* failed/.test(String(l.message))).length;
    const drainer = createSpoolDrainer({
      spool,
      storage,
      manifest: createManifest(storage),
      concurrency: 1,
      logger,
      retryDelayMs: 50,
      maxRetryDelayMs: 500,
      pollMs: 100,
    });
    drainer.start();
    try {
      await waitFor(async () => (await bytesUnder(s3.directory)) > 8 * 1024 * 1024, { what: 'the upload to be under way', timeoutMs: 30_000, intervalMs: 10 });
      await s3.stop();
      await waitFor(() => failures() > 0, { what: 'the drainer to notice the outage', timeoutMs: 30_000 });
      expect((await spool.list()).map((i) => i.key)).toEqual(['segments/big']);
      await s3.restart();
      await drainer.waitIdle(90_000);
      // the target was down, not broken: no line asked for a person
      expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    } finally {
      await drainer.stop();
    }
    expect(await hashStream(await storage.get('segments/big'))).toEqual({ size: BIG, sha256: big.sha256 });
    const records = await allRecords(storage);
    expect(records.map((r) => [r.key, r.size, r.sha256])).toEqual([['segments/big', BIG, big.sha256]]);
    expect(await createManifest(storage).verify({ deep: true })).toEqual({ checked: 1, missing: [], altered: [] });
    await storage.close?.();
  });

  it('kill -9 of the process uploading to S3: nothing lost, no half object, one manifest record each', { timeout: 120_000 }, async () => {
    const dir = await scratch();
    const s3 = await startS3rver({ bucket: 'spool-kill' });
    const spoolDir = join(dir, 'spool');
    const spool = await openSpool({ dir: spoolDir, maxBytes: 1 << 30, logger: createSilentLogger() });
    const big = await fileOf(dir, 'big', BIG);
    const small = await fileOf(dir, 'small', 1000);
    await spool.add(big.path, { key: 'segments/1-big', record: { kind: 'file' } });
    await spool.add(small.path, { key: 'segments/2-small', record: { kind: 'file' } });

    await killMidUpload(spoolDir, { type: 's3', endpoint: s3.endpoint, bucket: s3.bucket }, async () => (await bytesUnder(s3.directory)) > 16 * 1024 * 1024);

    const storage = createS3Storage({ bucket: s3.bucket, prefix: 'k/', client: s3.client(), multipartThreshold: 8 * 1024 * 1024, partSize: 8 * 1024 * 1024 });
    await expectRecoveryAfterKill(storage, spoolDir, big, small);
    await storage.close?.();
  });

  it('kill -9 of the process writing to a local storage: nothing lost, no half object, one manifest record each', { timeout: 120_000 }, async () => {
    const dir = await scratch();
    const target = join(dir, 'target');
    const spoolDir = join(dir, 'spool');
    const spool = await openSpool({ dir: spoolDir, maxBytes: 1 << 30, logger: createSilentLogger() });
    const big = await fileOf(dir, 'big', BIG);
    const small = await fileOf(dir, 'small', 1000);
    await spool.add(big.path, { key: 'segments/1-big', record: { kind: 'file' } });
    await spool.add(small.path, { key: 'segments/2-small', record: { kind: 'file' } });

    // 32 MiB/s: the 64 MiB item takes about two seconds, killed once a quarter has landed
    await killMidUpload(spoolDir, { type: 'local', path: target, bytesPerSecond: 32 * 1024 * 1024 }, async () => (await bytesUnder(target)) > 16 * 1024 * 1024);

    await expectRecoveryAfterKill(createLocalStorage({ path: target }), spoolDir, big, small);
  });
});
