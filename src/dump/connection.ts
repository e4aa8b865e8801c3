import mysql from 'mysql2';
import type { Connection as PromiseConnection } from 'mysql2/promise';
import { sourceConnectionError, sourcePoolOptions } from '../db/connect.js';
import type { SourceOptions } from '../db/source-options.js';
import { DUMP_SQL_MODE } from './types.js';

/** Where to connect for a dump or a load: the source options without the replication server id. */
export type DumpConnectionOptions = Omit<SourceOptions, 'serverId'> & { serverId?: number };

/** One server session: the callback connection (for streaming) and its promise wrapper. */
export interface DbSession {
  readonly raw: mysql.Connection;
  readonly q: PromiseConnection;
  end(): Promise<void>;
  /** closes the connection at once, mid-result too (end() then does nothing) */
  destroy(): void;
}

export async function openSession(opts: DumpConnectionOptions): Promise<DbSession> {
  const options = {
    ...sourcePoolOptions({ ...opts, serverId: opts.serverId ?? 0 }),
    // mysql2 scans every statement for placeholders even when no values are given; a load sends
    // its whole dump as statements, and that scan was a fifth of its CPU
    queryFormat(this: { config: { timezone?: string } }, sql: string, values: unknown): string {
      return values === undefined || values === null || (Array.isArray(values) && values.length === 0) ? sql : mysql.format(sql, values as never, false, this.config.timezone as never);
    },
  };
  const raw = mysql.createConnection(options as mysql.ConnectionOptions);
  // an idle session that dies must not crash the process; the next query reports it
  raw.on('error', () => undefined);
  const q = raw.promise();
  try {
    await q.connect();
  } catch (error) {
    raw.destroy();
    throw sourceConnectionError({ ...opts, serverId: opts.serverId ?? 0 }, error);
  }
  // exact, portable values: UTC for TIMESTAMP, zero dates allowed, no backslash surprises
  await q.query(`SET SESSION time_zone = '+00:00', sql_mode = '${DUMP_SQL_MODE}', net_write_timeout = 3600, net_read_timeout = 3600, wait_timeout = 28800`);
  let ended = false;
  return {
    raw,
    q,
    async end(): Promise<void> {
      if (ended) return;
      ended = true;
      await q.end().catch(() => raw.destroy());
    },
    destroy(): void {
      if (ended) return;
      ended = true;
      // the socket itself: mysql2's destroy() only half-closes, and the server may still be sending rows
      (raw as unknown as { stream?: { destroy(): void } }).stream?.destroy();
      raw.destroy();
    },
  };
}

/** A metadata value as text: with character_set_results = binary mysql2 gives Buffers. */
export function text(v: unknown): string {
  if (v === null || v === undefined) return '';
  return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

export async function rows<T = Record<string, unknown>>(s: DbSession, sql: string, params?: unknown[]): Promise<T[]> {
  const [r] = await s.q.query(sql, params);
  return r as T[];
}
