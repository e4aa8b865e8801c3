import * as zlib from 'node:zlib';

/**
 * The v4 binlog event format, just enough of it to archive raw events: the 19-byte common header,
 * the few bodies the archiver must understand (Rotate, Format_description, MariaDB Gtid, Query
 * text) and the CRC32 trailer. Everything else is carried as opaque bytes.
 */

/** A binlog file starts with these four bytes, then the Format_description event at position 4. */
export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
export const BINLOG_HEADER_SIZE = 4;
export const EVENT_HEADER_LENGTH = 19;
export const CHECKSUM_LENGTH = 4;

export const EventType = {
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  INTVAR: 5,
  RAND: 13,
  USER_VAR: 14,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  TABLE_MAP: 19,
  WRITE_ROWS_V1: 23,
  UPDATE_ROWS_V1: 24,
  DELETE_ROWS_V1: 25,
  INCIDENT: 26,
  HEARTBEAT: 27,
  WRITE_ROWS: 30,
  UPDATE_ROWS: 31,
  DELETE_ROWS: 32,
  /** MySQL */
  GTID: 33,
  /** MySQL */
  ANONYMOUS_GTID: 34,
  /** MySQL */
  PREVIOUS_GTIDS: 35,
  /** MySQL and MariaDB 10.5+ */
  XA_PREPARE: 38,
  ANNOTATE_ROWS: 160,
  BINLOG_CHECKPOINT: 161,
  MARIADB_GTID: 162,
  MARIADB_GTID_LIST: 163,
  START_ENCRYPTION: 164,
  QUERY_COMPRESSED: 165,
} as const;

/** Common-header flags */
export const LOG_EVENT_BINLOG_IN_USE_F = 0x1;
/** Set on events the server makes up for the stream (fake Rotate, Gtid_list on GTID connects); they are not in the file. */
export const LOG_EVENT_ARTIFICIAL_F = 0x20;

/** MariaDB Gtid_log_event flags2 */
export const GTID_FL_STANDALONE = 0x1;

export interface EventHeader {
  /** seconds since the epoch, as the server wrote it */
  timestamp: number;
  type: number;
  /** the server that originally wrote the event (replicated events keep their origin's id) */
  serverId: number;
  /** header + body + checksum */
  eventSize: number;
  /** end position of the event in its binlog file; 0 for artificial events and re-sent headers */
  logPos: number;
  flags: number;
}

export class EventFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventFormatError';
  }
}

export function parseEventHeader(raw: Buffer, offset = 0): EventHeader {
  if (raw.length - offset < EVENT_HEADER_LENGTH) {
    throw new EventFormatError(`binlog event shorter than its header (${raw.length - offset} bytes)`);
  }
  return {
    timestamp: raw.readUInt32LE(offset),
    type: raw.readUInt8(offset + 4),
    serverId: raw.readUInt32LE(offset + 5),
    eventSize: raw.readUInt32LE(offset + 9),
    logPos: raw.readUInt32LE(offset + 13),
    flags: raw.readUInt16LE(offset + 17),
  };
}

export function isArtificial(header: EventHeader): boolean {
  return (header.flags & LOG_EVENT_ARTIFICIAL_F) !== 0;
}

const ROWS_EVENTS = new Set<number>([
  EventType.WRITE_ROWS_V1, EventType.UPDATE_ROWS_V1, EventType.DELETE_ROWS_V1,
  EventType.WRITE_ROWS, EventType.UPDATE_ROWS, EventType.DELETE_ROWS,
  // MariaDB compressed row events (v1 and v2 layouts)
  166, 167, 168, 169, 170, 171,
]);

/** Write/Update/Delete rows events, every version (MariaDB's compressed ones included). */
export function isRowsEvent(type: number): boolean {
  return ROWS_EVENTS.has(type);
}

export function isGroupStart(type: number): boolean {
  return type === EventType.MARIADB_GTID || type === EventType.GTID || type === EventType.ANONYMOUS_GTID;
}

/** Events that never belong to a transaction: a position before or after them is always a safe cut. */
export function isOutsideGroup(type: number): boolean {
  switch (type) {
    case EventType.FORMAT_DESCRIPTION:
    case EventType.ROTATE:
    case EventType.STOP:
    case EventType.INCIDENT:
    case EventType.HEARTBEAT:
    case EventType.PREVIOUS_GTIDS:
    case EventType.BINLOG_CHECKPOINT:
    case EventType.MARIADB_GTID_LIST:
    case EventType.START_ENCRYPTION:
      return true;
    default:
      return false;
  }
}

function bodyEnd(raw: Buffer, checksum: boolean): number {
  return raw.length - (checksum ? CHECKSUM_LENGTH : 0);
}

export interface RotateInfo {
  /** the file the stream continues in */
  nextFile: string;
  /** position in that file of the first event to come */
  position: number;
}

export function readRotate(raw: Buffer, checksum: boolean): RotateInfo {
  const end = bodyEnd(raw, checksum);
  if (end < EVENT_HEADER_LENGTH + 8) throw new EventFormatError('rotate event too short');
  const position = raw.readBigUInt64LE(EVENT_HEADER_LENGTH);
  if (position > BigInt(Number.MAX_SAFE_INTEGER)) throw new EventFormatError(`rotate position out of range: ${position}`);
  return { position: Number(position), nextFile: raw.toString('utf8', EVENT_HEADER_LENGTH + 8, end) };
}

/** BINLOG_CHECKSUM_ALG_OFF = 0, CRC32 = 1; the FDE carries its own algorithm byte followed by a CRC32 slot. */
export function readFormatDescriptionChecksumAlg(raw: Buffer): number {
  // the algorithm byte sits just before the 4 checksum bytes, which an FDE always reserves
  if (raw.length < EVENT_HEADER_LENGTH + 57 + 5) throw new EventFormatError('format description event too short');
  return raw.readUInt8(raw.length - CHECKSUM_LENGTH - 1);
}

export interface MariadbGtid {
  domainId: number;
  serverId: number;
  /** decimal string: sequence numbers are 64-bit */
  seqNo: string;
  flags2: number;
  /** "domain-server-seq", as MariaDB prints it */
  text: string;
}

export function readMariadbGtid(raw: Buffer, header: EventHeader = parseEventHeader(raw)): MariadbGtid {
  if (raw.length < EVENT_HEADER_LENGTH + 13) throw new EventFormatError('gtid event too short');
  const seqNo = raw.readBigUInt64LE(EVENT_HEADER_LENGTH).toString();
  const domainId = raw.readUInt32LE(EVENT_HEADER_LENGTH + 8);
  const flags2 = raw.readUInt8(EVENT_HEADER_LENGTH + 12);
  return { domainId, serverId: header.serverId, seqNo, flags2, text: `${domainId}-${header.serverId}-${seqNo}` };
}

// thread_id(4) exec_time(4) db_len(1) error_code(2) status_vars_len(2)
const QUERY_POST_HEADER = 13;

/** The statement text of a Query event (type 2), decoded as latin1: only used to recognise keywords. `maxChars` cuts it (a leading keyword is all some callers need). */
export function readQueryText(raw: Buffer, checksum: boolean, maxChars = Infinity): string {
  const end = bodyEnd(raw, checksum);
  const base = EVENT_HEADER_LENGTH;
  if (end < base + QUERY_POST_HEADER) throw new EventFormatError('query event too short');
  const dbLen = raw.readUInt8(base + 8);
  const statusLen = raw.readUInt16LE(base + 11);
  const start = base + QUERY_POST_HEADER + statusLen + dbLen + 1;
  if (start > end) throw new EventFormatError('query event text out of bounds');
  return raw.toString('latin1', start, Math.min(end, start + maxChars));
}

export type QueryKind = 'begin' | 'commit' | 'rollback' | 'xa-finish' | 'other';

export function classifyQuery(text: string): QueryKind {
  // only the leading keyword matters; statements can be huge
  const head = text.slice(0, 32).trimStart().toUpperCase();
  if (/^BEGIN\b/.test(head) || /^START\s+TRANSACTION\b/.test(head) || /^XA\s+START\b/.test(head)) return 'begin';
  if (/^COMMIT\b/.test(head)) return 'commit';
  if (/^ROLLBACK\b/.test(head) && !/^ROLLBACK\s+TO\b/.test(head)) return 'rollback';
  if (/^XA\s+(COMMIT|ROLLBACK)\b/.test(head)) return 'xa-finish';
  return 'other';
}

/**
 * A table-driven CRC-32 (ISO-HDLC, as the binlog uses) for Node versions without zlib.crc32;
 * `value` continues a previous result. Self-contained: the digest worker runs it from its source.
 */
export function makeCrc32(): (data: Uint8Array, value?: number) => number {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return (data, value = 0) => {
    let c = ~value;
    for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
    return (c ^ -1) >>> 0;
  };
}

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
const jsCrc32 = nativeCrc32 ? undefined : makeCrc32();

/** CRC-32 (ISO-HDLC, as the binlog uses); zlib's native one where Node has it (>= 20.15). */
export function crc32(data: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(data) >>> 0 : jsCrc32!(data);
}

/**
 * Index of the first event in `checks` (pairs of offset and length in `buf`) whose CRC32 trailer is
 * wrong, or -1. A Format_description event is checksummed as if LOG_EVENT_BINLOG_IN_USE_F were
 * clear, so the open file's FDE still verifies. Self-contained (the segment worker runs its source),
 * hence the literal offsets: 23 is header + trailer, byte 4 the type, byte 17 the flags.
 */
export function firstBadEvent(buf: Uint8Array, checks: Uint32Array, crc32: (data: Uint8Array, value?: number) => number): number {
  for (let i = 0; i < checks.length; i += 2) {
    const start = checks[i]!;
    const size = checks[i + 1]!;
    if (size < 23) return i / 2;
    const end = start + size - 4;
    const stored = (buf[end]! | (buf[end + 1]! << 8) | (buf[end + 2]! << 16) | (buf[end + 3]! << 24)) >>> 0;
    let crc: number;
    if (buf[start + 4] === 15 && (buf[start + 17]! & 1) !== 0) {
      // the in-use flag is byte 17; the CRC was computed with it clear
      crc = crc32(buf.subarray(start, start + 17));
      crc = crc32(Uint8Array.of(buf[start + 17]! & 0xfe), crc);
      crc = crc32(buf.subarray(start + 18, end), crc);
    } else {
      crc = crc32(buf.subarray(start, end));
    }
    if (crc >>> 0 !== stored) return i / 2;
  }
  return -1;
}

/** Checks one event's CRC32 trailer (firstBadEvent's rule). */
export function eventChecksumMatches(raw: Buffer): boolean {
  return firstBadEvent(raw, Uint32Array.of(0, raw.length), nativeCrc32 ?? jsCrc32!) === -1;
}

type GroupState =
  /** between transactions: a cut here is safe */
  | 'outside'
  /** inside BEGIN..COMMIT (or a MariaDB non-standalone GTID group) */
  | 'trx'
  /** after a MariaDB standalone GTID: the next Query ends the group */
  | 'standalone'
  /** after a MySQL GTID, before its first statement */
  | 'mysql-gtid'
  /** after a MySQL DDL: ended unless row events follow (CREATE TABLE ... SELECT on MySQL 8) */
  | 'maybe-ended';

/**
 * Follows event groups so the writer only cuts between whole transactions. MariaDB marks
 * single-statement groups (DDL) as standalone in the GTID event; other groups end at Xid, a
 * COMMIT/ROLLBACK Query, XA PREPARE or XA COMMIT/ROLLBACK. MySQL has no such flag, so a
 * non-BEGIN statement right after its GTID ends the group only once the next group or an
 * idle heartbeat shows nothing else belongs to it.
 */
export class TransactionTracker {
  #state: GroupState = 'outside';

  /** true when a cut right after the last accepted event cannot split a transaction */
  get atBoundary(): boolean {
    return this.#state === 'outside';
  }

  /** true when a cut right before `next` cannot split a transaction */
  boundaryBefore(next: EventHeader): boolean {
    if (this.#state === 'outside') return true;
    if (this.#state === 'maybe-ended') return isGroupStart(next.type) || isOutsideGroup(next.type);
    return false;
  }

  accept(header: EventHeader, raw: Buffer, checksum: boolean): void {
    const type = header.type;
    if (this.#state === 'maybe-ended') {
      this.#state = isGroupStart(type) || isOutsideGroup(type) ? 'outside' : 'trx';
    }
    if (type === EventType.MARIADB_GTID) {
      // flags2 read in place: decoding the whole GTID (a BigInt and a string) once per transaction showed in catch-up profiles
      if (raw.length < EVENT_HEADER_LENGTH + 13) throw new EventFormatError('gtid event too short');
      this.#state = (raw[EVENT_HEADER_LENGTH + 12]! & GTID_FL_STANDALONE) !== 0 ? 'standalone' : 'trx';
      return;
    }
    if (type === EventType.GTID || type === EventType.ANONYMOUS_GTID) {
      this.#state = 'mysql-gtid';
      return;
    }
    if (isOutsideGroup(type)) return;
    if (type === EventType.XID || type === EventType.XA_PREPARE) {
      this.#state = 'outside';
      return;
    }
    const isQuery = type === EventType.QUERY || type === EventType.QUERY_COMPRESSED;
    if (!isQuery) {
      // rows, table maps, annotations...: they only exist inside a group
      if (this.#state !== 'standalone') this.#state = 'trx';
      return;
    }
    if (this.#state === 'standalone') {
      this.#state = 'outside';
      return;
    }
    // compressed text can't be read cheaply; only short statements (BEGIN/COMMIT) matter and those are never compressed
    const kind = type === EventType.QUERY ? classifyQuery(readQueryText(raw, checksum)) : 'other';
    if (kind === 'commit' || kind === 'rollback' || kind === 'xa-finish') {
      this.#state = 'outside';
    } else if (kind === 'begin') {
      this.#state = 'trx';
    } else if (this.#state === 'mysql-gtid') {
      this.#state = 'maybe-ended';
    }
    // any other statement: inside 'trx' it stays inside (SAVEPOINT, the CREATE of CREATE ... SELECT);
    // 'outside' means a statement logged without a GTID (pre-GTID servers), a group of its own
  }
}

/** "uuid:gno" of a MySQL Gtid event (type 33); undefined for anonymous ones. */
export function readMysqlGtid(raw: Buffer): string | undefined {
  if (raw.length < EVENT_HEADER_LENGTH + 25) throw new EventFormatError('gtid event too short');
  const sid = raw.subarray(EVENT_HEADER_LENGTH + 1, EVENT_HEADER_LENGTH + 17).toString('hex');
  const gno = raw.readBigInt64LE(EVENT_HEADER_LENGTH + 17);
  if (gno <= 0n) return undefined;
  const uuid = `${sid.slice(0, 8)}-${sid.slice(8, 12)}-${sid.slice(12, 16)}-${sid.slice(16, 20)}-${sid.slice(20)}`;
  return `${uuid}:${gno}`;
}
