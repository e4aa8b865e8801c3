// @ts-check
/**
 * One storage operation as the product runs it (the built dist/, through openStorage and its retry
 * wrapper), in a process of its own so its peak RSS is measured from outside like `aws s3 cp`.
 * BENCH_STORAGE = { op: 'put' | 'get', name, config, file, key }; secrets in the environment.
 */
import { createReadStream } from 'node:fs';
import { openStorage } from '../../dist/storage/registry.js';
import { hashStream } from '../../dist/storage/byte-counter.js';

/** @type {{ op: 'put' | 'get', name: string, config: any, file: string, key: string }} */
const s = JSON.parse(process.env['BENCH_STORAGE'] ?? '{}');
const storage = await openStorage(s.name, s.config, { env: process.env });
try {
  if (s.op === 'put') {
    const put = await storage.put(s.key, () => createReadStream(s.file, { highWaterMark: 1 << 20 }));
    process.stdout.write(`${JSON.stringify(put)}\n`);
  } else {
    const got = await hashStream(await storage.get(s.key));
    process.stdout.write(`${JSON.stringify(got)}\n`);
  }
} finally {
  await storage.close?.();
}
