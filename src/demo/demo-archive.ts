import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { VerificationError } from '../errors.js';
import { hashStream } from '../storage/byte-counter.js';
import { openStorage } from '../storage/registry.js';
import type { Storage } from '../storage/storage.js';
import type { DemoState } from './demo-state.js';
import { segmentObjectName, segmentSource } from '../binlog/segment-name.js';

// PROVISIONAL: replaced by the spool + manifest pipeline once src/spool and src/manifest land.

async function archiveStorage(s: DemoState): Promise<{ name: string; storage: Storage }> {
  const config = s.config!;
  const name = config.archiver.storage;
  const storage = await openStorage(name, config.storages[name]!, { env: s.env });
  s.closers.push({ what: `closed storage ${name}`, close: async () => storage.close?.() });
  return { name, storage };
}

export async function archiveClosedBinlogs(s: DemoState): Promise<string[]> {
  const { name, storage } = await archiveStorage(s);
  const lines: string[] = [];
  for (const binlog of s.workload!.closedBinlogs) {
    const path = join(s.db!.binlogDir, binlog.name);
    const { size } = await stat(path);
    const key = segmentObjectName({ source: segmentSource({ serverId: s.db!.serverId }), serverFile: binlog.name, startPos: 4, endPos: size });
    const put = await storage.put(key, () => createReadStream(path), { signal: s.signal, sizeHint: size, expected: { size } });
    s.archived.push({ source: binlog.name, storage: name, key: put.key, size: put.size, sha256: put.sha256 });
    lines.push(`${binlog.name} → ${name}:${put.key} (${put.size} bytes)`);
  }
  return lines;
}

export async function verifyArchive(s: DemoState): Promise<string[]> {
  const { storage } = await archiveStorage(s);
  for (const o of s.archived) {
    const back = await hashStream(await storage.get(o.key, { signal: s.signal }));
    if (back.sha256 !== o.sha256 || back.size !== o.size) throw new VerificationError(`${o.key} differs`, { retryable: false });
  }
  s.verifiedRecords = s.archived.length;
  return [`${s.archived.length} object(s) re-read and hashed`];
}
