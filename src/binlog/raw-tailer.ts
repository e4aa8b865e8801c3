import mysql from 'mysql2';
import type { Pool, PoolOptions } from 'mysql2';
import ZongJi from '@vlasky/zongji';
import { BinlogDisconnectedError, BinlogServerIdClashError, BinlogStreamError, describeError } from '../errors.js';
import type { Logger } from '../ops/logger.js';
import { EVENT_HEADER_LENGTH, EventType } from './binlog-event.js';
import type { BinlogPosition, EventMeta } from './segment-writer.js';

/**
 * Streams the source's binlog as raw events (header..CRC32), byte for byte, from a file and position.
 *
 * zongji has no raw-bytes API, so this patches `BinlogClass.prototype.binlogData` of the class
 * zongji builds for each start(), inside its 'ready' event: after the class exists and before the
 * dump command is queued (dependency-findings §1.5). That relies on zongji internals, which is why
 * @vlasky/zongji is pinned to 0.9.0; if an upgrade breaks it, the fallback is our own mysql2
 * Command sending COM_BINLOG_DUMP (plus `SET @master_binlog_checksum`, `SET
 * @mariadb_slave_capability=4`, and flag 0x02 for Annotate_rows), with zongji kept for decoding only.
 *
 * Events are handed to onEvents in batches (whatever arrived while the previous batch was being
 * handled), in order; while the batches lag behind by more than `highWaterBytes`, the replication
 * socket is paused, so memory stays bounded by the largest event plus the high-water mark. Batches,
 * not one call per event: a catch-up streams a million small events a minute, and per-event
 * promises and queue work were most of its CPU. The tailer never reconnects: a dropped connection is
 * reported once as a BinlogDisconnectedError and the caller restarts from its checkpoint.
 */

export interface RawTailerOptions {
  /** a mysql2 (callback) Pool for the control connection; a pool, unlike one connection, survives wait_timeout */
  pool?: Pool;
  /** used to create (and, at stop, end) a pool when `pool` is not given */
  poolOptions?: PoolOptions;
  /** the replica server_id presented to the source; unique in the topology */
  serverId: number;
  start: BinlogPosition;
  /** server heartbeat period when idle; default 30 000 ms; 0 turns heartbeats off */
  heartbeatMs?: number;
  /**
   * Takes the events received since the last call, in stream order, each exactly one event
   * (header..CRC32; its size checked against its header). The next call waits for the returned promise.
   */
  onEvents(events: Buffer[], meta: EventMeta): void | Promise<void>;
  /** called at most once, after start() resolved; the stream is dead afterwards: call stop() */
  onError(error: BinlogStreamError): void;
  logger?: Logger;
  /** default 4 MiB */
  highWaterBytes?: number;
}

export interface RawTailer {
  /** resolves once the dump is about to be requested; connection and login errors reject */
  start(): Promise<void>;
  /** resolves when zongji has stopped and its dump thread was killed; safe to call more than once */
  stop(): Promise<void>;
  /** events received (including artificial ones and heartbeats) */
  readonly eventsReceived: number;
}

// zongji decodes these cheaply and needs no table metadata; the tap sees every event regardless
const INCLUDE_EVENTS = ['rotate', 'format', 'mariadbgtid', 'mariadbgtidlist', 'binlogcheckpoint', 'query', 'xid', 'heartbeat'];
const DEFAULT_HEARTBEAT_MS = 30_000;
// events waiting for the writer keep their socket reads alive: a lower mark keeps RSS down at the same speed
const DEFAULT_HIGH_WATER = 4 * 1024 * 1024;
const STOP_TIMEOUT_MS = 3_000;
const tappedClasses = new WeakSet<object>();
/**
 * The bulk of every stream. zongji's own handling of them is bookkeeping for its decoded-event API
 * (resume position, current GTID), which this tailer never reads: they go to the tap only. Rotate,
 * Format_description, Stop, Gtid_list and types zongji must warn about still pass through zongji.
 */
const TAP_ONLY = new Set<number>([
  EventType.QUERY, EventType.XID, EventType.TABLE_MAP, EventType.HEARTBEAT, EventType.ANNOTATE_ROWS, EventType.MARIADB_GTID,
  EventType.GTID, EventType.ANONYMOUS_GTID,
  EventType.WRITE_ROWS_V1, EventType.UPDATE_ROWS_V1, EventType.DELETE_ROWS_V1, EventType.WRITE_ROWS, EventType.UPDATE_ROWS, EventType.DELETE_ROWS,
]);

interface MysqlPacket {
  buffer: Buffer;
  offset: number;
  end: number;
  isEOF(): boolean;
  isError(): boolean;
}

/** the parts of zongji used here that its typings don't show */
interface ZongJiInternals extends InstanceType<typeof ZongJi> {
  BinlogClass: { prototype: { binlogData(this: unknown, packet: MysqlPacket, connection: unknown): unknown } };
  connection: (mysql.Connection & { pause(): void; resume(): void }) | null;
}

export function createRawTailer(opts: RawTailerOptions): RawTailer {
  return new Tailer(opts);
}

class Tailer implements RawTailer {
  readonly #opts: RawTailerOptions;
  #zongji: ZongJiInternals | undefined;
  #ownPool: Pool | undefined;
  #started = false;
  #stopping: Promise<void> | undefined;
  #failed = false;
  #checksum = false;
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  #pumping = false;
  #paused = false;
  eventsReceived = 0;

  constructor(opts: RawTailerOptions) {
    if (!opts.pool && !opts.poolOptions) throw new TypeError('createRawTailer needs pool or poolOptions');
    this.#opts = opts;
  }

  start(): Promise<void> {
    if (this.#started) return Promise.reject(new Error('raw tailer already started'));
    this.#started = true;
    const pool = this.#opts.pool ?? (this.#ownPool = mysql.createPool({ connectionLimit: 2, ...this.#opts.poolOptions, dateStrings: true }));
    const zongji = new ZongJi(pool) as ZongJiInternals;
    this.#zongji = zongji;

    return new Promise<void>((resolve, reject) => {
      let ready = false;
      zongji.on('ready', () => {
        ready = true;
        this.#checksum = zongji.useChecksum;
        this.#tap(zongji);
        resolve();
      });
      zongji.on('error', (error: unknown) => {
        if (!ready) {
          reject(streamError(error));
          return;
        }
        this.#fail(error);
      });
      zongji.start({
        serverId: this.#opts.serverId,
        filename: this.#opts.start.file,
        position: this.#opts.start.position,
        requestAnnotateRows: true,
        includeEvents: INCLUDE_EVENTS,
      });
      const heartbeatMs = this.#opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
      // start() created the binlog connection synchronously; this is queued before the dump command
      zongji.connection!.query(`SET @master_heartbeat_period = ${Math.round(heartbeatMs * 1e6)}`, (error: unknown) => {
        if (error) this.#opts.logger?.warn('could not set the binlog heartbeat period', { error: describeError(error) });
      });
    });
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#failed = true;
    this.#queue = [];
    const zongji = this.#zongji;
    if (zongji && this.#started) {
      // a polite stop needs the server (KILL of the dump thread, COM_QUIT); on a half-open
      // connection nothing answers, so after a while the sockets are simply destroyed
      const stopped = new Promise<void>((resolve) => {
        zongji.once('stopped', () => resolve());
        zongji.stop();
      });
      if (!(await settlesWithin(stopped, STOP_TIMEOUT_MS))) {
        this.#opts.logger?.warn('the binlog connection did not close in time; dropping it');
        zongji.connection?.destroy();
        (zongji as unknown as { ctrlConnection?: { destroy?(): void } }).ctrlConnection?.destroy?.();
      }
    }
    // the pump may still be inside onEvent; callers expect no onEvent after stop() resolved
    while (this.#pumping) await new Promise((r) => setImmediate(r));
    const pool = this.#ownPool;
    this.#ownPool = undefined;
    if (pool && !(await settlesWithin(new Promise<void>((resolve) => pool.end(() => resolve())), STOP_TIMEOUT_MS))) {
      this.#opts.logger?.warn('the control connections did not close in time; dropping them');
      for (const conn of (pool as unknown as { _allConnections?: { toArray?(): { destroy(): void }[] } })._allConnections?.toArray?.() ?? []) conn.destroy();
    }
  }

  #tap(zongji: ZongJiInternals): void {
    const proto = zongji.BinlogClass.prototype;
    // zongji builds a new class per start(); never wrap one twice
    if (tappedClasses.has(proto)) return;
    tappedClasses.add(proto);
    const original = proto.binlogData;
    const tailer = this;
    proto.binlogData = function (packet: MysqlPacket, connection: unknown) {
      if (zongji.connection === connection && !zongji.stopped) {
        if (packet.isEOF()) tailer.#opts.logger?.warn('binlog stream sent eof');
        else if (!packet.isError()) {
          // byte 0 is the OK marker; the rest is the event exactly as in the file. A view, not a
          // copy: net gives every socket read a fresh buffer and mysql2 concatenates split packets
          // into new ones, so the bytes stay put until the writer has them on disk (the round-trip
          // tests compare every archived byte with the server's file)
          const raw = packet.buffer.subarray(packet.offset + 1, packet.end);
          tailer.#receive(raw);
          if (raw.length > 4 && TAP_ONLY.has(raw[4]!)) return proto.binlogData;
        }
      }
      return original.call(this, packet, connection);
    };
  }

  #receive(raw: Buffer): void {
    if (this.#failed) return;
    this.eventsReceived++;
    const problem =
      raw.length < EVENT_HEADER_LENGTH
        ? `binlog event shorter than its header (${raw.length} bytes)`
        : raw.readUInt32LE(9) !== raw.length
          ? `event header says ${raw.readUInt32LE(9)} bytes, packet has ${raw.length}`
          : undefined;
    if (problem !== undefined) {
      this.#fail(new BinlogStreamError(`malformed binlog event: ${problem}`, { retryable: true }));
      return;
    }
    this.#queue.push(raw);
    this.#queuedBytes += raw.length;
    if (!this.#paused && this.#queuedBytes > (this.#opts.highWaterBytes ?? DEFAULT_HIGH_WATER)) {
      this.#paused = true;
      this.#zongji?.connection?.pause();
    }
    if (!this.#pumping) {
      // from a microtask: mysql2 hands over every packet of a socket read before it runs, so the
      // first batch is the whole read rather than its first event
      this.#pumping = true;
      queueMicrotask(() => void this.#pump());
    }
  }

  async #pump(): Promise<void> {
    try {
      // a whole batch per turn, never shift(): V8's shift copies large arrays, and at 8 MiB of small
      // events the queue holds ~100k entries (measured: 38 s of a 42 s catch-up of 0.5 GB)
      for (let batch = this.#takeQueued(); batch.length > 0 && !this.#failed; batch = this.#takeQueued()) {
        try {
          await this.#opts.onEvents(batch, { checksum: this.#checksum });
        } catch (error) {
          this.#fail(error);
          return;
        }
        for (const raw of batch) this.#queuedBytes -= raw.length;
        if (this.#paused && this.#queuedBytes <= (this.#opts.highWaterBytes ?? DEFAULT_HIGH_WATER) / 2) {
          this.#paused = false;
          this.#zongji?.connection?.resume();
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  #takeQueued(): Buffer[] {
    const batch = this.#queue;
    this.#queue = [];
    return batch;
  }

  #fail(error: unknown): void {
    if (isUnsupportedEventWarning(error)) {
      // raised by zongji for events it can't decode (MySQL compressed transactions); the raw bytes are still archived
      this.#opts.logger?.warn('zongji cannot decode an event type; archiving its raw bytes anyway', { reason: describeError(error) });
      return;
    }
    if (this.#failed) {
      this.#opts.logger?.debug('binlog stream error after failure', { error: describeError(error) });
      return;
    }
    this.#failed = true;
    this.#queue = [];
    this.#opts.onError(error instanceof BinlogStreamError ? error : streamError(error));
  }
}

const DISCONNECT_CODES = new Set(['PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED']);

function streamError(error: unknown): BinlogStreamError {
  const e = (error ?? {}) as { code?: unknown; errno?: unknown; sqlMessage?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const errno = typeof e.errno === 'number' ? e.errno : undefined;
  if (DISCONNECT_CODES.has(code)) {
    return new BinlogDisconnectedError(`binlog connection lost: ${describeError(error)}`, {
      cause: error,
      hint: 'Restart the stream from the last checkpoint; if it keeps dropping, check the network and the server error log.',
    });
  }
  if (error instanceof BinlogStreamError) return error;
  // mysql2 mislabels replication errors' codes (dependency-findings §1.6): trust errno and the text
  const message = typeof e.sqlMessage === 'string' ? e.sqlMessage : describeError(error);
  if (/same server_uuid\/server_id/i.test(message)) {
    return new BinlogServerIdClashError(`another replica or archiver uses this server id: ${message}`, {
      cause: error,
      ...(errno !== undefined ? { errno } : {}),
      hint: 'Give the archiver a serverId no other replica or archiver of this source uses (source.serverId); two archivers of one source must not both run.',
    });
  }
  if (errno === 1236) {
    return new BinlogStreamError(`the source cannot send the requested binlog: ${message}`, {
      cause: error,
      errno,
      hint: 'The binlog file was probably purged or the server was reset: the archive has a gap from the checkpoint on, and a fresh full dump is needed.',
    });
  }
  return new BinlogStreamError(`binlog stream failed: ${message}`, { cause: error, errno, retryable: errno === undefined });
}

function isUnsupportedEventWarning(error: unknown): boolean {
  return error instanceof Error && !(error as { code?: unknown }).code && /zongji cannot decode/.test(error.message);
}

/** true when `promise` settled within `ms`; never rejects */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
