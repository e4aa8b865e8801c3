/**
 * Drains a spool in a process the test can SIGKILL mid-upload. SPOOL_CHILD is JSON:
 *   { spoolDir, target: { type: 's3', endpoint, bucket } | { type: 'local', path, bytesPerSecond } }
 * A local target is a real local storage whose source is slowed down (a slow disk), so that the
 * test can catch the upload in flight. Prints "draining" when it starts, the round when done.
 */
import { Transform } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { createManifest } from '../../../src/manifest/manifest.js';
import { createSilentLogger } from '../../../src/ops/logger.js';
import { openSpool } from '../../../src/spool/spool.js';
import { createSpoolDrainer } from '../../../src/spool/spool-drainer.js';
import { createLocalStorage } from '../../../src/storage/local/local-storage.js';
import { createS3Storage } from '../../../src/storage/s3/s3-storage.js';
import type { Storage } from '../../../src/storage/storage.js';

type Target = { type: 's3'; endpoint: string; bucket: string } | { type: 'local'; path: string; bytesPerSecond: number };
const s = JSON.parse(process.env['SPOOL_CHILD'] ?? '{}') as { spoolDir: string; target: Target };

function openTarget(t: Target): Storage {
  if (t.type === 's3') {
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: t.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return createS3Storage({ bucket: t.bucket, prefix: 'k/', client, multipartThreshold: 8 * 1024 * 1024, partSize: 8 * 1024 * 1024 });
  }
  const local = createLocalStorage({ path: t.path });
  return {
    ...local,
    put: (key, source, opts) =>
      local.put(key, async () => (await source()).pipe(throttle(t.bytesPerSecond)), opts),
  };
}

function throttle(bytesPerSecond: number): Transform {
  const started = Date.now();
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      sent += chunk.length;
      const due = started + (sent / bytesPerSecond) * 1000;
      setTimeout(() => done(null, chunk), Math.max(0, due - Date.now()));
    },
  });
}

const storage = openTarget(s.target);
const logger = createSilentLogger();
const spool = await openSpool({ dir: s.spoolDir, maxBytes: 1 << 30, logger });
const drainer = createSpoolDrainer({ spool, storage, manifest: createManifest(storage), concurrency: 1, logger });
process.stdout.write('draining\n');
const round = await drainer.drainOnce();
process.stdout.write(`${JSON.stringify(round)}\n`);
await storage.close?.();
