import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BINLOG_MAGIC, EVENT_HEADER_LENGTH, EventType } from '../../../src/binlog/binlog-event.js';
import { RestoreError } from '../../../src/errors.js';
import { filterEvents, type FilterSegment } from '../../../src/restore/archive/event-filter.js';

// Synthetic segments: the real-server round trips live in restore-table and tricky-pitr-drill;
// these pin how the filter treats chunk boundaries and malformed sizes.

function event(type: number, body: Buffer, timestamp = 1_700_000_000): Buffer {
  const header = Buffer.alloc(EVENT_HEADER_LENGTH);
  header.writeUInt32LE(timestamp, 0);
  header.writeUInt8(type, 4);
  header.writeUInt32LE(1, 5);
  header.writeUInt32LE(EVENT_HEADER_LENGTH + body.length, 9);
  return Buffer.concat([header, body]);
}

function formatDescription(): Buffer {
  const version = Buffer.alloc(50);
  version.write('10.11.0-MariaDB');
  const body = Buffer.concat([Buffer.from([4, 0]), version, Buffer.alloc(4), Buffer.from([EVENT_HEADER_LENGTH]), Buffer.alloc(40), Buffer.from([0]), Buffer.alloc(4)]);
  return event(EventType.FORMAT_DESCRIPTION, body);
}

function segment(bytes: Buffer, chunkSize: number): FilterSegment {
  return {
    serverFile: 'mysql-bin.000001',
    startPos: 4,
    endPos: bytes.length,
    async *open() {
      for (let i = 0; i < bytes.length; i += chunkSize) yield Buffer.from(bytes.subarray(i, i + chunkSize));
    },
  };
}

async function run(bytes: Buffer, chunkSize: number, tables?: { db: string; name: string }[], mergeTransactions = false): Promise<{ out: Buffer; events: number }> {
  const parts: Buffer[] = [];
  const out = new Writable({ write: (c: Buffer, _e, done) => (parts.push(c), done()) });
  const r = await filterEvents([segment(bytes, chunkSize)], out, { start: { file: 'mysql-bin.000001', position: 4 }, stop: { kind: 'time', at: new Date(2_000_000_000_000) }, ...(tables ? { tables } : {}), mergeTransactions });
  return { out: Buffer.concat(parts), events: r.events };
}

const STMT_END = 1;
function tableMap(id: number, name: string): Buffer {
  const post = Buffer.alloc(8);
  post.writeUIntLE(id, 0, 6);
  return event(EventType.TABLE_MAP, Buffer.concat([post, Buffer.from([2]), Buffer.from('db\0'), Buffer.from([name.length]), Buffer.from(`${name}\0`), Buffer.from([1, 3, 0])]));
}
function rows(id: number, flags: number, payload = 1): Buffer {
  const post = Buffer.alloc(8 + 20, payload);
  post.writeUIntLE(id, 0, 6);
  post.writeUInt16LE(flags, 6);
  return event(EventType.UPDATE_ROWS, post);
}
function gtid(flags2 = 0): Buffer {
  const body = Buffer.alloc(13);
  body.writeUInt8(flags2, 12);
  return event(EventType.MARIADB_GTID, body);
}
function query(text: string): Buffer {
  return event(EventType.QUERY, Buffer.concat([Buffer.alloc(13), Buffer.from('db\0'), Buffer.from(text)]));
}
/** the events after the magic and the FDE, as "M<id>" and "R<id>" (+ "!" for a statement end) */
function shape(out: Buffer): string[] {
  const got: string[] = [];
  let off = BINLOG_MAGIC.length;
  off += out.readUInt32LE(off + 9); // FDE
  while (off < out.length) {
    const type = out[off + 4];
    const id = out.readUIntLE(off + EVENT_HEADER_LENGTH, 6);
    if (type === EventType.TABLE_MAP) got.push(`M${id}`);
    else if (type === EventType.MARIADB_GTID) got.push('G');
    else if (type === EventType.XID) got.push('X');
    else if (type === EventType.QUERY) got.push('Q');
    else got.push(`R${id}${out.readUInt16LE(off + EVENT_HEADER_LENGTH + 6) & STMT_END ? '!' : ''}`);
    off += out.readUInt32LE(off + 9);
  }
  return got;
}

describe('filterEvents on synthetic segments', () => {
  const events = Array.from({ length: 50 }, (_, i) => event(EventType.XID, Buffer.alloc(8 + (i % 7) * 13, i)));
  const file = Buffer.concat([BINLOG_MAGIC, formatDescription(), ...events]);

  it('gives the same bytes whatever the chunk boundaries', async () => {
    const whole = await run(file, file.length);
    expect(whole.events).toBe(51);
    expect(whole.out.equals(file)).toBe(true);
    for (const size of [1, 7, 19, 64, 1000]) expect((await run(file, size)).out.equals(whole.out)).toBe(true);
  });

  it('refuses an event whose size is smaller than its header instead of looping on it', async () => {
    const broken = Buffer.concat([BINLOG_MAGIC, formatDescription(), events[0] as Buffer, Buffer.alloc(EVENT_HEADER_LENGTH)]);
    await expect(run(broken, 64)).rejects.toThrow(RestoreError);
    await expect(run(broken, 64)).rejects.toThrow(/event of 0 bytes at \d+: it is not a valid binlog file/);
  });

  it('table mode merges the statements of one table across transactions, ending them at another table', async () => {
    const xid = event(EventType.XID, Buffer.alloc(8));
    const file = Buffer.concat([
      BINLOG_MAGIC, formatDescription(),
      tableMap(1, 't1'), rows(1, STMT_END), xid,
      tableMap(2, 'other'), rows(2, STMT_END), xid,
      tableMap(1, 't1'), rows(1, 0), rows(1, STMT_END), xid,
      tableMap(3, 't3'), rows(3, STMT_END), xid,
      tableMap(1, 't1'), rows(1, STMT_END), xid,
    ]);
    const one = await run(file, 50, [{ db: 'db', name: 't1' }]);
    expect(shape(one.out)).toEqual(['M1', 'R1', 'R1', 'R1', 'R1!']);
    const two = await run(file, 50, [{ db: 'db', name: 't1' }, { db: 'db', name: 't3' }]);
    expect(shape(two.out)).toEqual(['M1', 'R1', 'R1', 'R1!', 'M3', 'R3!', 'M1', 'R1!']);
  });

  it('table mode ends a merged statement at about 1 MiB and maps the table again', async () => {
    const big = (flags: number) => {
      const e = rows(1, flags);
      return Buffer.concat([e.subarray(0, 9), Buffer.from(new Uint32Array([e.length + 300_000]).buffer), e.subarray(13), Buffer.alloc(300_000)]);
    };
    const file = Buffer.concat([BINLOG_MAGIC, formatDescription(), ...Array.from({ length: 5 }, () => [tableMap(1, 't1'), big(STMT_END)]).flat()]);
    const r = await run(file, 4096, [{ db: 'db', name: 't1' }]);
    expect(shape(r.out)).toEqual(['M1', 'R1', 'R1', 'R1', 'R1!', 'M1', 'R1!']);
  });

  it('full replays merge plain row transactions into one statement per group and pass everything else through', async () => {
    const xid = event(EventType.XID, Buffer.alloc(8));
    const file = Buffer.concat([
      BINLOG_MAGIC, formatDescription(),
      gtid(), tableMap(1, 't1'), rows(1, 0), rows(1, STMT_END), xid,
      gtid(), tableMap(2, 't2'), rows(2, STMT_END), tableMap(1, 't1'), rows(1, STMT_END), xid,
      gtid(1), query('ALTER TABLE t2 ADD COLUMN x INT'),
      gtid(), tableMap(3, 't3'), rows(3, STMT_END), query('COMMIT'),
      gtid(), tableMap(1, 't1'), rows(1, STMT_END), xid,
      gtid(), tableMap(1, 't1'), rows(1, STMT_END), xid,
      gtid(), tableMap(4, 't4'), rows(4, STMT_END),
    ]);
    const r = await run(file, 33, undefined, true);
    expect(shape(r.out)).toEqual([
      'G', 'M1', 'M2', 'R1', 'R1', 'R2', 'R1!', 'X',
      'G', 'Q',
      'G', 'M3', 'R3!', 'Q',
      'G', 'M1', 'R1', 'R1!', 'X',
      // an unfinished transaction at the end goes out as it came (mariadb-binlog rolls it back)
      'G', 'M4', 'R4!',
    ]);
    expect(r.events).toBe(23); // with the format description
    // without merging, every event goes through
    expect((await run(file, 33)).out.equals(file)).toBe(true);
  });
});
