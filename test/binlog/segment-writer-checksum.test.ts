import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BINLOG_MAGIC, EventType, LOG_EVENT_ARTIFICIAL_F, LOG_EVENT_BINLOG_IN_USE_F, crc32 } from '../../src/binlog/binlog-event.js';
import { createSegmentWriter, type SealedSegment } from '../../src/binlog/segment-writer.js';
import { BinlogContinuityError } from '../../src/errors.js';

/**
 * The writer's own guarantees, without a server: on a synthetic stream with an event larger than
 * any write batch, the file, size and sha256 it reports are exactly the stream's, and a flipped
 * byte anywhere (a small event, inside or at the end of a 10 MiB one) fails the writer with the
 * event's server position before anything is sealed. Guards any rework of the write path.
 */

const META = { checksum: true };
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'writer-crc-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function event(type: number, body: Buffer, logPos: number, flags = 0): Buffer {
  const raw = Buffer.alloc(19 + body.length + 4);
  raw.writeUInt32LE(1_767_225_600, 0);
  raw.writeUInt8(type, 4);
  raw.writeUInt32LE(1, 5);
  raw.writeUInt32LE(raw.length, 9);
  raw.writeUInt32LE(logPos, 13);
  raw.writeUInt16LE(flags, 17);
  body.copy(raw, 19);
  const checked = Buffer.from(raw.subarray(0, raw.length - 4));
  if (type === EventType.FORMAT_DESCRIPTION) checked.writeUInt16LE(flags & ~LOG_EVENT_BINLOG_IN_USE_F, 17);
  raw.writeUInt32LE(crc32(checked), raw.length - 4);
  return raw;
}

/** fake rotate, an FDE (flagged in use, as in the server's open file), then transactions, one with a 10 MiB row event */
function stream(): { events: Buffer[]; file: Buffer } {
  const rotateBody = Buffer.concat([Buffer.alloc(8), Buffer.from('mysql-bin.000001')]);
  rotateBody.writeBigUInt64LE(4n, 0);
  const events: Buffer[] = [event(EventType.ROTATE, rotateBody, 0, LOG_EVENT_ARTIFICIAL_F)];
  const content: Buffer[] = [];
  let pos = 4;
  const add = (type: number, body: Buffer, flags = 0) => {
    const size = 19 + body.length + 4;
    pos += size;
    const raw = event(type, body, pos, flags);
    events.push(raw);
    content.push(raw);
  };
  const fdeBody = Buffer.alloc(2 + 50 + 4 + 1 + 10 + 1);
  fdeBody.writeUInt16LE(4, 0);
  fdeBody.write('10.11.0-test', 2);
  fdeBody.writeUInt8(19, 56);
  fdeBody.writeUInt8(1, fdeBody.length - 1);
  add(EventType.FORMAT_DESCRIPTION, fdeBody, LOG_EVENT_BINLOG_IN_USE_F);
  for (let trx = 1; trx <= 30; trx++) {
    const gtid = Buffer.alloc(13);
    gtid.writeBigUInt64LE(BigInt(trx), 0);
    add(EventType.MARIADB_GTID, gtid);
    const rowBytes = trx === 7 ? 10 * 1024 * 1024 : 5_000 + trx * 977;
    add(EventType.WRITE_ROWS, Buffer.alloc(rowBytes, trx));
    add(EventType.XID, Buffer.alloc(8, trx));
  }
  return { events, file: Buffer.concat([BINLOG_MAGIC, ...content]) };
}

async function archive(events: Buffer[], sub: string): Promise<SealedSegment | undefined> {
  const writer = await createSegmentWriter({ dir: join(dir, sub), maxSeconds: 3600, maxBytes: 1 << 30, clock: () => 0, onSealed: () => undefined });
  try {
    // batches of 1 to 5 events, as the tailer hands them over
    for (let i = 0, n = 1; i < events.length; i += n, n = (n % 5) + 1) await writer.write(events.slice(i, i + n), META);
    return await writer.flush();
  } finally {
    await writer.close();
  }
}

describe('segment writer checksums, size and sha256', () => {
  it('writes the stream byte for byte and reports the size and sha256 of the file', async () => {
    const { events, file } = stream();
    const sealed = await archive(events, 'ok');
    const written = await readFile(sealed!.path);
    expect(written.equals(file)).toBe(true);
    expect(sealed!.size).toBe(file.length);
    expect(sealed!.sha256).toBe(createHash('sha256').update(file).digest('hex'));
    expect(sealed!.events).toBe(events.length - 1);
  });

  for (const where of ['a small event', 'the middle of the 10 MiB event', 'the last byte of the 10 MiB event']) {
    it(`fails the seal on a flipped byte in ${where}`, async () => {
      const { events } = stream();
      const big = events.findIndex((e) => e.length > 1024 * 1024);
      const [index, offset] = where === 'a small event' ? [big + 3, 40] : where.startsWith('the middle') ? [big, 5 * 1024 * 1024 + 3] : [big, events[big]!.length - 5];
      const start = events.slice(1, index).reduce((n, e) => n + e.length, 4);
      events[index] = Buffer.from(events[index]!);
      events[index]![offset]! ^= 0x10;
      const error = await archive(events, `bad-${index}-${offset}`).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BinlogContinuityError);
      expect((error as Error).message).toContain('event checksum mismatch');
      expect((error as Error).message).toContain(`mysql-bin.000001:${start}`);
    });
  }
});
