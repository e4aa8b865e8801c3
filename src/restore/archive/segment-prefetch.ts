/**
 * Archived segments for a replay, each downloaded to a local file and checked against its sha256
 * BEFORE any of its bytes is used, with the next `ahead` segments fetched in the background while
 * the current one is replayed (bounded: at most 1 + ahead files on disk at a time).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { verifiedSegmentBytes, type SegmentEntry } from '../../binlog/archive-catalog.js';
import type { Storage } from '../../storage/storage.js';
import type { FilterSegment } from './event-filter.js';

export function prefetchedSegments(storage: Storage, entries: readonly SegmentEntry[], dir: string, opts: { ahead?: number; signal?: AbortSignal } = {}): FilterSegment[] {
  const ahead = opts.ahead ?? 2;
  const fetches = new Map<number, Promise<string>>();
  const fetch = (i: number): Promise<string> | undefined => {
    const entry = entries[i];
    if (!entry) return undefined;
    let p = fetches.get(i);
    if (!p) {
      const path = join(dir, `segment-${i}.binlog`);
      p = pipeline(Readable.from(verifiedSegmentBytes(storage, entry, opts.signal)), createWriteStream(path)).then(() => path);
      // a prefetch that fails is reported when its turn comes
      p.catch(() => undefined);
      fetches.set(i, p);
    }
    return p;
  };
  return entries.map((e, i) => ({
    serverFile: e.serverFile,
    startPos: e.startPos,
    endPos: e.endPos,
    async *open() {
      for (let j = i; j <= i + ahead; j++) fetch(j);
      const path = await (fetch(i) as Promise<string>);
      try {
        for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
      } finally {
        fetches.delete(i);
        await rm(path, { force: true });
      }
    },
  }));
}
