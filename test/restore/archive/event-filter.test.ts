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

async function run(bytes: Buffer, chunkSize: number): Promise<{ out: Buffer; events: number }> {
  const parts: Buffer[] = [];
  const out = new Writable({ write: (c: Buffer, _e, done) => (parts.push(c), done()) });
  const r = await filterEvents([segment(bytes, chunkSize)], out, { start: { file: 'mysql-bin.000001', position: 4 }, stop: { kind: 'time', at: new Date(2_000_000_000_000) } });
  return { out: Buffer.concat(parts), events: r.events };
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
});
