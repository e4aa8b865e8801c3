/**
 * Builds the binlog a restore replays: the archived segments from a start coordinate to a stop
 * point (a time, a position or a GTID), optionally cut down to one table's row events, written as
 * one valid binlog file. `mariadb-binlog` then turns it into BINLOG statements that the server
 * applies with its own row decoding, exact for every type.
 *
 * Events are copied byte for byte, so their checksums stay valid, except for statement-end flags in
 * table mode. There the kept row events of consecutive statements on the same table are merged into
 * one statement of up to about 1 MiB: their statement-end flags are cleared, the last one gets it,
 * with the CRC recomputed, and repeated table maps are dropped. `mariadb-binlog` prints one BINLOG
 * statement per statement, and the server's cost is per statement (a round trip, opening and
 * locking the table): one per row change made the replay of a busy table ten times slower. The
 * table's changes are applied as one transaction anyway, so the boundaries carry nothing. A table
 * map that follows a statement end we set is sent again.
 */
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import {
  BINLOG_HEADER_SIZE,
  BINLOG_MAGIC,
  CHECKSUM_LENGTH,
  EVENT_HEADER_LENGTH,
  EventType,
  classifyQuery,
  isRowsEvent,
  parseEventHeader,
  readFormatDescriptionChecksumAlg,
  readMariadbGtid,
  readQueryText,
} from '../../binlog/binlog-event.js';
import { compareBinlogFiles } from '../../binlog/segment-name.js';
import { TransactionMerger, withStatementEnd } from './transaction-merger.js';
import { RestoreError } from '../../errors.js';

export type StopPoint =
  | { readonly kind: 'time'; readonly at: Date }
  | { readonly kind: 'position'; readonly file: string; readonly position: number }
  | { readonly kind: 'gtid'; readonly gtid: string };

export interface FilterSegment {
  readonly serverFile: string;
  readonly startPos: number;
  readonly endPos: number;
  /** the segment object's bytes, verified against the manifest as they stream; a chunk is never reused once yielded (kept bytes are views of it) */
  open(): AsyncIterable<Buffer>;
}

export interface EventFilterOptions {
  /** replay starts here (the dump's coordinates): earlier events are skipped */
  readonly start: { readonly file: string; readonly position: number };
  readonly stop: StopPoint;
  /** called as segment bytes are read (the running total), for progress and ETA */
  readonly onBytes?: (bytesRead: number) => void;
  /** only these tables' row events (and their table maps) */
  readonly tables?: readonly { readonly db: string; readonly name: string }[];
  /** all-events mode: merge plain row transactions into groups of about 1 MiB (see transaction-merger.ts) */
  readonly mergeTransactions?: boolean;
}

export interface FilterResult {
  /** events written (FDEs included) */
  readonly events: number;
  readonly rowEvents: number;
  /** where the replay ends: the last included event's end */
  readonly reached: { file: string; position: number; time?: Date } | undefined;
  /** true when the stop point was met inside the segments (false: the segments ended first) */
  readonly stopped: boolean;
}

/** table mode: merged statements end once they hold this many bytes (well under any max_allowed_packet as base64) */
const MERGED_STATEMENT_BYTES = 1 << 20;
/** GTID-state markers of later files: mariadb-binlog would take the joined stream for one with missing history */
const NOT_REPLAYED = new Set<number>([EventType.MARIADB_GTID_LIST, EventType.BINLOG_CHECKPOINT, EventType.PREVIOUS_GTIDS]);
const DDL = /^\s*(?:\/\*.*?\*\/\s*)*(ALTER|RENAME|DROP|TRUNCATE|CREATE|OPTIMIZE|REPAIR|IMPORT)\b/is;

export async function filterEvents(segments: readonly FilterSegment[], out: Writable, opts: EventFilterOptions): Promise<FilterResult> {
  // The loop over events is synchronous and allocates nothing for an event it drops: kept bytes are
  // views of the segment's chunks (consecutive kept events as one view), gathered into writes of
  // about 1 MiB with one await per chunk. Per-event promises and objects dominated the cost before.
  let gathered: Buffer[] = [];
  let gatheredBytes = 0;
  const push = (buf: Buffer) => {
    gathered.push(buf);
    gatheredBytes += buf.length;
  };
  const flushOut = async (atLeast: number) => {
    if (gatheredBytes === 0 || gatheredBytes < atLeast) return;
    const buf = gathered.length === 1 ? (gathered[0] as Buffer) : Buffer.concat(gathered, gatheredBytes);
    gathered = [];
    gatheredBytes = 0;
    if (!out.write(buf)) await once(out, 'drain');
  };
  const stopSeconds = opts.stop.kind === 'time' ? Math.floor(opts.stop.at.getTime() / 1000) : 0;
  const tables = opts.tables;
  let events = 0;
  let rowEvents = 0;
  let reachedFile: string | undefined;
  let reachedPos = 0;
  let reachedTime = 0;
  let stopped = false;
  let wroteMagic = false;
  let currentFile: string | undefined;
  let checksum = true;
  let bytesRead = 0;
  let firstFormat: Buffer | undefined;
  let afterTargetGtid = false;
  /** table id → its latest table map when it is one of our tables, null when it is not (this server file only) */
  const maps = new Map<number, Buffer | null>();
  let pendingRow: Buffer | undefined;
  /** table mode: the table id of the statement being merged, and its bytes so far */
  let statementTable: number | undefined;
  let statementBytes = 0;
  /** table ids whose map the applier dropped at a statement end (the next statement maps them again) */
  const unmapped = new Set<number>();

  const merger = !tables && opts.mergeTransactions
    ? new TransactionMerger((e) => {
        push(e);
        events++;
      }, () => checksum)
    : undefined;

  /** Writes the held row event, ending the statement with it (flag set) or continuing it (flag cleared). */
  const flushPending = (endStatement: boolean) => {
    if (!pendingRow) return;
    const raw = withStatementEnd(pendingRow, endStatement, checksum);
    pendingRow = undefined;
    if (endStatement) {
      for (const [id, map] of maps) if (map) unmapped.add(id);
      statementTable = undefined;
      statementBytes = 0;
    }
    push(raw);
    events++;
    rowEvents++;
  };

  for (const seg of segments) {
    if (compareBinlogFiles(seg.serverFile, opts.start.file) < 0) continue;
    if (seg.serverFile === opts.start.file && seg.endPos <= opts.start.position) continue;
    const file = seg.serverFile;
    const skipBefore = file === opts.start.file ? opts.start.position : 0;
    let carry: Buffer | undefined;
    let prefixDone = false;
    let pos = seg.startPos; // server position of the next event
    for await (const chunk of seg.open()) {
      bytesRead += chunk.length;
      opts.onBytes?.(bytesRead);
      const buf = carry ? Buffer.concat([carry, chunk]) : chunk;
      carry = undefined;
      let off = 0;
      if (!prefixDone) {
        if (buf.length < BINLOG_HEADER_SIZE + EVENT_HEADER_LENGTH) {
          carry = buf;
          continue;
        }
        if (!buf.subarray(0, BINLOG_HEADER_SIZE).equals(BINLOG_MAGIC)) throw new RestoreError(`segment ${file} ${seg.startPos}-${seg.endPos} is not a binlog file`);
        const fdeSize = parseEventHeader(buf, BINLOG_HEADER_SIZE).eventSize;
        if (buf.length < BINLOG_HEADER_SIZE + fdeSize) {
          carry = buf;
          continue;
        }
        const fde = buf.subarray(BINLOG_HEADER_SIZE, BINLOG_HEADER_SIZE + fdeSize);
        if (currentFile !== file) {
          // each server file's own format description, so every later event decodes with its format;
          // in table mode only when the format changed: mariadb-binlog rolls back at every one, and
          // the table's changes are applied as one transaction
          flushPending(true);
          merger?.flush();
          if (!wroteMagic) {
            push(BINLOG_MAGIC);
            wroteMagic = true;
          }
          const format = formatOf(fde);
          if (!tables || firstFormat === undefined) {
            push(fde);
            events++;
            firstFormat ??= format;
          } else if (!format.equals(firstFormat)) {
            throw new RestoreError(`the binlog format changes at ${file} (a server upgrade between the dump and the moment)`, {
              hint: 'Restore the table with `mysql-archiver restore pitr` into a scratch server and copy it from there.',
            });
          }
          checksum = readFormatDescriptionChecksumAlg(fde) === 1;
          currentFile = file;
          maps.clear();
        }
        off = BINLOG_HEADER_SIZE + fdeSize;
        // a segment from position 4 is the server file itself: its FDE is the event at 4
        pos = seg.startPos === BINLOG_HEADER_SIZE ? off : seg.startPos;
        prefixDone = true;
      }
      // all-events mode: the start of the run of kept events not yet pushed
      let run = -1;
      while (buf.length - off >= EVENT_HEADER_LENGTH) {
        const size = buf.readUInt32LE(off + 9);
        if (size < EVENT_HEADER_LENGTH) throw new RestoreError(`segment ${file} ${seg.startPos}-${seg.endPos} has an event of ${size} bytes at ${pos}: it is not a valid binlog file`);
        if (buf.length - off < size) break;
        const type = buf[off + 4] as number;
        const timestamp = buf.readUInt32LE(off);
        const at = pos;
        const begin = off;
        pos += size;
        off += size;
        if (at < skipBefore) continue;
        if (reachedStop(type, timestamp, buf, begin, size, file, at)) {
          stopped = true;
          off = begin;
          break;
        }
        if (merger) {
          if (type !== EventType.FORMAT_DESCRIPTION && !NOT_REPLAYED.has(type)) {
            merger.event(type, buf.subarray(begin, begin + size));
            if (isRowsEvent(type)) rowEvents++;
          }
        } else if (!tables) {
          if (type === EventType.FORMAT_DESCRIPTION || NOT_REPLAYED.has(type)) {
            if (run >= 0) push(buf.subarray(run, begin));
            run = -1;
          } else {
            if (run < 0) run = begin;
            events++;
            if (isRowsEvent(type)) rowEvents++;
          }
        } else {
          handleForTables(tables, type, timestamp, buf, begin, size, file, at);
        }
        reachedFile = file;
        reachedPos = pos;
        reachedTime = timestamp;
      }
      if (run >= 0) push(buf.subarray(run, off));
      if (off < buf.length && !stopped) carry = buf.subarray(off);
      await flushOut(1 << 20);
      if (stopped) break;
    }
    if (stopped) break;
  }
  flushPending(true);
  merger?.flush();
  await flushOut(0);
  const reached = reachedFile === undefined ? undefined : { file: reachedFile, position: reachedPos, ...(reachedTime ? { time: new Date(reachedTime * 1000) } : {}) };
  return { events, rowEvents, reached, stopped };

  function reachedStop(type: number, timestamp: number, buf: Buffer, begin: number, size: number, file: string, at: number): boolean {
    const stop = opts.stop;
    if (stop.kind === 'position') {
      const cmp = compareBinlogFiles(file, stop.file);
      return cmp > 0 || (cmp === 0 && at >= stop.position);
    }
    const startsGroup = type === EventType.MARIADB_GTID || type === EventType.GTID || (type === EventType.QUERY && classifyQuery(readQueryText(buf.subarray(begin, begin + size), checksum, 32)) === 'begin');
    if (!startsGroup) return false;
    if (stop.kind === 'time') return timestamp > stopSeconds;
    if (afterTargetGtid) return true;
    if (type === EventType.MARIADB_GTID) {
      const raw = buf.subarray(begin, begin + size);
      const g = readMariadbGtid(raw, parseEventHeader(raw));
      if (g.text === stop.gtid) afterTargetGtid = true;
    }
    return false;
  }

  function handleForTables(tables: readonly { readonly db: string; readonly name: string }[], type: number, timestamp: number, buf: Buffer, begin: number, size: number, file: string, at: number): void {
    if (type === EventType.TABLE_MAP) {
      const id = buf.readUIntLE(begin + EVENT_HEADER_LENGTH, 6);
      const known = maps.get(id);
      // table ids only grow while the server runs (and maps are per server file), so an id names one table
      const ours = known === undefined ? isOneOf(tables, readTableMapName(buf, begin)) : known !== null;
      const raw = buf.subarray(begin, begin + size);
      maps.set(id, ours ? raw : null);
      if (!ours) return;
      // the merged statement already maps this table: the map is sent again only after a statement end
      if (statementTable === id && !unmapped.has(id)) return;
      if (statementTable !== undefined && statementTable !== id) flushPending(true);
      else flushPending(false);
      unmapped.delete(id);
      push(raw);
      events++;
      return;
    }
    if (isRowsEvent(type)) {
      const id = buf.readUIntLE(begin + EVENT_HEADER_LENGTH, 6);
      const map = maps.get(id);
      if (!map) return;
      // another table, or a full statement: the statement ends before this event
      if ((statementTable !== undefined && statementTable !== id) || statementBytes >= MERGED_STATEMENT_BYTES) flushPending(true);
      else flushPending(false);
      if (unmapped.has(id)) {
        push(map);
        events++;
        unmapped.delete(id);
      }
      statementTable = id;
      statementBytes += size;
      pendingRow = buf.subarray(begin, begin + size);
      return;
    }
    if (type === EventType.QUERY || type === EventType.QUERY_COMPRESSED) {
      flushPending(true);
      if (type === EventType.QUERY) {
        const text = readQueryText(buf.subarray(begin, begin + size), checksum);
        const table = classifyQuery(text) === 'other' && DDL.test(text) ? tables.find((t) => mentions(text, t.name)) : undefined;
        if (table) {
          throw new RestoreError(
            `${table.db}.${table.name} was changed by DDL at ${new Date(timestamp * 1000).toISOString()} (${file}:${at}): ${text.replace(/\s+/g, ' ').slice(0, 200)}`,
            { hint: `A single-table restore replays row changes only. Restore to a moment before that statement, or restore everything with \`mysql-archiver restore pitr\` into a scratch server.` },
          );
        }
      }
      return;
    }
    // transaction boundaries (GTID, XID) are not replayed: the merged statement goes on across them
  }
}

/** An FDE's format (binlog and server version, header and post-header lengths, checksum algorithm), without its timestamp and flags. */
function formatOf(fde: Buffer): Buffer {
  const body = fde.subarray(EVENT_HEADER_LENGTH);
  // binlog version (2), server version (50), create timestamp (4), then the format proper; the CRC
  // trailer (it covers the timestamp) is left out
  return Buffer.concat([body.subarray(0, 52), body.subarray(56, body.length - CHECKSUM_LENGTH)]);
}

/** A table map's database and table name (after the 6-byte table id and 2 bytes of flags). */
function readTableMapName(raw: Buffer, begin: number): { db: string; name: string } {
  let p = begin + EVENT_HEADER_LENGTH + 8;
  const dbLen = raw.readUInt8(p);
  const db = raw.toString('utf8', p + 1, p + 1 + dbLen);
  p += 1 + dbLen + 1;
  const nameLen = raw.readUInt8(p);
  const name = raw.toString('utf8', p + 1, p + 1 + nameLen);
  return { db, name };
}

function isOneOf(tables: readonly { readonly db: string; readonly name: string }[], t: { db: string; name: string }): boolean {
  return tables.some((x) => x.db === t.db && x.name === t.name);
}

function mentions(statement: string, table: string): boolean {
  const escaped = table.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[\\s.\`(,])\`?${escaped}\`?($|[\\s.\`(,;])`, 'i').test(statement);
}
