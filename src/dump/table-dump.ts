/** One table: schema file, then its rows streamed into compressed INSERT chunks with a running checksum. */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DumpError, describeError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { readColumns, readPrimaryKey, showCreateTable, type CatalogTable } from './catalog.js';
import type { RowChecksum } from './checksum.js';
import { ChunkSink } from './chunk-sink.js';
import { extensionOf } from './codec.js';
import { selectSql } from './columns.js';
import type { DbSession } from './connection.js';
import { InsertEncoder } from './insert-encoder.js';
import { queryRowPackets } from './row-packets.js';
import { keyName } from './names.js';
import { DUMP_SQL_MODE, type DumpCompression, type DumpFileRecord, type DumpTableRecord } from './types.js';

export { InsertEncoder };

export interface TableDumpContext {
  storage: Storage;
  prefix: string;
  compression: DumpCompression;
  gzipLevel?: number;
  chunkBytes: number;
  statementBytes: number;
  tmpDir: string;
  signal?: AbortSignal;
  /** records every file the table wrote (schema and data) */
  addFile(file: DumpFileRecord): void;
}

/** The first line of every data file: the session the statements assume. */
export const DATA_FILE_HEADER = Buffer.from(
  `SET NAMES utf8mb4, time_zone = '+00:00', sql_mode = '${DUMP_SQL_MODE}', foreign_key_checks = 0, unique_checks = 0;\n`,
);

export function tableKeyBase(db: string, table: string): string {
  return `${keyName(db)}/${keyName(table)}`;
}

export async function dumpTable(s: DbSession, t: CatalogTable, ctx: TableDumpContext, pointInTime: boolean): Promise<DumpTableRecord> {
  const started = performance.now();
  const columns = await readColumns(s, t.db, t.table);
  const primaryKey = await readPrimaryKey(s, t.db, t.table);
  const create = await showCreateTable(s, t.db, t.table);
  const base = tableKeyBase(t.db, t.table);
  const schemaKey = `${base}.schema.sql`;
  const body = Buffer.from(`${create};\n`, 'utf8');
  const put = await ctx.storage.put(`${ctx.prefix}/${schemaKey}`, () => bufferStream(body), { signal: ctx.signal, sizeHint: body.length });
  ctx.addFile({ key: schemaKey, size: put.size, sha256: put.sha256 });

  const encoder = new InsertEncoder(t.table, columns, ctx.statementBytes);
  const sink = new ChunkSink({
    storage: ctx.storage,
    prefix: ctx.prefix,
    keyOf: (n) => `${base}.${String(n).padStart(5, '0')}${extensionOf(ctx.compression)}`,
    chunkBytes: ctx.chunkBytes,
    compression: ctx.compression,
    gzipLevel: ctx.gzipLevel,
    tmpDir: ctx.tmpDir,
    header: DATA_FILE_HEADER,
    signal: ctx.signal,
    written: (sql) => encoder.release(sql),
  });
  await s.q.query('SET SESSION character_set_results = binary');
  let reading = true;
  const failEncoder = (error: unknown) => {
    encoder.destroy(error as Error);
    throw error;
  };
  const rows = queryRowPackets(s, selectSql(t.db, t.table, columns, primaryKey), encoder, ctx.signal).then(() => encoder.finish().catch(failEncoder), failEncoder);
  rows.then(
    () => (reading = false),
    () => (reading = false),
  );
  let sum: RowChecksum;
  try {
    [, sum] = await Promise.all([pipeline(encoder, sink, { signal: ctx.signal }), rows]);
  } catch (error) {
    // a result cut short cannot be skipped cheaply: the session goes with it
    if (reading) s.destroy();
    const errno = (error as { errno?: number }).errno;
    if (errno === 1412) {
      throw new DumpError(`table ${t.db}.${t.table} changed its definition during the dump (DDL while dumping)`, {
        cause: error,
        hint: 'Run the dump again when no ALTER/TRUNCATE/DROP runs (mode backup-stage blocks DDL only while the snapshot starts).',
      });
    }
    if (error instanceof DumpError || (error as Error).name === 'AbortError') throw error;
    throw new DumpError(`dumping ${t.db}.${t.table} failed: ${describeError(error)}`, { cause: error });
  } finally {
    await s.q.query('SET SESSION character_set_results = utf8mb4').catch(() => undefined);
  }
  for (const f of sink.files) ctx.addFile(f);
  return {
    db: t.db,
    table: t.table,
    engine: t.engine,
    rows: sum.rows,
    checksum: sum.digest(),
    pointInTime,
    columns,
    primaryKey,
    schemaFile: schemaKey,
    files: sink.files.map((f) => f.key),
    sqlBytes: sink.sqlBytes,
    durationMs: Math.round(performance.now() - started),
  };
}

export function bufferStream(body: Buffer): Readable {
  return Readable.from([body], { objectMode: false });
}
