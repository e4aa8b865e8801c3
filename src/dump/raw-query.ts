/**
 * A statement sent from the bytes that hold it, without a string (COM_QUERY of a Buffer).
 *
 * A load sends its whole dump as statements of about 1 MiB. Through mysql2's `query(string)` each
 * one became a string (large strings live in V8's old space), then a new Buffer for the packet
 * (external memory, which also counts against the old space's limit): the main thread ran a full
 * GC every few statements, and the GC threads took two cores' worth of time away from the server
 * being loaded. Here the caller keeps one buffer per session and fills it statement by statement.
 *
 * mysql2 builds and writes the command packet in Query#start; this lets a Query command run with
 * an empty statement and hands connection.writePacket our packet instead of the one built, once.
 * The reply (OK, or an error) is mysql2's own handling. It relies on mysql2 internals (static
 * createQuery, Query#start, writePacket, addCommand): the lockfile pins the version, and every
 * dump load in the tests goes through it.
 */
import type mysql from 'mysql2';
import type { DbSession } from './connection.js';

/** The bytes of a packet before its payload: 3 length bytes and a sequence id. */
const HEADER = 4;
/**
 * `packet` holds the statement from here: after the header, the command byte and, where the
 * session uses query attributes (MySQL 8.0.23 and later), their count and set count
 */
export const RAW_QUERY_OFFSET = HEADER + 3;
/**
 * the largest statement sent in one packet: mysql2 writes a packet of 0xffffff bytes or more
 * (header included) in pieces, which a payload built here must not become; longer statements go
 * through `query(string)`
 */
export const RAW_QUERY_MAX = 0xffffff - RAW_QUERY_OFFSET - 1;

const COM_QUERY = 0x03;
/** mysql2's capability flag for query attributes (constants/client.js) */
const CLIENT_QUERY_ATTRIBUTES = 0x08000000;

export interface PacketLike {
  buffer: Buffer;
  length(): number;
  writeHeader(sequenceId: number): void;
}

interface Internals {
  addCommand(cmd: unknown): unknown;
  config: { clientFlags?: number };
  serverCapabilityFlags?: number;
  writePacket(packet: PacketLike): void;
  constructor: { createQuery?(sql: string, values: unknown, cb: (error: unknown) => void, config: unknown): { start?: StartFn } };
}

type StartFn = (this: unknown, packet: unknown, connection: Internals) => unknown;

/**
 * Runs the statement `packet[RAW_QUERY_OFFSET, RAW_QUERY_OFFSET + sqlLength)` (at most
 * RAW_QUERY_MAX bytes). The buffer may be reused once this settles: the server answers only after
 * it read the whole packet. Rejects with mysql2's error for the statement.
 */
export function rawQuery(s: DbSession, packet: Buffer, sqlLength: number): Promise<void> {
  if (sqlLength > RAW_QUERY_MAX) return Promise.reject(new RangeError(`a statement of ${sqlLength} bytes does not fit one packet`));
  const raw = s.raw as unknown as Internals & mysql.Connection;
  const createQuery = raw.constructor.createQuery;
  return new Promise((resolve, reject) => {
    const cmd = createQuery?.call(raw.constructor, '', undefined, (error: unknown) => (error ? reject(error) : resolve()), raw.config);
    const start = cmd && (Object.getPrototypeOf(cmd) as { start?: StartFn }).start;
    if (!cmd || typeof start !== 'function') {
      reject(new Error('mysql2 has no Connection.createQuery or Query#start: this version of mysql2 is not supported (see src/dump/raw-query.ts)'));
      return;
    }
    cmd.start = function (this: unknown, p: unknown, connection: Internals) {
      const ours = queryPacket(packet, sqlLength, ((connection.config.clientFlags ?? 0) & (connection.serverCapabilityFlags ?? 0) & CLIENT_QUERY_ATTRIBUTES) !== 0);
      // writePacket shadowed for this one call: the packet built for '' is dropped, ours is written
      const writePacket = connection.writePacket;
      const own = Object.getOwnPropertyDescriptor(connection, 'writePacket');
      Object.defineProperty(connection, 'writePacket', { value: () => writePacket.call(connection, ours), configurable: true, writable: true });
      try {
        return start.call(this, p, connection);
      } finally {
        if (own) Object.defineProperty(connection, 'writePacket', own);
        else delete (connection as Partial<Internals>).writePacket;
      }
    };
    raw.addCommand(cmd);
  });
}

/**
 * The COM_QUERY packet around the statement at RAW_QUERY_OFFSET, as mysql2's Query packet lays it
 * out: with query attributes in use, the command byte is followed by a parameter count of 0 and a
 * parameter set count of 1.
 */
export function queryPacket(packet: Buffer, sqlLength: number, attributes: boolean): PacketLike {
  const view = packet.subarray(attributes ? 0 : 2, RAW_QUERY_OFFSET + sqlLength);
  view[HEADER] = COM_QUERY;
  if (attributes) {
    view[HEADER + 1] = 0;
    view[HEADER + 2] = 1;
  }
  return {
    buffer: view,
    length: () => view.length,
    writeHeader(sequenceId: number) {
      view.writeUIntLE(view.length - HEADER, 0, 3);
      view[3] = sequenceId;
    },
  };
}
