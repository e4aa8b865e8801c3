/**
 * Runs a SELECT and hands each row to a sink as the bytes of its text-protocol packet (text-row.ts),
 * read in place from the connection's buffer.
 *
 * mysql2's row path builds an array and a Buffer per value, and its stream adds an object-mode hop per
 * row; for a dump that was more work than encoding the rows. This takes over the one step of
 * mysql2's Query command that parses a row (`row`, the state after the column definitions) for this
 * query only; the column definitions, the end-of-rows packet, errors and the connection's state stay
 * mysql2's. Flow control is mysql2's own pause()/resume(), which also queues packets already read.
 * The hook relies on mysql2 internals (Query#row, Packet offset/end): the lockfile pins the version,
 * and the dump round-trip tests exercise it on every run.
 */
import type mysql from 'mysql2';
import type { DbSession } from './connection.js';

export interface RowPacketSink {
  /** the row `b[start, end)`, valid only during the call; false: no more rows until `whenReady` calls back */
  row(b: Buffer, start: number, end: number): boolean;
  /** calls `go` (once) when rows may flow again, or `fail` when they never will */
  whenReady(go: () => void, fail: (error: unknown) => void): void;
}

interface PacketLike {
  buffer: Buffer;
  offset: number;
  end: number;
  isEOF(): boolean;
}

type State = (this: unknown, packet: PacketLike, connection: unknown) => unknown;

/**
 * Resolves with the number of rows once the server sent them all; rejects on a server error. When
 * the sink throws or `signal` aborts, the session is destroyed (the rest of a result cannot be
 * skipped cheaply) and the promise rejects at once.
 */
export function queryRowPackets(s: DbSession, sql: string, sink: RowPacketSink, signal?: AbortSignal): Promise<number> {
  const raw = s.raw;
  return new Promise((resolve, reject) => {
    let rows = 0;
    let failed: unknown;
    const query = raw.query({ sql, rowsAsArray: true }) as unknown as mysql.Query & { row: State };
    const mysqlRow = (Object.getPrototypeOf(query) as { row: State }).row;
    if (typeof mysqlRow !== 'function') {
      reject(new Error('mysql2 has no Query#row: this version of mysql2 is not supported (see src/dump/row-packets.ts)'));
      return;
    }
    const fail = (error: unknown) => {
      if (failed !== undefined) return;
      failed = error;
      s.destroy();
      done();
    };
    const onAbort = () => fail(signal?.reason ?? new Error('aborted'));
    query.row = function row(this: unknown, packet: PacketLike, connection: unknown) {
      if (packet.isEOF()) return mysqlRow.call(this, packet, connection);
      if (failed === undefined) {
        rows++;
        try {
          if (!sink.row(packet.buffer, packet.offset, packet.end)) {
            raw.pause();
            sink.whenReady(() => raw.resume(), fail);
          }
        } catch (error) {
          fail(error);
        }
      }
      return query.row;
    };
    let settled = false;
    const done = (error?: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (failed !== undefined || error !== undefined) reject(failed ?? error);
      else resolve(rows);
    };
    query.on('error', (error: Error) => done(error));
    query.on('end', () => done());
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
