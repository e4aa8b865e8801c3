/**
 * How each column is read and written back, exactly:
 * - every value is read as the raw bytes of the text protocol with `character_set_results = binary`
 *   (no charset conversion, no JS number/Date parsing), time_zone '+00:00';
 * - integers, DECIMAL, YEAR, DOUBLE: the server's text, which is exact;
 * - FLOAT is read as `col + 0e0` (its exact double value): FLOAT's own text has 6 digits and does not
 *   round-trip (3.4028234e38 prints as 3.40282e38);
 * - BIT, BINARY/VARBINARY/BLOB, spatial: X'hex' (spatial values in the server's internal format);
 * - DATE/DATETIME/TIMESTAMP/TIME: the text, quoted (microseconds and zero dates included);
 * - character columns: utf8/ascii bytes that are valid UTF-8 as an escaped '...' literal; anything else
 *   (latin1, other charsets, invalid bytes) as `_charset X'hex'`, so no conversion can alter it.
 * The output is always valid UTF-8 and each INSERT statement is one line.
 */
import { isUtf8 } from 'node:buffer';
import type { ColumnKind, DumpColumn } from './types.js';
import { escapeChar, qualified, quoteIdent } from './names.js';

const NUM = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'decimal', 'numeric', 'double', 'real', 'year']);
const TEMPORAL = new Set(['date', 'datetime', 'timestamp', 'time']);
const BINARY = new Set([
  'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob',
  'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection',
]);
export const UTF8_CHARSETS = new Set(['utf8mb4', 'utf8mb3', 'utf8', 'ascii']);

export interface ColumnInfoRow {
  name: string;
  dataType: string;
  charset: string | null;
  /** information_schema.COLUMNS.IS_GENERATED / EXTRA */
  generated: boolean;
}

export function columnKind(dataType: string, charset: string | null): ColumnKind {
  const t = dataType.toLowerCase();
  if (t === 'float') return 'float';
  if (NUM.has(t)) return 'num';
  if (t === 'bit') return 'bit';
  if (TEMPORAL.has(t)) return 'temporal';
  if (BINARY.has(t)) return 'binary';
  if ((t === 'char' || t === 'varchar' || t.endsWith('text')) && charset === 'binary') return 'binary';
  return 'text';
}

export function planColumns(rows: readonly ColumnInfoRow[]): DumpColumn[] {
  return rows.map((r) => ({ name: r.name, kind: columnKind(r.dataType, r.charset), charset: r.charset, generated: r.generated }));
}

function selectExpr(c: DumpColumn): string {
  const id = quoteIdent(c.name);
  return c.kind === 'float' ? `(${id} + 0e0)` : id;
}

/** The SELECT used by the dump and by the loader's check: every column, primary-key order when there is one. */
export function selectSql(db: string, table: string, columns: readonly DumpColumn[], primaryKey: readonly string[]): string {
  const order = primaryKey.length > 0 ? ` ORDER BY ${primaryKey.map(quoteIdent).join(', ')}` : '';
  return `SELECT ${columns.map(selectExpr).join(', ')} FROM ${qualified(db, table)}${order}`;
}

/** mysql2 typeCast returning the raw bytes of every field (null for SQL NULL). */
export function rawTypeCast(field: { buffer(): Buffer | null }): Buffer | null {
  return field.buffer();
}

/** `s` as a "binary string" (one char per byte), the representation statements are built in. */
export function bytesOf(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

const ESCAPE_RE = /[\0\n\r\\'\x1a]/g;

/** A SQL literal for one raw value, as a binary string. */
export function literal(c: DumpColumn, v: Buffer | null): string {
  if (v === null) return 'NULL';
  switch (c.kind) {
    case 'num':
    case 'float':
      return v.toString('latin1');
    case 'temporal':
      return "'" + v.toString('latin1') + "'";
    case 'bit':
    case 'binary':
      return "X'" + v.toString('hex') + "'";
    case 'text':
      if ((c.charset === null || UTF8_CHARSETS.has(c.charset)) && isUtf8(v)) {
        return "'" + v.toString('latin1').replace(ESCAPE_RE, escapeChar) + "'";
      }
      return c.charset && /^[a-z0-9_]+$/.test(c.charset) ? `_${c.charset} X'${v.toString('hex')}'` : `X'${v.toString('hex')}'`;
  }
}

/** `INSERT INTO \`t\` (\`a\`,\`b\`) VALUES ` as a binary string; the table is unqualified so a load can rename the database. */
export function insertHead(table: string, columns: readonly DumpColumn[]): string {
  const names = columns.filter((c) => !c.generated).map((c) => quoteIdent(c.name));
  return bytesOf(`INSERT INTO ${quoteIdent(table)} (${names.join(',')}) VALUES `);
}
