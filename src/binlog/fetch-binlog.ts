import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { Storage } from '../storage/storage.js';
import { listSegments, segmentSourceFor, segmentsOfFile } from './archive-catalog.js';
import { reassemble } from './reassemble.js';

export interface FetchBinlogResult {
  file: string;
  source: string;
  segments: number;
  bytes: number;
  complete: boolean;
}

/**
 * Rebuilds one server binlog file from the archive: its segments in position order, each checked
 * against its sha256, joined without gap or overlap. Written to a temp file and renamed, so a
 * failure never leaves a plausible-looking partial file; '-' streams to `stdout` instead.
 */
export async function fetchBinlog(storage: Storage, opts: { file: string; source?: string; output: string; stdout: Writable; signal?: AbortSignal }): Promise<FetchBinlogResult> {
  const segments = segmentsOfFile(await listSegments(storage, opts.signal ? { signal: opts.signal } : {}), opts.file, opts.source);
  const sources = segments.map((e) => segmentSourceFor(storage, e, opts.signal));
  const result = (bytes: number): FetchBinlogResult => ({ file: opts.file, source: segments[0]!.source, segments: segments.length, bytes, complete: segments.at(-1)!.fileComplete });
  if (opts.output === '-') {
    const { endPos } = await reassemble(sources, opts.stdout, { end: false });
    return result(endPos);
  }
  const tmp = `${opts.output}.partial`;
  try {
    const { endPos } = await reassemble(sources, createWriteStream(tmp, { mode: 0o640 }));
    await rename(tmp, opts.output);
    return result(endPos);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}
