/**
 * Drains a spool into the S3 of the parent test, in a process the test can SIGKILL mid-upload.
 * SPOOL_CHILD = { spoolDir, endpoint, bucket }; prints "draining" when it starts.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { createManifest } from '../../../src/manifest/manifest.js';
import { createSilentLogger } from '../../../src/ops/logger.js';
import { openSpool } from '../../../src/spool/spool.js';
import { createSpoolDrainer } from '../../../src/spool/spool-drainer.js';
import { createS3Storage } from '../../../src/storage/s3/s3-storage.js';

const s = JSON.parse(process.env['SPOOL_CHILD'] ?? '{}') as { spoolDir: string; endpoint: string; bucket: string };
const client = new S3Client({
  region: 'us-east-1',
  endpoint: s.endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const storage = createS3Storage({ bucket: s.bucket, prefix: 'k/', client, multipartThreshold: 8 * 1024 * 1024, partSize: 8 * 1024 * 1024 });
const logger = createSilentLogger();
const spool = await openSpool({ dir: s.spoolDir, maxBytes: 1 << 30, logger });
const drainer = createSpoolDrainer({ spool, storage, manifest: createManifest(storage), concurrency: 1, logger });
process.stdout.write('draining\n');
const round = await drainer.drainOnce();
process.stdout.write(`${JSON.stringify(round)}\n`);
