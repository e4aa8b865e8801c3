/**
 * Builds the binlog a restore replays: the archived segments from a start coordinate to a stop
 * point (a time, a position or a GTID), optionally cut down to one table's row events, written as
 * one valid binlog file. `mariadb-binlog` then turns it into BINLOG statements that the server
 * applies with its own row decoding, exact for every type.
 *
 * Events are copied byte for byte, so their checksums stay valid. The one exception: in table mode
 * the last kept row event of a statement gets the statement-end flag (the statement's real last
 * event may belong to another table and is dropped), with its CRC recomputed; a later row event of
 * the same statement then gets its table map again.
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
  crc32,
  parseEventHeader,
  readFormatDescriptionChecksumAlg,
  readMariadbGtid,
  readQueryText,
  type EventHeader,
} from '../../binlog/binlog-event.js';
import { compareBinlogFiles } from '../../binlog/segment-name.js';
import { RestoreError } from '../../errors.js';

export type StopPoint =
  | { readonly kind: 'time'; readonly at: Date }
  | { readonly kind: 'position'; readonly file: string; readonly position: number }
  | { readonly kind: 'gtid'; readonly gtid: string };

export interface FilterSegment {
  readonly serverFile: string;
  readonly startPos: number;
  readonly endPos: number;
  /** the segment object's bytes, verified against the manifest as they stream */
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

const ROW_EVENTS = new Set<number>([
  EventType.WRITE_ROWS_V1, EventType.UPDATE_ROWS_V1, EventType.DELETE_ROWS_V1,
  EventType.WRITE_ROWS, EventType.UPDATE_ROWS, EventType.DELETE_ROWS,
  // MariaDB compressed row events (v1 and v2 layouts)
  166, 167, 168, 169, 170, 171,
]);
const STMT_END_F = 0x1;
const DDL = /^\s*(?:\/\*.*?\*\/\s*)*(ALTER|RENAME|DROP|TRUNCATE|CREATE|OPTIMIZE|REPAIR|IMPORT)\b/is;

export async function filterEvents(segments: readonly FilterSegment[], out: Writable, opts: EventFilterOptions): Promise<FilterResult> {
  // events are gathered into writes of about 1 MiB: one await per event would dominate the cost
  let gathered: Buffer[] = [];
  let gatheredBytes = 0;
  const flushOut = async () => {
    if (gatheredBytes === 0) return;
    const buf = gathered.length === 1 ? (gathered[0] as Buffer) : Buffer.concat(gathered, gatheredBytes);
    gathered = [];
    gatheredBytes = 0;
    if (!out.write(buf)) await once(out, 'drain');
  };
  const write = async (buf: Buffer) => {
    gathered.push(buf);
    gatheredBytes += buf.length;
    if (gatheredBytes >= 1 << 20) await flushOut();
  };
  const stopSeconds = opts.stop.kind === 'time' ? Math.floor(opts.stop.at.getTime() / 1000) : undefined;
  let events = 0;
  let rowEvents = 0;
  let reached: FilterResult['reached'];
  let stopped = false;
  let wroteMagic = false;
  let currentFile: string | undefined;
  let checksum = true;
  let bytesRead = 0;
  let firstFormat: Buffer | undefined;
  let afterTargetGtid = false;
  /** table id → is it our table; and the raw table map to re-send */
  const tableIds = new Map<bigint, Buffer | undefined>();
  let pendingRow: Buffer | undefined;
  /** table ids whose map the applier dropped at a statement end we added */
  const unmapped = new Set<bigint>();

  const flushPending = async (endStatement: boolean) => {
    if (!pendingRow) return;
    let raw = pendingRow;
    pendingRow = undefined;
    const flags = raw.readUInt16LE(EVENT_HEADER_LENGTH + 6);
    if (endStatement && (flags & STMT_END_F) === 0) {
      raw = Buffer.from(raw);
      raw.writeUInt16LE(flags | STMT_END_F, EVENT_HEADER_LENGTH + 6);
      if (checksum) raw.writeUInt32LE(crc32(raw.subarray(0, raw.length - CHECKSUM_LENGTH)), raw.length - CHECKSUM_LENGTH);
      for (const id of tableIds.keys()) if (tableIds.get(id)) unmapped.add(id);
    }
    await write(raw);
    events++;
    rowEvents++;
  };

  for (const seg of segments) {
    if (compareBinlogFiles(seg.serverFile, opts.start.file) < 0) continue;
    if (seg.serverFile === opts.start.file && seg.endPos <= opts.start.position) continue;
    let buffered: Buffer = Buffer.alloc(0);
    let fileOffset = 0; // bytes of this segment object consumed
    let prefixDone = false;
    let pos = seg.startPos; // server position of the next event
    for await (const chunk of seg.open()) {
      bytesRead += chunk.length;
      opts.onBytes?.(bytesRead);
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (!prefixDone) {
        if (buffered.length < BINLOG_HEADER_SIZE + EVENT_HEADER_LENGTH) continue;
        if (!buffered.subarray(0, BINLOG_HEADER_SIZE).equals(BINLOG_MAGIC)) throw new RestoreError(`segment ${seg.serverFile} ${seg.startPos}-${seg.endPos} is not a binlog file`);
        const fdeHeader = parseEventHeader(buffered, BINLOG_HEADER_SIZE);
        if (buffered.length < BINLOG_HEADER_SIZE + fdeHeader.eventSize) continue;
        const fde = buffered.subarray(BINLOG_HEADER_SIZE, BINLOG_HEADER_SIZE + fdeHeader.eventSize);
        if (currentFile !== seg.serverFile) {
          // each server file's own format description, so every later event decodes with its format;
          // in table mode only when the format changed: mariadb-binlog rolls back at every one, and
          // the table's changes are applied as one transaction
          await flushPending(true);
          if (!wroteMagic) {
            await write(BINLOG_MAGIC);
            wroteMagic = true;
          }
          const format = formatOf(fde);
          if (!opts.tables || firstFormat === undefined) {
            await write(Buffer.from(fde));
            events++;
            firstFormat ??= format;
          } else if (!format.equals(firstFormat)) {
            throw new RestoreError(`the binlog format changes at ${seg.serverFile} (a server upgrade between the dump and the moment)`, {
              hint: 'Restore the table with `mysql-archiver restore pitr` into a scratch server and copy it from there.',
            });
          }
          checksum = readFormatDescriptionChecksumAlg(fde) === 1;
          currentFile = seg.serverFile;
          tableIds.clear();
        }
        buffered = buffered.subarray(BINLOG_HEADER_SIZE + fdeHeader.eventSize);
        fileOffset = BINLOG_HEADER_SIZE + fdeHeader.eventSize;
        // a segment from position 4 is the server file itself: its FDE is the event at 4
        pos = seg.startPos === BINLOG_HEADER_SIZE ? fileOffset : seg.startPos;
        prefixDone = true;
      }
      while (buffered.length >= EVENT_HEADER_LENGTH) {
        const header = parseEventHeader(buffered);
        if (buffered.length < header.eventSize) break;
        const raw = buffered.subarray(0, header.eventSize);
        buffered = buffered.subarray(header.eventSize);
        const at = pos;
        pos += header.eventSize;
        fileOffset += header.eventSize;
        if (seg.serverFile === opts.start.file && at < opts.start.position) continue;
        if (reachedStop(header, raw, seg.serverFile, at)) {
          stopped = true;
          break;
        }
        await handle(header, raw, seg.serverFile, at);
        reached = { file: seg.serverFile, position: pos, ...(header.timestamp ? { time: new Date(header.timestamp * 1000) } : {}) };
      }
      if (stopped) break;
    }
    if (stopped) break;
  }
  await flushPending(true);
  await flushOut();
  return { events, rowEvents, reached, stopped };

  function reachedStop(header: EventHeader, raw: Buffer, file: string, at: number): boolean {
    const stop = opts.stop;
    if (stop.kind === 'position') {
      const cmp = compareBinlogFiles(file, stop.file);
      return cmp > 0 || (cmp === 0 && at >= stop.position);
    }
    const startsGroup = header.type === EventType.MARIADB_GTID || header.type === EventType.GTID || (header.type === EventType.QUERY && classifyQuery(readQueryText(raw, checksum)) === 'begin');
    if (!startsGroup) return false;
    if (stop.kind === 'time') return header.timestamp > (stopSeconds as number);
    if (afterTargetGtid) return true;
    if (header.type === EventType.MARIADB_GTID) {
      const g = readMariadbGtid(raw, header);
      if (`${g.domainId}-${header.serverId}-${g.seqNo}` === stop.gtid) afterTargetGtid = true;
    }
    return false;
  }

  async function handle(header: EventHeader, raw: Buffer, file: string, at: number): Promise<void> {
    if (header.type === EventType.FORMAT_DESCRIPTION) return; // written once per file above
    // GTID-state markers of later files: mariadb-binlog would take the joined stream for one with missing history
    if (header.type === EventType.MARIADB_GTID_LIST || header.type === EventType.BINLOG_CHECKPOINT || header.type === EventType.PREVIOUS_GTIDS) return;
    if (!opts.tables) {
      await write(raw);
      events++;
      if (ROW_EVENTS.has(header.type)) rowEvents++;
      return;
    }
    const tables = opts.tables;
    if (header.type === EventType.TABLE_MAP) {
      const id = readTableId(raw);
      const { db, name } = readTableMapName(raw);
      const ours = tables.some((t) => t.db === db && t.name === name);
      tableIds.set(id, ours ? Buffer.from(raw) : undefined);
      unmapped.delete(id);
      if (ours) {
        await flushPending(false);
        await write(raw);
        events++;
      }
      return;
    }
    if (ROW_EVENTS.has(header.type)) {
      const id = readTableId(raw);
      const map = tableIds.get(id);
      if (map) {
        await flushPending(false);
        if (unmapped.has(id)) {
          await write(map);
          events++;
          unmapped.delete(id);
        }
        pendingRow = Buffer.from(raw);
      } else if (raw.readUInt16LE(EVENT_HEADER_LENGTH + 6) & STMT_END_F) {
        await flushPending(true);
      }
      return;
    }
    if (header.type === EventType.QUERY || header.type === EventType.QUERY_COMPRESSED) {
      await flushPending(true);
      if (header.type === EventType.QUERY) {
        const text = readQueryText(raw, checksum);
        const table = classifyQuery(text) === 'other' && DDL.test(text) ? tables.find((t) => mentions(text, t.name)) : undefined;
        if (table) {
          throw new RestoreError(
            `${table.db}.${table.name} was changed by DDL at ${new Date(header.timestamp * 1000).toISOString()} (${file}:${at}): ${text.replace(/\s+/g, ' ').slice(0, 200)}`,
            { hint: `A single-table restore replays row changes only. Restore to a moment before that statement, or restore everything with \`mysql-archiver restore pitr\` into a scratch server.` },
          );
        }
      }
      return;
    }
    // transaction boundaries and everything else: the statement is over
    if (header.type === EventType.XID || header.type === EventType.MARIADB_GTID || header.type === EventType.GTID) await flushPending(true);
  }
}

/** An FDE's format (binlog and server version, header and post-header lengths, checksum algorithm), without its timestamp and flags. */
function formatOf(fde: Buffer): Buffer {
  const body = fde.subarray(EVENT_HEADER_LENGTH);
  // binlog version (2), server version (50), create timestamp (4), then the format proper; the CRC
  // trailer (it covers the timestamp) is left out
  return Buffer.concat([body.subarray(0, 52), body.subarray(56, body.length - CHECKSUM_LENGTH)]);
}

function readTableId(raw: Buffer): bigint {
  // 6-byte table id at the start of the post-header of table maps and row events
  return BigInt(raw.readUIntLE(EVENT_HEADER_LENGTH, 6));
}

function readTableMapName(raw: Buffer): { db: string; name: string } {
  let p = EVENT_HEADER_LENGTH + 8;
  const dbLen = raw.readUInt8(p);
  const db = raw.toString('utf8', p + 1, p + 1 + dbLen);
  p += 1 + dbLen + 1;
  const nameLen = raw.readUInt8(p);
  const name = raw.toString('utf8', p + 1, p + 1 + nameLen);
  return { db, name };
}

function mentions(statement: string, table: string): boolean {
  const escaped = table.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[\\s.\`(,])\`?${escaped}\`?($|[\\s.\`(,;])`, 'i').test(statement);
}
