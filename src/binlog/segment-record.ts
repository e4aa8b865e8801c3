import type { Gap } from './continuity.js';
import type { SealedSegment } from './segment-writer.js';

/**
 * What the manifest says of an archived segment: enough to restore from it and to check continuity
 * without opening it (server, file, byte range, event times, GTID range, size and sha256).
 */
export interface SegmentRecordFields {
  kind: 'binlog-segment';
  source: string;
  epoch: number;
  serverId: number;
  serverUuid?: string;
  serverFile: string;
  startPos: number;
  endPos: number;
  /** ISO times of the first and last event (second resolution, as the binlog has them) */
  firstEventTime: string;
  lastEventTime: string;
  gtidFirst?: string;
  gtidLast?: string;
  events: number;
  fileComplete: boolean;
}

export function segmentRecord(segment: SealedSegment, epoch: number, serverUuid?: string): SegmentRecordFields {
  return {
    kind: 'binlog-segment',
    source: segment.source,
    epoch,
    serverId: segment.serverId,
    ...(serverUuid ? { serverUuid } : {}),
    serverFile: segment.serverFile,
    startPos: segment.startPos,
    endPos: segment.endPos,
    firstEventTime: new Date(segment.firstEventTime).toISOString(),
    lastEventTime: new Date(segment.lastEventTime).toISOString(),
    ...(segment.gtidFirst ? { gtidFirst: segment.gtidFirst } : {}),
    ...(segment.gtidLast ? { gtidLast: segment.gtidLast } : {}),
    events: segment.events,
    fileComplete: segment.fileComplete,
  };
}

/** Gap reports are objects too (`gaps/<source>/<time>.json`), so they reach storage through the spool. */
export function gapObjectKey(gap: Gap, detectedAt: Date): string {
  const stamp = detectedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `gaps/${gap.source}/${stamp}-${gap.reason}.json`;
}
