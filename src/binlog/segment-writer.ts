import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { BinlogContinuityError } from '../errors.js';
import type { Logger } from '../ops/logger.js';
import {
  BINLOG_HEADER_SIZE,
  BINLOG_MAGIC,
  EVENT_HEADER_LENGTH,
  EventType,
  TransactionTracker,
  eventChecksumMatches,
  isArtificial,
  parseEventHeader,
  readFormatDescriptionChecksumAlg,
  readMariadbGtid,
  readMysqlGtid,
  readRotate,
  type EventHeader,
} from './binlog-event.js';
import { compareBinlogFiles, segmentObjectName } from './segment-name.js';
import { fsyncDir } from '../fs/durable.js';
import { SegmentFile, WriteBuffers } from './segment-file.js';

/**
 * Turns the raw event stream of one source into sealed segments, each a valid binlog file.
 *
 * A segment covers the server bytes [startPos, endPos) of one server binlog file:
 * - startPos = 4: the file is exactly the server's bytes 0..endPos (magic, its Format_description, events);
 * - startPos > 4: the file is the magic, then that server file's Format_description event, then the
 *   server bytes startPos..endPos. Events keep the server's end_log_pos values, so `mariadb-binlog`
 *   reads it as a binlog whose "# at" offsets differ from the server's but whose events, checksums
 *   and row decoding are intact (MariaDB's own `mariadb-binlog --raw` writes resumed files this way).
 *   To rebuild the server file, drop the 4 + FDE-size prefix (see reassemble.ts).
 * The prefix FDE is the one the server sent for this file: as read from position 4 (end_log_pos set,
 * LOG_EVENT_BINLOG_IN_USE_F cleared) or, after resuming mid-file, the copy it re-sends with
 * end_log_pos 0 and created 0. Its bytes are kept as sent: the server fixed its CRC.
 *
 * Seals happen only between transactions: every `maxSeconds` (by the injected clock, checked as
 * events, heartbeats or tick() come), before a segment would pass `maxBytes` (a single transaction
 * may exceed it), after the server's Rotate or Stop event, and on flush(). A segment is written to
 * tmpDir, fsynced, renamed under `dir` to its object name, the directory fsynced, and only then
 * handed to onSealed. What has not been sealed is never reported and is re-read from the
 * checkpoint after a restart.
 */

export interface SealedSegment {
  /** the durable local file */
  path: string;
  /** object name (segment-name.ts); `path` is `dir/<name>` */
  name: string;
  source: string;
  serverFile: string;
  startPos: number;
  endPos: number;
  /** earliest and latest event timestamp in the range, ms since the epoch (second resolution) */
  firstEventTime: number;
  lastEventTime: number;
  gtidFirst?: string;
  gtidLast?: string;
  /** server_id in the Format_description of the file: the server that wrote it */
  serverId: number;
  size: number;
  sha256: string;
  /** events in [startPos, endPos) */
  events: number;
  reason: SealReason;
  /** the range ends with the server's Rotate or Stop event: nothing more will come for this file */
  fileComplete: boolean;
}

export type SealReason = 'time' | 'size' | 'rotate' | 'stop' | 'flush' | 'file-end';

export interface BinlogPosition {
  file: string;
  position: number;
}

export interface SegmentWriterOptions {
  /** sealed segments go to `dir/<object name>` */
  dir: string;
  /** for segments being written; same filesystem as `dir` (default `dir/.partial`), emptied at start */
  tmpDir?: string;
  maxSeconds: number;
  maxBytes: number;
  /** ms since the epoch */
  clock?: () => number;
  /** names the server in object names; default `server-<server_id of the file>` */
  source?: string;
  /** called once the segment is durable; the writer waits for it, and a throw fails the writer */
  onSealed(segment: SealedSegment): void | Promise<void>;
  logger?: Logger;
}

export interface EventMeta {
  /** the stream carries CRC32 trailers */
  checksum: boolean;
}

export interface SegmentWriter {
  /** events in stream order, each one whole event (header..CRC32); the buffers must stay unchanged until sealed or closed */
  write(events: readonly Buffer[], meta: EventMeta): Promise<void>;
  /** seals when maxSeconds passed and the stream is between transactions (call it on a timer) */
  tick(): Promise<SealedSegment | undefined>;
  /** seals what is open if between transactions (graceful shutdown) */
  flush(): Promise<SealedSegment | undefined>;
  /** drops what is not sealed; the writer cannot be used afterwards */
  close(): Promise<void>;
  /** the next server byte expected */
  readonly position: BinlogPosition | undefined;
  /**
   * Where a new stream must start so that nothing sealed is archived twice and nothing is lost:
   * the end of the last sealed segment, or the next file at 4 after a sealed Rotate.
   */
  readonly checkpoint: BinlogPosition | undefined;
}

export async function createSegmentWriter(opts: SegmentWriterOptions): Promise<SegmentWriter> {
  const tmpDir = opts.tmpDir ?? join(opts.dir, '.partial');
  await mkdir(opts.dir, { recursive: true });
  await mkdir(tmpDir, { recursive: true });
  // partial segments of a previous run were never reported: the stream resends their events
  for (const name of await readdir(tmpDir)) {
    if (name.endsWith('.part')) await rm(join(tmpDir, name), { force: true });
  }
  return new Writer(opts, tmpDir);
}

interface OpenSegment {
  file: SegmentFile;
  tmpPath: string;
  startPos: number;
  /** bytes before the server's: the magic, and the Format_description when startPos > 4 */
  prefixBytes: number;
  events: number;
  openedAt: number;
  minTs: number;
  maxTs: number;
  /** copies of the first and last GTID events, decoded only at the seal */
  gtidFirst?: Buffer;
  gtidLast?: Buffer;
}

const NO_CONTENT = -1;
/** one filling, the others being written and hashed */
const WRITE_BUFFERS = 4;

class Writer implements SegmentWriter {
  readonly #opts: SegmentWriterOptions;
  readonly #tmpDir: string;
  readonly #clock: () => number;
  #queue: Promise<unknown> = Promise.resolve();
  #failed: unknown;
  #closed = false;

  #file: string | undefined;
  #pos = 0;
  #fde: Buffer | undefined;
  #fdeServerId = 0;
  /** set by the server's Rotate: the only file the stream may continue in */
  #rotatedTo: string | undefined;
  /** the current file was finished by a Rotate or Stop event */
  #fileEnded = false;
  #tracker = new TransactionTracker();
  #open: OpenSegment | undefined;
  #checkpoint: BinlogPosition | undefined;
  readonly #buffers = new WriteBuffers(WRITE_BUFFERS);

  constructor(opts: SegmentWriterOptions, tmpDir: string) {
    if (!(opts.maxSeconds > 0) || !(opts.maxBytes > 0)) throw new RangeError('maxSeconds and maxBytes must be positive');
    this.#opts = opts;
    this.#tmpDir = tmpDir;
    this.#clock = opts.clock ?? Date.now;
  }

  get position(): BinlogPosition | undefined {
    return this.#file === undefined ? undefined : { file: this.#file, position: this.#pos };
  }

  get checkpoint(): BinlogPosition | undefined {
    return this.#checkpoint && { ...this.#checkpoint };
  }

  write(events: readonly Buffer[], meta: EventMeta): Promise<void> {
    return this.#run(async () => {
      for (const raw of events) {
        // most events are handled without a promise: only seals, segment opens and full write buffers wait
        const waiting = this.#write(raw, parseEventHeader(raw), meta);
        if (waiting !== undefined) await waiting;
      }
    });
  }

  tick(): Promise<SealedSegment | undefined> {
    return this.#run(async () => (this.#tracker.atBoundary && this.#due(0) ? this.#seal(this.#dueReason()) : undefined));
  }

  flush(): Promise<SealedSegment | undefined> {
    return this.#run(async () => (this.#tracker.atBoundary ? this.#seal('flush') : undefined));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue.catch(() => undefined);
    await this.#discardOpen();
  }

  #run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(() => {
      if (this.#closed) throw new Error('segment writer is closed');
      if (this.#failed !== undefined) throw this.#failed;
      return fn().catch((error: unknown) => {
        this.#failed = error;
        throw error;
      });
    });
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #write(raw: Buffer, header: EventHeader, meta: EventMeta): Promise<unknown> | undefined {
    if (raw.length !== header.eventSize) {
      throw this.#error(`event size ${header.eventSize} in the header but ${raw.length} bytes received`);
    }
    if (header.type === EventType.HEARTBEAT) {
      // the server only idles between transactions, which confirms a pending MySQL DDL boundary
      if (this.#tracker.boundaryBefore(header)) {
        this.#tracker.accept(header, raw, meta.checksum);
        if (this.#due(0)) return this.#seal(this.#dueReason());
      }
      return undefined;
    }
    if (header.type === EventType.ROTATE && isArtificial(header)) return this.#fakeRotate(readRotate(raw, meta.checksum));
    if (this.#file === undefined) throw this.#error('the stream did not start with a rotate event naming the file');
    if (header.type === EventType.FORMAT_DESCRIPTION && header.logPos === 0) {
      // re-sent on a resume mid-file: not file content, but the header of later segments
      this.#takeFde(raw, meta);
      return undefined;
    }
    if (isArtificial(header)) {
      this.#opts.logger?.debug('skipping artificial binlog event', { type: header.type, file: this.#file });
      return undefined;
    }
    if (this.#fileEnded) throw this.#error(`event of type ${header.type} after the end of ${this.#file}`, this.#pos);
    if (header.type === EventType.FORMAT_DESCRIPTION) {
      if (this.#pos !== BINLOG_HEADER_SIZE) throw this.#error('format description event not at position 4', this.#pos);
      this.#takeFde(raw, meta);
    } else if (this.#fde === undefined) {
      throw this.#error('event before the format description event', this.#pos);
    }

    const start = this.#pos;
    const end = start + raw.length;
    // end_log_pos is 32-bit: compare modulo 2^32 so files past 4 GiB (one huge transaction) still check
    if (header.logPos !== 0 && header.logPos !== end % 2 ** 32) {
      throw this.#error(`event claims to end at ${header.logPos} but the stream is at ${start}+${raw.length}`, start, end);
    }

    if (this.#open && this.#open.events > 0 && this.#tracker.boundaryBefore(header) && this.#due(raw.length)) {
      return this.#seal(this.#dueReason()).then(() => this.#accept(raw, header, meta, start));
    }
    return this.#accept(raw, header, meta, start);
  }

  /** Appends a checked event at `start`; seals after it when it ends the file or a due segment. */
  #accept(raw: Buffer, header: EventHeader, meta: EventMeta, start: number): Promise<unknown> | undefined {
    if (!this.#open) return this.#openSegment(start).then(() => this.#accept(raw, header, meta, start));
    this.#tracker.accept(header, raw, meta.checksum);
    // everything that can throw comes before the append: a promise it returns is always handed back
    const end = start + raw.length;
    let rotatedTo: string | undefined;
    if (header.type === EventType.ROTATE) {
      if (!this.#tracker.atBoundary) throw this.#error('rotate event inside a transaction', start, end);
      rotatedTo = readRotate(raw, meta.checksum).nextFile;
    }
    const writing = this.#append(this.#open, raw, header, meta.checksum);
    this.#pos = end;

    let seal: SealReason | undefined;
    if (rotatedTo !== undefined) {
      this.#rotatedTo = rotatedTo;
      this.#fileEnded = true;
      seal = 'rotate';
    } else if (header.type === EventType.STOP) {
      this.#fileEnded = true;
      seal = 'stop';
    } else if (this.#tracker.atBoundary && this.#due(0)) {
      seal = this.#dueReason();
    }
    if (seal === undefined) return writing;
    const reason = seal;
    return writing === undefined ? this.#seal(reason) : writing.then(() => this.#seal(reason));
  }

  async #fakeRotate(rotate: { nextFile: string; position: number }): Promise<void> {
    if (this.#file === undefined) {
      this.#file = rotate.nextFile;
      this.#pos = rotate.position;
      this.#checkpoint ??= { file: rotate.nextFile, position: rotate.position };
      return;
    }
    if (rotate.nextFile === this.#file && rotate.position === this.#pos) return;
    if (rotate.position !== BINLOG_HEADER_SIZE || rotate.nextFile === this.#file) {
      throw this.#error(`the stream jumped from ${this.#file}:${this.#pos} to ${rotate.nextFile}:${rotate.position}`, this.#pos);
    }
    if (this.#rotatedTo !== undefined ? rotate.nextFile !== this.#rotatedTo : compareBinlogFiles(rotate.nextFile, this.#file) <= 0) {
      throw this.#error(`rotation does not chain: ${this.#file} continues in ${rotate.nextFile}, expected ${this.#rotatedTo ?? 'a later file'}`, this.#pos);
    }
    if (!this.#fileEnded) {
      // no Rotate in the file: it ended with a crash or a Stop we resumed after; its end is where we are
      if (!this.#tracker.atBoundary) throw this.#error(`${this.#file} ended inside a transaction`, this.#pos);
      await this.#seal('file-end');
      this.#opts.logger?.info('binlog file ended without a rotate event', { file: this.#file, pos: this.#pos, next: rotate.nextFile });
    }
    this.#file = rotate.nextFile;
    this.#pos = rotate.position;
    this.#fde = undefined;
    this.#rotatedTo = undefined;
    this.#fileEnded = false;
    this.#tracker = new TransactionTracker();
    this.#checkpoint = { file: this.#file, position: this.#pos };
  }

  #takeFde(raw: Buffer, meta: EventMeta): void {
    if (meta.checksum && !eventChecksumMatches(raw)) throw this.#error('format description checksum mismatch');
    const alg = readFormatDescriptionChecksumAlg(raw);
    if ((alg === 1) !== meta.checksum) {
      throw this.#error(`the stream ${meta.checksum ? 'has' : 'lacks'} checksums but the file's checksum algorithm is ${alg}`);
    }
    this.#fde = Buffer.from(raw);
    this.#fdeServerId = raw.readUInt32LE(5);
  }

  #append(seg: OpenSegment, raw: Buffer, header: EventHeader, check: boolean): Promise<void> | undefined {
    if (seg.events === NO_CONTENT) {
      seg.events = 0;
      seg.openedAt = this.#clock();
    }
    seg.events++;
    const ts = header.timestamp * 1000;
    if (ts < seg.minTs) seg.minTs = ts;
    if (ts > seg.maxTs) seg.maxTs = ts;
    if (header.type === EventType.MARIADB_GTID || header.type === EventType.GTID) {
      // a copy (the stream's buffers are not ours to keep), checked for size now so the seal cannot fail on it
      if (raw.length < EVENT_HEADER_LENGTH + (header.type === EventType.GTID ? 25 : 13)) throw this.#error('gtid event too short');
      const copy = Buffer.from(raw);
      seg.gtidFirst ??= copy;
      seg.gtidLast = copy;
    }
    // the CRC32 trailer is checked on the segment worker; a bad one fails the segment before its seal
    return seg.file.append(raw, check);
  }

  async #openSegment(start: number): Promise<void> {
    const tmpPath = join(this.#tmpDir, `${randomBytes(8).toString('hex')}.part`);
    const prefix = start === BINLOG_HEADER_SIZE ? [BINLOG_MAGIC] : [BINLOG_MAGIC, this.#fde!];
    const prefixBytes = prefix.reduce((n, part) => n + part.length, 0);
    const file = await SegmentFile.create(tmpPath, this.#buffers, (fileOffset, size) => {
      const from = start + fileOffset - prefixBytes;
      return this.#error('event checksum mismatch', from, from + size);
    });
    // the FDE's checksum was checked when it arrived
    for (const part of prefix) await file.append(part, false);
    this.#open = { file, tmpPath, startPos: start, prefixBytes, events: NO_CONTENT, openedAt: 0, minTs: Infinity, maxTs: -Infinity };
  }

  #due(incoming: number): boolean {
    const seg = this.#open;
    if (!seg || seg.events <= 0) return false;
    const size = seg.file.size;
    return this.#clock() - seg.openedAt >= this.#opts.maxSeconds * 1000 || size + incoming > this.#opts.maxBytes || size >= this.#opts.maxBytes;
  }

  #dueReason(): SealReason {
    const seg = this.#open!;
    return this.#clock() - seg.openedAt >= this.#opts.maxSeconds * 1000 ? 'time' : 'size';
  }

  async #seal(reason: SealReason): Promise<SealedSegment | undefined> {
    const seg = this.#open;
    if (!seg || seg.events <= 0) return undefined;
    const file = this.#file!;
    this.#open = undefined;
    const source = this.#opts.source ?? `server-${this.#fdeServerId}`;
    const name = segmentObjectName({ source, serverFile: file, startPos: seg.startPos, endPos: this.#pos });
    const path = join(this.#opts.dir, ...name.split('/'));
    let sha256: string;
    try {
      sha256 = await seg.file.finish();
    } catch (error) {
      await rm(seg.tmpPath, { force: true });
      throw error;
    }
    const gtidFirst = seg.gtidFirst && gtidText(seg.gtidFirst);
    const gtidLast = seg.gtidLast && gtidText(seg.gtidLast);
    await mkdirDurable(dirname(path));
    await rename(seg.tmpPath, path);
    await fsyncDir(dirname(path));
    const fileComplete = reason === 'rotate' || reason === 'stop' || reason === 'file-end';
    const sealed: SealedSegment = {
      path,
      name,
      source,
      serverFile: file,
      startPos: seg.startPos,
      endPos: this.#pos,
      firstEventTime: seg.minTs,
      lastEventTime: seg.maxTs,
      ...(gtidFirst !== undefined && { gtidFirst }),
      ...(gtidLast !== undefined && { gtidLast }),
      serverId: this.#fdeServerId,
      size: seg.file.size,
      sha256,
      events: seg.events,
      reason,
      fileComplete,
    };
    this.#checkpoint =
      reason === 'rotate' && this.#rotatedTo !== undefined
        ? { file: this.#rotatedTo, position: BINLOG_HEADER_SIZE }
        : { file, position: this.#pos };
    this.#opts.logger?.info('sealed binlog segment', {
      name,
      bytes: sealed.size,
      events: sealed.events,
      reason,
    });
    await this.#opts.onSealed(sealed);
    return sealed;
  }

  async #discardOpen(): Promise<void> {
    const seg = this.#open;
    this.#open = undefined;
    if (!seg) return;
    await seg.file.discard();
  }

  #error(message: string, from?: number, to?: number): BinlogContinuityError {
    const where = this.#file ? `${this.#file}${from !== undefined ? `:${from}` : ''}: ` : '';
    return new BinlogContinuityError(`${where}${message}`, {
      ...(this.#file !== undefined && { serverFile: this.#file }),
      ...(from !== undefined && { from }),
      ...(to !== undefined && { to }),
      hint: 'Nothing past the last sealed segment was archived. Restart the archiver from its checkpoint; if this repeats, the source changed under it (failover, RESET MASTER, purged binlogs) and a fresh full dump is needed.',
    });
  }
}

function gtidText(raw: Buffer): string | undefined {
  return raw.readUInt8(4) === EventType.MARIADB_GTID ? readMariadbGtid(raw).text : readMysqlGtid(raw);
}

/** mkdir -p, then fsync every directory that gained an entry, so the new path survives a power cut */
async function mkdirDurable(path: string): Promise<void> {
  const first = await mkdir(path, { recursive: true });
  if (first === undefined) return;
  await fsyncDir(dirname(first));
  let dir = first;
  for (const part of relative(first, path).split(sep).filter(Boolean)) {
    await fsyncDir(dir);
    dir = join(dir, part);
  }
}
