import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { BinlogContinuityError } from '../errors.js';
import { BINLOG_HEADER_SIZE, BINLOG_MAGIC, EVENT_HEADER_LENGTH, EventType, parseEventHeader } from './binlog-event.js';

/**
 * Rebuilds a server binlog file from its segments (see segment-writer.ts for their layout):
 * the first segment (startPos 4) is copied whole, every later one without its magic + FDE prefix.
 * Positions must join exactly from 4 on; a gap or an overlap is a BinlogContinuityError naming the
 * range, raised before any byte of the offending segment is written. Streams: memory stays flat.
 */

export interface SegmentSource {
  startPos: number;
  endPos: number;
  /** for messages and to check that all segments belong to one file */
  serverFile?: string;
  /** opened once, when its turn comes */
  open(): AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>;
}

export interface ReassembleResult {
  /** the server position reached: the rebuilt file's size */
  endPos: number;
  bytes: number;
}

export function fileSegmentSource(segment: { path: string; startPos: number; endPos: number; serverFile?: string }): SegmentSource {
  return { ...segment, open: () => createReadStream(segment.path) };
}

export async function reassemble(
  segments: readonly SegmentSource[],
  out: Writable,
  opts: { end?: boolean } = {},
): Promise<ReassembleResult> {
  let pos = BINLOG_HEADER_SIZE;
  let bytes = 0;
  const file = segments.find((s) => s.serverFile !== undefined)?.serverFile;
  const fail = (message: string, from: number, to: number) =>
    new BinlogContinuityError(`${file ?? 'binlog'}: ${message}`, {
      ...(file !== undefined && { serverFile: file }),
      from,
      to,
      hint: 'The archive is missing or duplicating this byte range; list the segments of this file and check the manifest for a recorded gap.',
    });
  for (const seg of segments) {
    if (seg.serverFile !== undefined && seg.serverFile !== file) {
      throw fail(`segment ${seg.startPos}-${seg.endPos} belongs to ${seg.serverFile}`, seg.startPos, seg.endPos);
    }
    if (seg.startPos > pos) throw fail(`gap: bytes [${pos}, ${seg.startPos}) are in no segment`, pos, seg.startPos);
    if (seg.startPos < pos) throw fail(`segments overlap: bytes [${seg.startPos}, ${pos}) are in two segments`, seg.startPos, pos);
    if (seg.endPos <= seg.startPos) throw fail(`empty segment range ${seg.startPos}-${seg.endPos}`, seg.startPos, seg.endPos);
    bytes += await copySegment(seg, out, fail);
    pos = seg.endPos;
  }
  if (opts.end !== false) {
    out.end();
    await finished(out);
  }
  return { endPos: pos, bytes };
}

async function copySegment(
  seg: SegmentSource,
  out: Writable,
  fail: (message: string, from: number, to: number) => BinlogContinuityError,
): Promise<number> {
  const first = seg.startPos === BINLOG_HEADER_SIZE;
  // the first segment is the server file from byte 0, magic included
  const expected = first ? seg.endPos : seg.endPos - seg.startPos;
  const range = `${seg.startPos}-${seg.endPos}`;
  let head: Buffer | undefined = Buffer.alloc(0);
  let prefix = 0;
  let copied = 0;
  const emit = async (buf: Buffer) => {
    if (buf.length === 0) return;
    copied += buf.length;
    if (copied > expected) throw fail(`segment ${range} holds more bytes than its range`, seg.startPos, seg.endPos);
    if (!out.write(buf)) await once(out, 'drain');
  };
  for await (const chunk of await seg.open()) {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (head === undefined) {
      await emit(buf);
      continue;
    }
    head = Buffer.concat([head, buf]);
    if (head.length < BINLOG_HEADER_SIZE + EVENT_HEADER_LENGTH) continue;
    if (!head.subarray(0, BINLOG_HEADER_SIZE).equals(BINLOG_MAGIC)) throw fail(`segment ${range} is not a binlog file`, seg.startPos, seg.endPos);
    const fde = parseEventHeader(head, BINLOG_HEADER_SIZE);
    if (fde.type !== EventType.FORMAT_DESCRIPTION) {
      throw fail(`segment ${range} does not start with a format description event`, seg.startPos, seg.endPos);
    }
    prefix = first ? 0 : BINLOG_HEADER_SIZE + fde.eventSize;
    if (!first) {
      if (head.length < prefix + Math.min(EVENT_HEADER_LENGTH, expected)) continue;
      if (expected >= EVENT_HEADER_LENGTH) {
        const ev = parseEventHeader(head, prefix);
        // the first event must sit where the name says: its end position (when set) gives it away
        if (ev.logPos !== 0 && ev.logPos !== (seg.startPos + ev.eventSize) % 2 ** 32) {
          throw fail(`segment ${range} starts with an event ending at ${ev.logPos}`, seg.startPos, seg.endPos);
        }
      }
    }
    const rest = head.subarray(prefix);
    head = undefined;
    await emit(rest);
  }
  if (head !== undefined || copied !== expected) {
    throw fail(`segment ${range} is truncated: ${copied} of ${expected} bytes`, seg.startPos, seg.endPos);
  }
  return copied;
}
