import { createHash } from 'node:crypto';
import { UsageError, VerificationError } from '../errors.js';
import { createManifest, type ManifestRecord } from '../manifest/manifest.js';
import type { Storage } from '../storage/storage.js';
import { compareBinlogFiles } from './segment-name.js';
import type { SegmentSource } from './reassemble.js';

/**
 * The binlog archive as the manifest describes it: segment records by source and server file, in
 * binlog order (by positions, never by storage timestamps), and segment bytes that are checked
 * against their recorded sha256 as they stream, so nothing unverified is ever used.
 */
export interface SegmentEntry {
  key: string;
  size: number;
  sha256: string;
  source: string;
  epoch: number;
  serverFile: string;
  startPos: number;
  endPos: number;
  firstEventTime: string;
  lastEventTime: string;
  fileComplete: boolean;
  gtidFirst?: string;
  gtidLast?: string;
}

export async function listSegments(storage: Storage, options: { source?: string; signal?: AbortSignal } = {}): Promise<SegmentEntry[]> {
  const out: SegmentEntry[] = [];
  const prefix = options.source ? `segments/${options.source}/` : 'segments/';
  for await (const r of createManifest(storage).records(prefix, options.signal ? { signal: options.signal } : {})) {
    if (r.kind === 'binlog-segment' && r.key) out.push(toEntry(r));
  }
  return out.sort(compareEntries);
}

export function compareEntries(a: SegmentEntry, b: SegmentEntry): number {
  if (a.epoch !== b.epoch) return a.epoch - b.epoch;
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  return compareBinlogFiles(a.serverFile, b.serverFile) || a.startPos - b.startPos;
}

function toEntry(r: ManifestRecord): SegmentEntry {
  return {
    key: r.key!,
    size: Number(r.size),
    sha256: String(r.sha256),
    source: String(r['source']),
    epoch: Number(r['epoch'] ?? 1),
    serverFile: String(r['serverFile']),
    startPos: Number(r['startPos']),
    endPos: Number(r['endPos']),
    firstEventTime: String(r['firstEventTime']),
    lastEventTime: String(r['lastEventTime']),
    fileComplete: r['fileComplete'] === true,
    ...(typeof r['gtidFirst'] === 'string' ? { gtidFirst: r['gtidFirst'] } : {}),
    ...(typeof r['gtidLast'] === 'string' ? { gtidLast: r['gtidLast'] } : {}),
  };
}

/** The segment's bytes; the stream fails with a VerificationError naming the object if they are not what was recorded. */
export async function* verifiedSegmentBytes(storage: Storage, entry: SegmentEntry, signal?: AbortSignal): AsyncIterable<Buffer> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of (await storage.get(entry.key, signal ? { signal } : {})) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    yield chunk;
  }
  const sha256 = hash.digest('hex');
  if (size !== entry.size || sha256 !== entry.sha256) {
    throw new VerificationError(`${storage.name}:${entry.key} differs from its manifest record (${size} bytes, sha256 ${sha256}; recorded ${entry.size} bytes, ${entry.sha256})`, {
      retryable: false,
      hint: 'The object was altered or damaged after it was written. Use another copy of the archive if there is one; the range it covers cannot be trusted.',
    });
  }
}

export function segmentSourceFor(storage: Storage, entry: SegmentEntry, signal?: AbortSignal): SegmentSource {
  return { startPos: entry.startPos, endPos: entry.endPos, serverFile: entry.serverFile, open: () => verifiedSegmentBytes(storage, entry, signal) };
}

/** The segments of one server binlog file, choosing the source when more than one archived a file of that name. */
export function segmentsOfFile(all: readonly SegmentEntry[], file: string, source?: string): SegmentEntry[] {
  const matching = all.filter((e) => e.serverFile === file && (source === undefined || e.source === source));
  const sources = [...new Set(matching.map((e) => e.source))];
  if (matching.length === 0) {
    throw new UsageError(`no archived segments of ${file}${source ? ` from ${source}` : ''}`, {
      hint: 'List what the archive holds with `mysql-archiver list segments`.',
    });
  }
  if (sources.length > 1) {
    throw new UsageError(`${file} was archived from more than one server history: ${sources.join(', ')}`, { hint: `Choose one with --source, e.g. --source ${sources[0]}.` });
  }
  return matching;
}
