/**
 * `--replace`: puts a restored table's rows into the live table, after the operator confirmed.
 *
 * Not a RENAME: the restored table exists only on this server (it was built outside the binlog),
 * so a replicated RENAME would stop every replica. Instead, in one transaction with row-based
 * logging, the live table's rows are deleted and the restored rows inserted; replicas receive
 * plain row events for the live table. Before that, the live rows are copied into
 * `TABLE__before_replace_<when>` (also replicated), so the replace can be undone by hand. Foreign
 * key checks are off for the swap, so deleting parent rows cascades nothing (the same keys come
 * back); triggers on the live table do fire, as for any write.
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { connectSource } from '../db/connect.js';
import { RestoreError, describeError } from '../errors.js';
import type { DbLogin } from './rds/restore-table.js';
import { isGeneratedColumn, qualified as q, quoteId, type TableRef } from './table-copy/index.js';

export interface ReplaceResult {
  /** where the live rows were kept */
  readonly backup: TableRef;
  readonly rows: number;
}

export async function replaceLiveTable(login: DbLogin, live: TableRef, restored: TableRef, suffix: string): Promise<ReplaceResult> {
  const conn = await connectSource({ ...login, serverId: 0 });
  try {
    const backup = await freeName(conn, live.db, `${live.name}__before_replace_${suffix}`);
    try {
      // row events for the live table only: a statement naming the restored table must not reach replicas
      await conn.query("SET SESSION binlog_format = 'ROW', foreign_key_checks = 0");
      // an AUTO_INCREMENT column holding 0 keeps its 0 (otherwise the insert would number the row anew)
      await conn.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')");
    } catch (error) {
      throw new RestoreError(`--replace cannot switch the session to row-based logging: ${describeError(error)}`, {
        hint: 'Give the restore login BINLOG ADMIN (or SUPER), or swap the tables yourself from the restored copy.',
      });
    }
    const columns = await insertableColumns(conn, live);
    const list = columns.map(quoteId).join(', ');
    await conn.query(`CREATE TABLE ${q(backup)} LIKE ${q(live)}`);
    await conn.query(`INSERT INTO ${q(backup)} (${list}) SELECT ${list} FROM ${q(live)}`);
    await conn.query('START TRANSACTION');
    try {
      await conn.query(`DELETE FROM ${q(live)}`);
      await conn.query(`INSERT INTO ${q(live)} (${list}) SELECT ${list} FROM ${q(restored)}`);
      await conn.query('COMMIT');
    } catch (error) {
      await conn.query('ROLLBACK').catch(() => undefined);
      throw new RestoreError(`replacing ${live.db}.${live.name} failed, nothing was changed in it: ${describeError(error)}`, {
        hint: `The restored rows are in ${restored.db}.${restored.name} and the live rows were copied to ${backup.db}.${backup.name}; swap by hand if needed.`,
      });
    }
    const [count] = await conn.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${q(live)}`);
    // the restored copy was never in the binlog: dropping it must not be either
    await conn.query('SET SESSION sql_log_bin = 0');
    await conn.query(`DROP TABLE ${q(restored)}`);
    return { backup, rows: Number(count[0]?.['n']) };
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

/** NAME, or NAME_2, NAME_3 ... when a replace in the same second already took it (64 characters at most). */
async function freeName(conn: Connection, db: string, name: string): Promise<TableRef> {
  for (let i = 1; ; i++) {
    const tail = i === 1 ? '' : `_${i}`;
    const candidate = name.slice(0, 64 - tail.length) + tail;
    const [rows] = await conn.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [db, candidate]);
    if (rows.length === 0) return { db, name: candidate };
  }
}

/** Columns a row can be inserted with (generated columns are recomputed by the server). */
async function insertableColumns(conn: Connection, t: TableRef): Promise<string[]> {
  const [rows] = await conn.query<RowDataPacket[]>(
    'SELECT COLUMN_NAME AS name, IS_GENERATED AS generated, EXTRA AS extra FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [t.db, t.name],
  );
  return rows.filter((c) => !isGeneratedColumn(c)).map((c) => String(c['name']));
}
