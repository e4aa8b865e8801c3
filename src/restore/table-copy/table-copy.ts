/**
 * Streaming copy of one table's rows (optionally only those matching a WHERE condition) from a
 * source connection into a NEW table on a target connection, or into a SQL file.
 *
 * - Memory stays flat: rows are streamed from the source (mysql2 stream, backpressure) and written
 *   in multi-row INSERT batches; the next batch is read only once the previous one is written.
 * - Lossless values: character columns travel as utf8mb4 text, binary ones (BLOB, BINARY, BIT,
 *   spatial) as hex literals, everything else (numbers, temporal) as the server's own text, in a
 *   UTC session on both sides, with NO_AUTO_VALUE_ON_ZERO so an id 0 stays 0.
 * - The new table gets the source's definition minus foreign keys (their names are unique per
 *   database and they would tie the copy to live tables); generated columns are recomputed.
 * - Counts are checked: the source's COUNT(*) inside the same consistent snapshot as the read, the
 *   rows streamed, and (table target) COUNT(*) of the new table at the end. A mismatch is an error.
 * - It never writes to an existing table or file: the target table is created with CREATE TABLE
 *   (no IF NOT EXISTS), the file is written beside its destination and renamed only when complete.
 *   On failure the half-filled new table or temp file is removed.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { access, open, rename, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import type { Readable } from 'node:stream';
import mysql from 'mysql2';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { OperationAbortedError, RestoreTargetError, TableCopyError, TableCopyMismatchError, describeError, isAbortError, throwIfAborted } from '../../errors.js';
import { createSilentLogger, type Logger } from '../../ops/logger.js';

export interface TableRef {
  readonly db: string;
  readonly name: string;
}

export type CopyTarget =
  | { readonly kind: 'table'; readonly conn: Connection; readonly table: TableRef }
  | { readonly kind: 'file'; readonly path: string; /** the table name the file's CREATE TABLE and INSERTs use */ readonly table: TableRef };

export interface CopyProgress {
  readonly rows: number;
  readonly expectedRows: number;
  readonly bytes: number;
}

export interface CopyTableOptions {
  /** where the rows are read; its session settings are changed (time zone, transaction) */
  readonly source: Connection;
  readonly table: TableRef;
  /** an SQL condition, e.g. "customer_id = 42" (it is the operator's own SQL, run on the source) */
  readonly where?: string;
  readonly target: CopyTarget;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** called after every written batch; awaited */
  readonly onProgress?: (progress: CopyProgress) => void | Promise<void>;
  /** a batch is written once it holds this many rows (default 1000) ... */
  readonly batchRows?: number;
  /** ... or this many bytes of SQL (default 1 MiB) */
  readonly batchBytes?: number;
}

export interface CopyTableResult {
  readonly rows: number;
  readonly bytes: number;
  readonly columns: readonly string[];
  /** the CREATE TABLE statement used for the copy */
  readonly createTable: string;
  readonly durationMs: number;
}

type ColumnKind = 'text' | 'binary' | 'plain';
interface Column {
  readonly name: string;
  readonly kind: ColumnKind;
}

const BINARY_TYPES = new Set([
  'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'bit', 'geometry', 'point', 'linestring', 'polygon',
  'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection', 'geomcollection', 'vector',
]);

const SESSION_SQL = "SET SESSION time_zone = '+00:00', sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', foreign_key_checks = 0";

export function quoteId(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

/** A row of information_schema.COLUMNS (as `generated`, `extra`) the server computes: never inserted. */
export function isGeneratedColumn(c: Readonly<Record<string, unknown>>): boolean {
  return String(c['generated'] ?? 'NEVER') !== 'NEVER' || /GENERATED/i.test(String(c['extra'] ?? ''));
}

export function qualified(table: TableRef): string {
  return `${quoteId(table.db)}.${quoteId(table.name)}`;
}

/** Fails (RestoreTargetError, exit 2) when the target cannot take a new table or file; changes nothing. */
export async function checkCopyTarget(target: CopyTarget): Promise<void> {
  if (target.kind === 'file') {
    if (await exists(target.path)) {
      throw new RestoreTargetError(`the output file ${target.path} already exists`, { hint: 'Choose another --to-file path, or move the existing file away first.' });
    }
    try {
      await access(dirname(target.path));
    } catch (error) {
      throw new RestoreTargetError(`the directory of ${target.path} does not exist or cannot be read: ${describeError(error)}`, {
        hint: 'Create the directory, or choose a --to-file path in an existing, writable directory.',
      });
    }
    return;
  }
  const [dbs] = await target.conn.query<RowDataPacket[]>('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [target.table.db]);
  if (dbs.length === 0) {
    throw new RestoreTargetError(`the target database ${quoteId(target.table.db)} does not exist`, {
      hint: `Create it first (CREATE DATABASE ${quoteId(target.table.db)}), or restore into an existing database with --into DB.TABLE.`,
    });
  }
  const [tables] = await target.conn.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
    target.table.db,
    target.table.name,
  ]);
  if (tables.length > 0) {
    throw new RestoreTargetError(`the target table ${qualified(target.table)} already exists; a restore only ever creates a new table`, {
      hint: 'Choose another name with --into DB.NEW_TABLE, or drop or rename the existing copy first.',
    });
  }
}

/** Copies the rows; see the file header. Throws TableCopyError / TableCopyMismatchError / OperationAbortedError. */
export async function copyTable(opts: CopyTableOptions): Promise<CopyTableResult> {
  const started = Date.now();
  const logger = opts.logger ?? createSilentLogger();
  const { source, table, target, signal } = opts;
  const batchRows = opts.batchRows ?? 1000;
  const batchBytes = opts.batchBytes ?? 1024 * 1024;
  throwIfAborted(signal);
  if (target.kind === 'table' && target.conn === source && target.table.db === table.db && target.table.name === table.name) {
    throw new RestoreTargetError('the target table is the source table', { hint: 'Restore into a new table.' });
  }

  let columns: Column[];
  let createTable: string;
  let expectedRows: number;
  const where = opts.where?.trim() ? ` WHERE ${opts.where}` : '';
  try {
    await source.query(SESSION_SQL);
    // one consistent snapshot for the count and the read
    await source.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const [created] = await source.query<RowDataPacket[]>(`SHOW CREATE TABLE ${qualified(table)}`);
    const ddl = String(created[0]?.['Create Table'] ?? '');
    if (!ddl) throw new TableCopyError(`${qualified(table)} is not a base table`);
    createTable = rewriteCreateTable(ddl, target.table);
    const [cols] = await source.query<RowDataPacket[]>(
      `SELECT COLUMN_NAME AS name, DATA_TYPE AS type, CHARACTER_SET_NAME AS charset, IS_GENERATED AS generated, EXTRA AS extra
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
      [table.db, table.name],
    );
    columns = cols
      .filter((c) => !isGeneratedColumn(c))
      .map((c) => ({
        name: String(c['name']),
        kind: BINARY_TYPES.has(String(c['type']).toLowerCase()) ? 'binary' : c['charset'] != null || String(c['type']).toLowerCase() === 'json' ? 'text' : 'plain',
      }));
    const [count] = await source.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(table)}${where}`);
    expectedRows = Number(count[0]?.['n'] ?? 0);
  } catch (error) {
    await source.query('ROLLBACK').catch(() => undefined);
    if (error instanceof TableCopyError || isAbortError(error)) throw error;
    throw new TableCopyError(`cannot read ${qualified(table)} on the source: ${describeError(error)}`, {
      cause: error,
      hint: opts.where ? 'Check that the table exists at that moment and that the --where condition is valid SQL for it.' : 'Check that the table existed at that moment.',
    });
  }
  logger.info('copying table', { source: `${table.db}.${table.name}`, target: describeTarget(target), expectedRows, ...(opts.where ? { where: opts.where } : {}) });

  const writer = target.kind === 'table' ? await TableWriter.open(target, createTable) : await FileWriter.open(target, createTable);
  const columnList = columns.map((c) => quoteId(c.name)).join(', ');
  const insertHead = `INSERT INTO ${qualified(target.table)} (${columnList}) VALUES\n`;
  let rows = 0;
  let bytes = 0;
  let batch: string[] = [];
  let batchSize = 0;
  let stream: Readable | undefined;
  let removeLostListeners = () => {};
  const onAbort = () => {
    stream?.destroy(new OperationAbortedError());
    // a read blocked in the server ends only when its connection does
    source.destroy();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const flush = async () => {
    if (batch.length === 0) return;
    const sql = `${insertHead}${batch.join(',\n')};\n`;
    const n = batch.length;
    batch = [];
    batchSize = 0;
    await writer.write(sql);
    rows += n;
    bytes += Buffer.byteLength(sql);
    await opts.onProgress?.({ rows, expectedRows, bytes });
  };
  try {
    const select = `SELECT ${columns.map((c, i) => `${quoteId(c.name)} AS c${i}`).join(', ')} FROM ${qualified(table)}${where}`;
    const typeCast = (field: { name: string; string: (encoding?: string) => string | null; buffer: () => Buffer | null }) => {
      const column = columns[Number(field.name.slice(1))];
      return column?.kind === 'binary' ? field.buffer() : field.string('utf8');
    };
    const raw = rawConnection(source);
    stream = raw.query({ sql: select, rowsAsArray: true, typeCast: typeCast as never }).stream({ highWaterMark: 256 });
    // mysql2 3.24 does not fail a paused query stream when its connection drops: the connection
    // emits 'end'/'error' and the stream waits forever. Fail it ourselves.
    const current = stream;
    const onLost = (error?: unknown) =>
      current.destroy(error instanceof Error ? error : new Error('the source server closed the connection during the read'));
    raw.once('end', onLost);
    raw.once('error', onLost);
    removeLostListeners = () => {
      raw.removeListener('end', onLost);
      raw.removeListener('error', onLost);
    };
    for await (const row of stream as AsyncIterable<unknown[]>) {
      const literal = `(${row.map(sqlLiteral).join(',')})`;
      batch.push(literal);
      batchSize += literal.length;
      if (batch.length >= batchRows || batchSize >= batchBytes) await flush();
    }
    await flush();
    throwIfAborted(signal);
    await source.query('COMMIT').catch(() => undefined);
    if (rows !== expectedRows) {
      throw new TableCopyMismatchError(`read ${rows} rows from ${qualified(table)} but the source counted ${expectedRows}`, expectedRows, rows, {
        hint: 'The source changed during the read or returned a short result; run the restore again.',
      });
    }
    const written = await writer.finish(rows);
    if (written !== undefined && written !== rows) {
      throw new TableCopyMismatchError(`${describeTarget(target)} holds ${written} rows but ${rows} were copied`, rows, written, {
        hint: 'Something else wrote to the new table during the copy, or inserts were dropped; check its triggers and run the restore again.',
      });
    }
  } catch (error) {
    await writer.discard(logger);
    if (signal?.aborted || isAbortError(error)) throw new OperationAbortedError(`copy of ${qualified(table)} aborted after ${rows} of ${expectedRows} rows`);
    if (error instanceof TableCopyError) throw error;
    throw new TableCopyError(`copy of ${qualified(table)} failed after ${rows} of ${expectedRows} rows: ${describeError(error)}`, {
      cause: error,
      hint: 'The partial copy was removed and nothing else was changed; check the connection to both servers and run the restore again.',
    });
  } finally {
    signal?.removeEventListener('abort', onAbort);
    removeLostListeners();
  }
  const durationMs = Date.now() - started;
  logger.info('table copied', { target: describeTarget(target), rows, bytes, durationMs });
  return { rows, bytes, columns: columns.map((c) => c.name), createTable, durationMs };
}

export function describeTarget(target: CopyTarget): string {
  return target.kind === 'file' ? `file ${target.path}` : `table ${target.table.db}.${target.table.name}`;
}

/** The callback connection under a mysql2/promise one (streaming needs it). */
function rawConnection(conn: Connection): mysql.Connection {
  const raw = (conn as unknown as { connection?: mysql.Connection }).connection;
  if (!raw) throw new TableCopyError('the source connection cannot stream (not a mysql2/promise connection)');
  return raw;
}

function sqlLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (Buffer.isBuffer(value)) return value.length === 0 ? "''" : `X'${value.toString('hex')}'`;
  return mysql.escape(String(value));
}

/** SHOW CREATE TABLE text for `target`, without foreign keys. */
export function rewriteCreateTable(ddl: string, target: TableRef): string {
  const lines = ddl.split('\n');
  const head = lines[0] ?? '';
  const m = /^CREATE (?:TEMPORARY )?TABLE (`(?:[^`]|``)+`)(?:\.`(?:[^`]|``)+`)? \($/.exec(head);
  if (!m) throw new TableCopyError(`unexpected SHOW CREATE TABLE output: ${head}`);
  const body = lines.slice(1, -1);
  const tail = lines[lines.length - 1] ?? ')';
  const defs = body.filter((l) => !/^\s*CONSTRAINT\s+`(?:[^`]|``)+`\s+FOREIGN KEY\b/i.test(l) && !/^\s*FOREIGN KEY\b/i.test(l)).map((l) => l.replace(/,$/, ''));
  return `CREATE TABLE ${qualified(target)} (\n${defs.join(',\n')}\n${tail}`;
}

interface Writer {
  write(sql: string): Promise<void>;
  /** completes the target; returns the row count found there when it can be checked */
  finish(rows: number): Promise<number | undefined>;
  discard(logger: Logger): Promise<void>;
}

class TableWriter implements Writer {
  private constructor(private readonly target: Extract<CopyTarget, { kind: 'table' }>) {}

  static async open(target: Extract<CopyTarget, { kind: 'table' }>, createTable: string): Promise<TableWriter> {
    try {
      await target.conn.query(SESSION_SQL);
      await target.conn.query(createTable);
    } catch (error) {
      const exists = (error as { errno?: number }).errno === 1050;
      if (exists) {
        throw new RestoreTargetError(`the target table ${qualified(target.table)} already exists; a restore only ever creates a new table`, {
          cause: error,
          hint: 'Choose another name with --into DB.NEW_TABLE, or drop or rename the existing copy first.',
        });
      }
      throw new TableCopyError(`cannot create ${qualified(target.table)} on the target: ${describeError(error)}`, {
        cause: error,
        hint: 'Check that the target user may CREATE and INSERT in that database.',
      });
    }
    return new TableWriter(target);
  }

  async write(sql: string): Promise<void> {
    await this.target.conn.query(sql);
  }

  async finish(): Promise<number> {
    const [rows] = await this.target.conn.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(this.target.table)}`);
    return Number(rows[0]?.['n'] ?? 0);
  }

  async discard(logger: Logger): Promise<void> {
    // only the table this copy created; never anything else
    try {
      await this.target.conn.query(`DROP TABLE IF EXISTS ${qualified(this.target.table)}`);
      logger.warn('removed the partial copy', { table: `${this.target.table.db}.${this.target.table.name}` });
    } catch (error) {
      logger.error('could not remove the partial copy; drop it by hand', { table: `${this.target.table.db}.${this.target.table.name}`, error: describeError(error) });
    }
  }
}

class FileWriter implements Writer {
  private constructor(
    private readonly target: Extract<CopyTarget, { kind: 'file' }>,
    private readonly tmpPath: string,
    private readonly out: WriteStream,
  ) {}

  static async open(target: Extract<CopyTarget, { kind: 'file' }>, createTable: string): Promise<FileWriter> {
    const tmpPath = join(dirname(target.path), `.${basename(target.path)}.${randomBytes(4).toString('hex')}.partial`);
    const out = createWriteStream(tmpPath, { flags: 'wx', mode: 0o600 });
    await once(out, 'open');
    const writer = new FileWriter(target, tmpPath, out);
    await writer.write(
      `-- mysql-archiver table restore\n-- creates ${qualified(target.table)}; never touches an existing table\n` +
        `SET NAMES utf8mb4;\n${SESSION_SQL};\n${createTable};\n`,
    );
    return writer;
  }

  async write(sql: string): Promise<void> {
    if (!this.out.write(sql)) await once(this.out, 'drain');
  }

  async finish(rows: number): Promise<undefined> {
    await this.write(`-- ${rows} rows\n`);
    this.out.end();
    await once(this.out, 'finish');
    // fsync before the rename, so a crash leaves either no file or the whole file
    const fh = await open(this.tmpPath, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (await exists(this.target.path)) throw new RestoreTargetError(`the output file ${this.target.path} appeared during the copy`, { hint: 'Choose another --to-file path.' });
    await rename(this.tmpPath, this.target.path);
    return undefined;
  }

  async discard(): Promise<void> {
    this.out.destroy();
    await rm(this.tmpPath, { force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
