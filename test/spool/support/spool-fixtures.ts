import { createWriteStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createManifest, type ManifestRecord } from '../../../src/manifest/manifest.js';
import { createLogger, type Logger } from '../../../src/ops/logger.js';
import type { Storage } from '../../../src/storage/storage.js';
import { randomStream } from '../../support/bytes.js';

/** A file of `size` random bytes in `dir`, and its sha256. */
export async function fileOf(dir: string, name: string, size: number): Promise<{ path: string; sha256: string }> {
  const path = join(dir, name);
  const { stream, digest } = randomStream(size);
  await pipeline(stream, createWriteStream(path));
  return { path, sha256: digest() };
}

/** A debug-level JSON logger whose lines land, parsed, in `lines`. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', format: 'json', stream }), lines };
}

/** Every record the storage's manifest holds, in key order. */
export async function allRecords(storage: Storage): Promise<ManifestRecord[]> {
  const out: ManifestRecord[] = [];
  for await (const r of createManifest(storage).records()) out.push(r);
  return out;
}

/** Bytes of every file under dir: how far an upload into s3rver (or a local storage) has come. */
export async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) total += await stat(join(entry.parentPath, entry.name)).then((s) => s.size, () => 0);
  }
  return total;
}
