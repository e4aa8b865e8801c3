/**
 * One storage operation as the product runs it (openStorage: the driver behind its retry wrapper),
 * in a process of its own so that its peak RSS is measured from outside, like `aws s3 cp`.
 * storage.ts compiles it (and the sources it imports) before the run, so a stale dist/ is never measured.
 * BENCH_STORAGE = { op: 'idle' | 'put' | 'get', name, config, file, key }; secrets come from the
 * environment. 'idle' opens the storage and stops: the RSS of the runtime and SDKs alone.
 * Prints one JSON line: size and sha256 of what was put or read back.
 */
import { createReadStream } from 'node:fs';
import type { StorageConfig } from '../../src/config/schema.js';
import { hashStream } from '../../src/storage/byte-counter.js';
import { openStorage } from '../../src/storage/registry.js';

interface Job {
  op: 'idle' | 'put' | 'get';
  name: string;
  config: StorageConfig;
  file: string;
  key: string;
}

const job = JSON.parse(process.env['BENCH_STORAGE'] ?? '{}') as Job;
const storage = await openStorage(job.name, job.config, { env: process.env });
try {
  if (job.op === 'put') {
    const put = await storage.put(job.key, () => createReadStream(job.file, { highWaterMark: 1 << 20 }));
    process.stdout.write(`${JSON.stringify({ size: put.size, sha256: put.sha256 })}\n`);
  } else if (job.op === 'get') {
    process.stdout.write(`${JSON.stringify(await hashStream(await storage.get(job.key)))}\n`);
  } else {
    process.stdout.write('{}\n');
  }
} finally {
  await storage.close?.();
}
