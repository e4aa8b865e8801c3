/**
 * Which archived segments a replay reads: from the one holding the dump's coordinates, in binlog
 * order, without a hole, up to the stop point. A hole (missing bytes, a skipped or purged file, a
 * new server history) before the stop point is an error naming the range, never skipped.
 */
import type { SegmentEntry } from '../../binlog/archive-catalog.js';
import { compareBinlogFiles } from '../../binlog/segment-name.js';
import { BINLOG_HEADER_SIZE } from '../../binlog/binlog-event.js';
import { BinlogContinuityError, RestoreError } from '../../errors.js';
import type { StopPoint } from './event-filter.js';

export interface SegmentSelection {
  readonly source: string;
  readonly segments: SegmentEntry[];
  readonly bytes: number;
  /** the newest archived event among them */
  readonly lastEventTime: string | undefined;
}

export function selectSegments(all: readonly SegmentEntry[], start: { file: string; position: number }, stop: StopPoint): SegmentSelection {
  // the segment the position falls in; one that ends exactly there only when nothing follows yet
  const inside = all.filter((e) => e.serverFile === start.file && e.startPos <= start.position && start.position < e.endPos);
  const holding = inside.length > 0 ? inside : all.filter((e) => e.serverFile === start.file && e.endPos === start.position);
  if (holding.length === 0) {
    const files = [...new Set(all.map((e) => e.serverFile))].sort(compareBinlogFiles);
    throw new RestoreError(`the binlog archive has no segment at the dump's position ${start.file}:${start.position}`, {
      hint: files.length === 0
        ? 'The archive is empty: is the archiver running (`mysql-archiver status`)? Without the binlog, only the dump itself can be restored.'
        : `The archive holds ${files[0]} to ${files.at(-1)}; it did not yet (or no longer) cover this dump. Choose a moment covered by a later dump, or check for gaps with \`mysql-archiver status\`.`,
    });
  }
  // the newest history that holds the position (a RESET MASTER starts a new one)
  const first = holding.reduce((a, b) => (b.epoch > a.epoch ? b : a));
  const chain = all.filter((e) => e.source === first.source && e.epoch === first.epoch);
  const out: SegmentEntry[] = [];
  let prev: SegmentEntry | undefined;
  for (const e of chain.slice(chain.indexOf(first))) {
    if (prev && beyond(e, stop)) break;
    if (prev) {
      const sameFile = e.serverFile === prev.serverFile;
      const joins = sameFile ? e.startPos === prev.endPos : prev.fileComplete && e.startPos === BINLOG_HEADER_SIZE && nextFile(prev.serverFile) === e.serverFile;
      if (!joins) {
        throw new BinlogContinuityError(
          `the binlog archive has a gap after ${prev.serverFile}:${prev.endPos} (next archived: ${e.serverFile}:${e.startPos}); moments after ${prev.lastEventTime} cannot be replayed from this dump`,
          {
            serverFile: prev.serverFile,
            from: prev.endPos,
            to: e.startPos,
            hint: 'Restore to a moment before the gap, or from a dump taken after it (`mysql-archiver list dumps`); `mysql-archiver status` shows recorded gaps.',
          },
        );
      }
    }
    out.push(e);
    prev = e;
  }
  return {
    source: first.source,
    segments: out,
    bytes: out.reduce((n, e) => n + e.size, 0),
    lastEventTime: out.at(-1)?.lastEventTime,
  };
}

function beyond(e: SegmentEntry, stop: StopPoint): boolean {
  if (stop.kind === 'time') return Date.parse(e.firstEventTime) > Math.floor(stop.at.getTime() / 1000) * 1000;
  if (stop.kind === 'position') {
    const cmp = compareBinlogFiles(e.serverFile, stop.file);
    return cmp > 0 || (cmp === 0 && e.startPos >= stop.position);
  }
  return false;
}

function nextFile(file: string): string | undefined {
  const m = /^(.*\.)(\d+)$/.exec(file);
  if (!m) return undefined;
  const n = (BigInt(m[2]!) + 1n).toString().padStart(m[2]!.length, '0');
  return `${m[1]}${n}`;
}
