import { crc32 as zlibCrc32 } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EventType, LOG_EVENT_BINLOG_IN_USE_F, crc32, firstBadEvent, makeCrc32 } from '../../src/binlog/binlog-event.js';

/** one event of `type` with a correct CRC32 trailer (computed with the in-use flag clear, as the server does) */
function event(type: number, body: Buffer, flags = 0): Buffer {
  const e = Buffer.alloc(19 + body.length + 4);
  e.writeUInt8(type, 4);
  e.writeUInt32LE(e.length, 9);
  body.copy(e, 19);
  e.writeUInt16LE(flags & ~LOG_EVENT_BINLOG_IN_USE_F, 17);
  e.writeUInt32LE(crc32(e.subarray(0, e.length - 4)), e.length - 4);
  e.writeUInt16LE(flags, 17);
  return e;
}

function checksOf(events: Buffer[], start = 0): Uint32Array {
  const pairs: number[] = [];
  let off = start;
  for (const e of events) {
    pairs.push(off, e.length);
    off += e.length;
  }
  return Uint32Array.from(pairs);
}

describe('the segment worker event check', () => {
  const events = [
    event(EventType.FORMAT_DESCRIPTION, randomBytes(80), LOG_EVENT_BINLOG_IN_USE_F),
    event(EventType.MARIADB_GTID, randomBytes(13)),
    event(EventType.WRITE_ROWS, randomBytes(5000)),
    event(EventType.XID, randomBytes(8)),
  ];
  const buf = Buffer.concat([Buffer.from([0xfe, 0x62, 0x69, 0x6e]), ...events]);

  it('accepts good events, the open file\'s Format_description (in-use flag set) included', () => {
    expect(firstBadEvent(buf, checksOf(events, 4), zlibCrc32)).toBe(-1);
    expect(firstBadEvent(buf, checksOf(events, 4), makeCrc32())).toBe(-1);
  });

  it('names the first event whose bytes or trailer changed', () => {
    for (const [at, index] of [[4 + 30, 0], [4 + events[0]!.length + events[1]!.length + 2500, 2], [buf.length - 1, 3]] as const) {
      const bad = Buffer.from(buf);
      bad[at]! ^= 0x01;
      expect(firstBadEvent(bad, checksOf(events, 4), zlibCrc32)).toBe(index);
    }
  });

  it('refuses an event too short to hold a header and a trailer', () => {
    expect(firstBadEvent(Buffer.alloc(40), Uint32Array.from([0, 22]), zlibCrc32)).toBe(0);
  });

  it('the table CRC-32 equals zlib\'s, also when continued', () => {
    const crc = makeCrc32();
    const data = randomBytes(10_000);
    expect(crc(data)).toBe(zlibCrc32(data));
    expect(crc(data.subarray(3000), crc(data.subarray(0, 3000)))).toBe(zlibCrc32(data));
  });
});
