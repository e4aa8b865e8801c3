/**
 * What "equal" means for round-trip tests: per table the SHOW CREATE TABLE text (AUTO_INCREMENT
 * counter removed where asked), the row count and every row, each column as the hex of
 * CAST(col AS BINARY) (exact for DECIMAL, BIT, temporal and spatial values, unlike HEX(col)),
 * sorted. Rows are compared, not CHECKSUM TABLE (see the fixture's header on VIRTUAL columns).
 */
import { createHash } from 'node:crypto';
import type { Connection } from 'mysql2/promise';

export interface TableFingerprint {
  ddl: string;
  rows: number;
  /** sha256 over the sorted hex rows */
  digest: string;
  /** the first differing rows are easier to read than a digest: kept for small tables */
  sample: string[];
}

export async function tableNames(conn: Connection, database: string): Promise<string[]> {
  const [rows] = await conn.query(
    `SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME`,
    [database],
  );
  return (rows as { t: string }[]).map((r) => r.t);
}

export async function fingerprintTable(conn: Connection, database: string, table: string, opts: { ignoreAutoIncrement?: boolean } = {}): Promise<TableFingerprint> {
  const id = `\`${database.replaceAll('`', '``')}\`.\`${table.replaceAll('`', '``')}\``;
  const [createRows] = await conn.query(`SHOW CREATE TABLE ${id}`);
  let ddl = String((createRows as Record<string, unknown>[])[0]?.['Create Table']);
  if (opts.ignoreAutoIncrement) ddl = ddl.replace(/ AUTO_INCREMENT=\d+/, '');
  const [cols] = await conn.query(
    `SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [database, table],
  );
  const exprs = (cols as { c: string }[]).map((c) => `IFNULL(HEX(CAST(\`${c.c.replaceAll('`', '``')}\` AS BINARY)), 'NULL')`);
  const [rows] = await conn.query({ sql: `SELECT CONCAT_WS('|', ${exprs.join(', ')}) AS r FROM ${id}`, rowsAsArray: false });
  const lines = (rows as { r: string }[]).map((r) => r.r).sort();
  const hash = createHash('sha256');
  for (const line of lines) hash.update(line).update('\n');
  return { ddl, rows: lines.length, digest: hash.digest('hex'), sample: lines.length <= 50 ? lines : [] };
}

export async function fingerprintDatabase(conn: Connection, database: string, opts: { ignoreAutoIncrement?: boolean } = {}): Promise<Record<string, TableFingerprint>> {
  const out: Record<string, TableFingerprint> = {};
  for (const table of await tableNames(conn, database)) out[table] = await fingerprintTable(conn, database, table, opts);
  return out;
}
