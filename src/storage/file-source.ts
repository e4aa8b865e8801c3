import { createReadStream } from 'node:fs';
import type { ByteSource } from './storage.js';

/**
 * The bytes of a finished local file, as a put source: streamed by every driver, and taken from
 * the file itself where a driver can (the local one hard-links it on the same filesystem instead of
 * copying it). The file must stay unchanged until the put returns; the caller removes it afterwards.
 */
export function fileSource(path: string): ByteSource {
  return Object.assign(() => createReadStream(path, { highWaterMark: 1 << 20 }), { filePath: path });
}
