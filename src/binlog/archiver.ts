import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { connectSource, sourcePoolOptions } from '../db/connect.js';
import type { SourceOptions } from '../db/source-options.js';
import { BinlogContinuityError, BinlogStreamError, describeError, isAbortError } from '../errors.js';
import type { Logger } from '../ops/logger.js';
import { EventType } from './binlog-event.js';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from './checkpoint.js';
import { decideStart, describeGap, restartDecision, type Gap, type StartDecision, type StartFrom } from './continuity.js';
import { createRawTailer, type RawTailer } from './raw-tailer.js';
import { createSegmentWriter, type BinlogPosition, type EventMeta, type SealedSegment, type SegmentWriter } from './segment-writer.js';
import { bytesBehind, readServerBinlogs, type ServerBinlogs } from './server-binlogs.js';

/**
 * The binlog archiver: one long-running loop that keeps a replication stream open, writes what it
 * receives into sealed segments, and hands each segment to `sink` (the durable spool). It owns
 * reconnecting (zongji never does), the checkpoint, and continuity: whenever the server cannot
 * continue exactly where the archive ends, a Gap with its range goes to `onGap` and archiving
 * resumes at the earliest position still readable.
 */
export interface BinlogArchiverOptions {
  source: SourceOptions;
  /** checkpoint.json and the segments dir live here */
  stateDir: string;
  maxSeconds: number;
  maxBytes: number;
  /** takes a sealed segment; must make it durable elsewhere (spool) before resolving; may move the file */
  sink(segment: SealedSegment, checkpoint: Checkpoint): Promise<void>;
  onGap(gap: Gap): Promise<void>;
  logger: Logger;
  signal: AbortSignal;
  clock?: () => number;
  startFrom?: StartFrom;
  /** server heartbeat period; a stream silent for 3 periods is treated as dead. Default 30 s */
  heartbeatMs?: number;
  /** reconnect backoff; defaults 1 s .. 60 s */
  backoff?: { minMs: number; maxMs: number };
  /** how often the server's position is polled for lag figures; default 10 s */
  pollMs?: number;
}

export interface ArchiverStatus {
  connected: boolean;
  since?: number;
  source?: string;
  /** the next byte the archive needs (end of the last sealed segment) */
  archived?: BinlogPosition;
  /** the next byte received (sealed or not) */
  received?: BinlogPosition;
  server?: BinlogPosition;
  serverPolledAt?: number;
  lagBytes?: number;
  /** seconds between now and the last archived event, when the server has written more since */
  lagSeconds?: number;
  lastEventTime?: number;
  lastSealed?: { name: string; size: number; at: number };
  segmentsSealed: number;
  reconnects: number;
  lastError?: { message: string; at: number; hint?: string };
  /** another replica or archiver registered with our serverId and the server dropped one of us */
  serverIdClash?: { at: number; count: number; message: string };
  gaps: Gap[];
  needsFullDump: boolean;
}

export class BinlogArchiver {
  readonly #o: BinlogArchiverOptions;
  readonly #clock: () => number;
  readonly #segmentsDir: string;
  #checkpoint: Checkpoint | undefined;
  #status: ArchiverStatus = { connected: false, segmentsSealed: 0, reconnects: 0, gaps: [], needsFullDump: false };

  constructor(options: BinlogArchiverOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
    this.#segmentsDir = join(options.stateDir, 'segments');
  }

  get status(): ArchiverStatus {
    return structuredClone(this.#status);
  }

  get checkpoint(): Checkpoint | undefined {
    return this.#checkpoint && structuredClone(this.#checkpoint);
  }

  /** Runs until the signal aborts; then seals what is complete and returns. Throws only for errors no retry can fix. */
  async run(): Promise<void> {
    await mkdir(this.#segmentsDir, { recursive: true });
    this.#checkpoint = await loadCheckpoint(this.#o.stateDir);
    await this.#removeOrphans();
    this.#status.needsFullDump = this.#checkpoint?.needsFullDump === true;
    let backoffMs = this.#o.backoff?.minMs ?? 1000;
    let nextContinuity: { reason: 'continuity'; detail: string } | undefined;
    while (!this.#o.signal.aborted) {
      const startedAt = this.#clock();
      let progressed = false;
      try {
        progressed = await this.#session(nextContinuity);
        nextContinuity = undefined;
      } catch (error) {
        if (this.#o.signal.aborted && isAbortError(error)) break;
        nextContinuity = undefined;
        if (error instanceof BinlogContinuityError) {
          nextContinuity = { reason: 'continuity', detail: error.message };
        }
        this.#recordError(error);
      }
      this.#status.connected = false;
      if (this.#o.signal.aborted) break;
      this.#status.reconnects++;
      // a session that archived something or lasted a while resets the backoff
      if (progressed || this.#clock() - startedAt > 60_000) backoffMs = this.#o.backoff?.minMs ?? 1000;
      this.#o.logger.info('binlog stream ended; reconnecting', { inMs: backoffMs });
      try {
        await delay(backoffMs, undefined, { signal: this.#o.signal });
      } catch {
        break;
      }
      backoffMs = Math.min(backoffMs * 2, this.#o.backoff?.maxMs ?? 60_000);
    }
  }

  /** One connection's worth of archiving. Resolves when the signal aborts; rejects when the stream fails. */
  async #session(continuity: { reason: 'continuity'; detail: string } | undefined): Promise<boolean> {
    // a segment the sink refused (spool full, disk error) goes first: nothing is read past it
    await this.#spoolPending();
    // the shared opener: a refused login or unreachable host is reported with host:port and a hint
    const control = await connectSource(this.#o.source);
    let server: ServerBinlogs;
    try {
      server = await readServerBinlogs(control);
    } catch (error) {
      await control.end().catch(() => undefined);
      throw error;
    }
    const decision =
      continuity && this.#checkpoint
        ? restartDecision(this.#checkpoint, server, continuity.reason, continuity.detail)
        : decideStart(this.#checkpoint, server, this.#o.startFrom);
    await this.#adopt(decision, server);

    let sealedThisSession = 0;
    const writer: SegmentWriter = await createSegmentWriter({
      dir: this.#segmentsDir,
      maxSeconds: this.#o.maxSeconds,
      maxBytes: this.#o.maxBytes,
      clock: this.#clock,
      source: decision.source,
      logger: this.#o.logger,
      onSealed: async (segment) => {
        await this.#onSealed(segment, writer);
        sealedThisSession++;
      },
    });

    const failure = new AbortController();
    let streamError: unknown;
    const fail = (error: unknown) => {
      streamError ??= error;
      this.#status.connected = false;
      failure.abort();
    };
    let lastEventAt = this.#clock();
    const heartbeatMs = this.#o.heartbeatMs ?? 30_000;
    const tailer: RawTailer = createRawTailer({
      poolOptions: sourcePoolOptions(this.#o.source),
      serverId: this.#o.source.serverId,
      start: decision.start,
      heartbeatMs,
      logger: this.#o.logger,
      onEvents: async (events: Buffer[], meta: EventMeta) => {
        lastEventAt = this.#clock();
        for (const raw of events) {
          if (raw[4] === EventType.FORMAT_DESCRIPTION && raw.readUInt32LE(5) !== this.#checkpoint!.serverId) {
            throw new BinlogContinuityError(`${this.#checkpoint!.next.file} was written by server_id ${raw.readUInt32LE(5)}, not ${this.#checkpoint!.serverId}`);
          }
        }
        await writer.write(events, meta);
        const received = writer.position;
        if (received) this.#status.received = received;
      },
      onError: fail,
    });

    const stop = () => failure.abort();
    this.#o.signal.addEventListener('abort', stop, { once: true });
    let timer: NodeJS.Timeout | undefined;
    let poller: NodeJS.Timeout | undefined;
    try {
      await tailer.start();
      this.#status.connected = true;
      this.#status.since = this.#clock();
      this.#status.lastError = undefined;
      this.#o.logger.info('binlog stream open', { from: `${decision.start.file}:${decision.start.position}`, source: decision.source });
      const tickMs = Math.max(50, Math.min(1000, (this.#o.maxSeconds * 1000) / 4));
      timer = setInterval(() => {
        if (this.#clock() - lastEventAt > heartbeatMs * 3) {
          fail(new BinlogStreamError(`no event or heartbeat for ${Math.round((this.#clock() - lastEventAt) / 1000)} s: the connection is half-open`, { retryable: true }));
          return;
        }
        writer.tick().catch(fail);
      }, tickMs);
      const poll = () => {
        readServerBinlogs(control)
          .then((s) => this.#noteServer(s))
          .catch((error) => this.#o.logger.debug('could not poll the server position', { error: describeError(error) }));
      };
      this.#noteServer(server);
      poller = setInterval(poll, this.#o.pollMs ?? 10_000);
      await new Promise<void>((resolve) => {
        if (failure.signal.aborted) resolve();
        else failure.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      if (streamError !== undefined) throw streamError;
      // graceful stop: seal what is complete so the last minutes are not left to the next start
      await tailer.stop();
      await writer.flush().catch((error) => this.#o.logger.warn('final seal failed', { error: describeError(error) }));
      return sealedThisSession > 0;
    } finally {
      clearInterval(timer);
      clearInterval(poller);
      this.#o.signal.removeEventListener('abort', stop);
      await tailer.stop().catch(() => undefined);
      await writer.close().catch(() => undefined);
      // end() needs the server to answer; after a failure the connection may be half-open
      if (streamError === undefined) await control.end().catch(() => control.destroy());
      else control.destroy();
    }
  }

  /** Takes the decision as the new checkpoint (durably) and reports its gap, before any byte is read. */
  async #adopt(decision: StartDecision, server: ServerBinlogs): Promise<void> {
    const previous = this.#checkpoint;
    if (decision.gap) {
      this.#o.logger.error(describeGap(decision.gap), { gap: decision.gap });
      await this.#o.onGap(decision.gap);
      this.#status.gaps.push(decision.gap);
      this.#status.needsFullDump = true;
    }
    const changed =
      !previous ||
      previous.source !== decision.source ||
      previous.next.file !== decision.start.file ||
      previous.next.position !== decision.start.position ||
      decision.gap !== undefined;
    this.#checkpoint = {
      v: 1,
      source: decision.source,
      epoch: decision.epoch,
      serverId: server.serverId,
      ...(server.serverUuid ? { serverUuid: server.serverUuid } : {}),
      next: decision.start,
      ...(previous?.lastEventTime !== undefined ? { lastEventTime: previous.lastEventTime } : {}),
      ...(this.#status.needsFullDump ? { needsFullDump: true } : {}),
      updatedAt: new Date(this.#clock()).toISOString(),
    };
    if (changed) await saveCheckpoint(this.#o.stateDir, this.#checkpoint);
    this.#status.source = decision.source;
    this.#status.archived = decision.start;
  }

  async #onSealed(segment: SealedSegment, writer: SegmentWriter): Promise<void> {
    const next = writer.checkpoint!;
    const checkpoint: Checkpoint = {
      ...this.#checkpoint!,
      next,
      lastEventTime: segment.lastEventTime,
      pending: segment,
      updatedAt: new Date(this.#clock()).toISOString(),
    };
    // durable before the hand-over: a crash in between finds `pending` and spools it on start
    await saveCheckpoint(this.#o.stateDir, checkpoint);
    this.#checkpoint = checkpoint;
    await this.#o.sink(segment, checkpoint);
    const { pending: _done, ...rest } = checkpoint;
    this.#checkpoint = rest;
    await saveCheckpoint(this.#o.stateDir, rest);
    this.#status.archived = next;
    this.#status.lastEventTime = segment.lastEventTime;
    this.#status.lastSealed = { name: segment.name, size: segment.size, at: this.#clock() };
    this.#status.segmentsSealed++;
  }

  /** Hands over the segment sealed before a crash or a refused hand-over; the checkpoint already points past it. */
  async #spoolPending(): Promise<void> {
    const pending = this.#checkpoint?.pending;
    if (!pending) return;
    const exists = await stat(pending.path).then(
      () => true,
      () => false,
    );
    // absent: the hand-over moved it before the crash
    if (exists) {
      this.#o.logger.info('spooling the segment sealed before the last stop', { name: pending.name });
      await this.#o.sink(pending, this.#checkpoint!);
    }
    const { pending: _done, ...rest } = this.#checkpoint!;
    this.#checkpoint = rest;
    await saveCheckpoint(this.#o.stateDir, rest);
  }

  /** At start: sealed files the checkpoint does not know were cut after it, and are read again from the server. */
  async #removeOrphans(): Promise<void> {
    const keep = this.#checkpoint?.pending?.path;
    for (const path of await listFiles(this.#segmentsDir)) {
      if (path === keep) continue;
      this.#o.logger.info('removing a segment sealed after the checkpoint; it is read again from the server', { path });
      await rm(path, { force: true });
    }
  }

  #noteServer(server: ServerBinlogs): void {
    this.#status.server = server.current;
    this.#status.serverPolledAt = this.#clock();
    const archived = this.#status.archived;
    if (!archived) return;
    this.#status.lagBytes = bytesBehind(server, archived);
    const last = this.#status.lastEventTime;
    this.#status.lagSeconds = this.#status.lagBytes > 0 && last !== undefined ? Math.max(0, (this.#clock() - last) / 1000) : 0;
  }

  #recordError(error: unknown): void {
    const hint = error instanceof Error && 'hint' in error ? (error as { hint?: string }).hint : undefined;
    this.#status.lastError = { message: describeError(error), at: this.#clock(), ...(hint ? { hint } : {}) };
    if (error instanceof BinlogStreamError && error.code === 'E_BINLOG_SERVER_ID_CLASH') {
      this.#status.serverIdClash = { at: this.#clock(), count: (this.#status.serverIdClash?.count ?? 0) + 1, message: describeError(error) };
    }
    const level = error instanceof BinlogStreamError && error.retryable ? 'warn' : 'error';
    this.#o.logger.log(level, `binlog stream failed: ${describeError(error)}`, hint ? { hint } : {});
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== '.partial') out.push(...(await listFiles(path)));
    } else out.push(path);
  }
  return out;
}
