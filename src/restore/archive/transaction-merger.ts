/**
 * Merges consecutive row-only transactions of a full replay into groups of about 1 MiB, each
 * written as ONE transaction holding ONE statement: the first transaction's GTID event, every table
 * map of the group, every row event in order (statement-end flag only on the last, CRCs
 * recomputed), the last transaction's XID.
 *
 * Why: `mariadb-binlog | mariadb` costs a round trip and a table open/lock per statement, and a
 * sysbench-like workload has about seven statements per transaction; the server spent most of a
 * replay on that overhead. A group has the same row changes in the same order, so the end state is
 * the same; only the intermediate commit points are coarser, which a restore into a scratch or
 * fresh server does not observe (and a failed replay is discarded whole).
 *
 * Only plain transactions are merged: a GTID event that is not standalone or XA, then table maps,
 * row events and Annotate_rows only, ended by an XID. Anything else (DDL, statements, XA, a
 * non-transactional table's COMMIT query, a transaction over the size limit) ends the group and
 * passes through byte for byte.
 */
import { CHECKSUM_LENGTH, EVENT_HEADER_LENGTH, EventType, crc32, isRowsEvent } from '../../binlog/binlog-event.js';

const GROUP_BYTES = 1 << 20;
const STMT_END_F = 0x1;
// MariaDB GTID flags2: standalone (no transaction), XA prepared / completed
const GTID_NOT_PLAIN = 0x1 | 0x40 | 0x80;

export class TransactionMerger {
  /** events of the transaction being read, until we know it is plain */
  #trx: Buffer[] = [];
  #trxBytes = 0;
  #inTrx = false;
  #gtid: Buffer | undefined;
  #maps = new Map<number, Buffer>();
  #rows: Buffer[] = [];
  #xid: Buffer | undefined;
  #groupBytes = 0;

  constructor(
    private readonly push: (event: Buffer) => void,
    private readonly checksum: () => boolean,
  ) {}

  /** One event of the replay, in order; `raw` stays valid (a view of a chunk that is not reused). */
  event(type: number, raw: Buffer): void {
    if (!this.#inTrx) {
      if (type === EventType.MARIADB_GTID && (raw.readUInt8(EVENT_HEADER_LENGTH + 12) & GTID_NOT_PLAIN) === 0) {
        this.#inTrx = true;
        this.#trx = [raw];
        this.#trxBytes = raw.length;
        return;
      }
      this.flush();
      this.push(raw);
      return;
    }
    if (type === EventType.TABLE_MAP || type === EventType.ANNOTATE_ROWS || isRowsEvent(type)) {
      this.#trx.push(raw);
      this.#trxBytes += raw.length;
      if (this.#trxBytes > GROUP_BYTES) this.#passThrough();
      return;
    }
    if (type === EventType.XID) {
      this.#addToGroup(raw);
      if (this.#groupBytes >= GROUP_BYTES) this.flush();
      return;
    }
    // not a plain transaction: what is held goes out as it came, and so does the rest of it
    this.#passThrough();
    this.push(raw);
  }

  /** Writes the group (at a stop, a file change, the end, or anything not mergeable), then an unfinished transaction as it came. */
  flush(): void {
    this.#writeGroup();
    if (this.#inTrx) this.#passThrough();
  }

  #passThrough(): void {
    this.#writeGroup();
    for (const e of this.#trx) this.push(e);
    this.#trx = [];
    this.#trxBytes = 0;
    this.#inTrx = false;
  }

  #addToGroup(xid: Buffer): void {
    for (const e of this.#trx) {
      const type = e[4] as number;
      if (type === EventType.MARIADB_GTID) this.#gtid ??= e;
      else if (type === EventType.TABLE_MAP) {
        const id = e.readUIntLE(EVENT_HEADER_LENGTH, 6);
        // a table id names one table while the server runs (groups never cross server files)
        if (!this.#maps.has(id)) this.#maps.set(id, e);
      } else if (type !== EventType.ANNOTATE_ROWS) this.#rows.push(e);
    }
    this.#xid = xid;
    this.#groupBytes += this.#trxBytes + xid.length;
    this.#trx = [];
    this.#trxBytes = 0;
    this.#inTrx = false;
  }

  #writeGroup(): void {
    if (!this.#gtid || !this.#xid) return;
    this.push(this.#gtid);
    for (const m of this.#maps.values()) this.push(m);
    const last = this.#rows.length - 1;
    this.#rows.forEach((e, i) => this.push(withStatementEnd(e, i === last, this.checksum())));
    this.push(this.#xid);
    this.#gtid = undefined;
    this.#xid = undefined;
    this.#maps.clear();
    this.#rows = [];
    this.#groupBytes = 0;
  }
}

/** The row event with its statement-end flag set or cleared (a copy with the CRC recomputed when it changes). */
export function withStatementEnd(raw: Buffer, end: boolean, checksum: boolean): Buffer {
  const flags = raw.readUInt16LE(EVENT_HEADER_LENGTH + 6);
  const wanted = end ? flags | STMT_END_F : flags & ~STMT_END_F;
  if (wanted === flags) return raw;
  const copy = Buffer.from(raw);
  copy.writeUInt16LE(wanted, EVENT_HEADER_LENGTH + 6);
  if (checksum) copy.writeUInt32LE(crc32(copy.subarray(0, copy.length - CHECKSUM_LENGTH)), copy.length - CHECKSUM_LENGTH);
  return copy;
}
