/**
 * The dump format, version 1. A dump lives under `dumps/<tier>/<dumpId>/` and is complete only when
 * its `dump.json` (a {@link DumpManifest}) exists; it is written last.
 *
 *   <db>/db.sql                 CREATE DATABASE
 *   <db>/objects.json           sequences, views, routines, triggers, events (see {@link DatabaseObjects})
 *   <db>/<table>.schema.sql     SHOW CREATE TABLE (with its AUTO_INCREMENT counter)
 *   <db>/<table>.<nnnnn>.sql.gz data: one multi-row INSERT per line, chunked by uncompressed bytes
 *   dump.json
 *
 * Names in keys are percent-encoded (see `keyName`); keys in the manifest are relative to the dump's
 * prefix, so a dump can be copied to another storage or prefix as is.
 */
import type { ChecksumAlgorithm } from './checksum.js';

export const DUMP_FORMAT_VERSION = 1;
export const DUMP_MANIFEST_NAME = 'dump.json';
export const DEFAULT_DUMPS_ROOT = 'dumps';

export type SnapshotMode = 'backup-stage' | 'ftwrl' | 'single' | 'rds';
export type DumpCompression = 'gzip' | 'zstd';

/** How a value is read and written back; recorded so that the loader checksums with the same expressions. */
export type ColumnKind = 'num' | 'float' | 'bit' | 'temporal' | 'binary' | 'text';

export interface DumpColumn {
  name: string;
  kind: ColumnKind;
  /** the column's character set (text kinds), used for `_charset X'..'` literals */
  charset: string | null;
  /** generated (VIRTUAL/STORED/ROW START/END) columns are checksummed but never inserted */
  generated: boolean;
}

export interface BinlogCoordinates {
  file: string;
  position: number;
  /** MariaDB GTID position (`0-1-42`) or MySQL gtid_executed; null when the server has none */
  gtid: string | null;
  /**
   * true when the position is bound to the data snapshot (taken under the lock, or MariaDB's
   * binlog_snapshot_* status); false for a best-effort position (MySQL without a lock)
   */
  exact: boolean;
}

export interface DumpFileRecord {
  /** relative to the dump's prefix */
  key: string;
  size: number;
  sha256: string;
}

export interface DumpTableRecord {
  db: string;
  table: string;
  engine: string | null;
  rows: number;
  /** `<checksumAlgorithm>:<hex>`, see src/dump/checksum.ts */
  checksum: string;
  /**
   * true when the rows are those of the snapshot: InnoDB tables always; non-transactional tables
   * (MyISAM, Aria, ...) only when read while the lock was held (modes backup-stage and ftwrl)
   */
  pointInTime: boolean;
  columns: DumpColumn[];
  primaryKey: string[];
  schemaFile: string;
  /** data chunks in load order */
  files: string[];
  /** uncompressed SQL bytes */
  sqlBytes: number;
  durationMs: number;
}

export interface DumpObjectNames {
  sequences: string[];
  views: string[];
  procedures: string[];
  functions: string[];
  triggers: string[];
  events: string[];
}

export interface DumpDatabaseRecord {
  name: string;
  schemaFile: string;
  objectsFile: string;
  tables: string[];
  objects: DumpObjectNames;
}

export interface DumpManifest {
  format: typeof DUMP_FORMAT_VERSION;
  tool: 'mysql-archiver';
  dumpId: string;
  tier: string;
  /** where it was written (e.g. `dumps/daily/20260101T060000Z-ab12`); informative, keys are relative */
  prefix: string;
  startedAt: string;
  finishedAt: string;
  mode: SnapshotMode;
  snapshot: {
    coordinates: BinlogCoordinates | null;
    /** how long writes (or commits) were blocked, lock modes only */
    lockHeldMs: number | null;
    /** number of connections that shared the snapshot */
    connections: number;
  };
  server: { version: string; serverId: string; hostname: string | null };
  compression: DumpCompression;
  chunkBytes: number;
  /** how the tables' checksums were computed: see src/dump/checksum.ts */
  checksumAlgorithm: ChecksumAlgorithm;
  /** session settings the data files assume (each data file also starts with them) */
  session: { timeZone: '+00:00'; sqlMode: string; charset: 'utf8mb4' };
  databases: DumpDatabaseRecord[];
  tables: DumpTableRecord[];
  files: DumpFileRecord[];
  /** anything a restore should know: non point-in-time tables, skipped objects, best-effort positions */
  warnings: string[];
}

export interface SequenceObject {
  name: string;
  create: string;
  /** next_not_cached_value at the snapshot: SETVAL(seq, this, 0) makes NEXTVAL continue without reuse */
  nextValue: string;
}

export interface SqlObject {
  name: string;
  create: string;
  sqlMode: string;
  characterSetClient: string;
  collationConnection: string;
}

export interface DatabaseObjects {
  sequences: SequenceObject[];
  views: SqlObject[];
  routines: (SqlObject & { type: 'PROCEDURE' | 'FUNCTION' })[];
  /** in creation order (per table, timing and ACTION_ORDER) */
  triggers: (SqlObject & { table: string })[];
  events: (SqlObject & { timeZone: string })[];
}

/** Minimal logger; a winston Logger fits. */
export interface DumpLogger {
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  debug(message: string, meta?: Record<string, unknown>): unknown;
}

export const silentDumpLogger: DumpLogger = { info: () => undefined, warn: () => undefined, debug: () => undefined };

/** sql_mode of dump and load sessions: zero dates allowed, explicit 0 kept in AUTO_INCREMENT columns */
export const DUMP_SQL_MODE = 'NO_AUTO_VALUE_ON_ZERO';
