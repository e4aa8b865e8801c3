/** What there is to dump: databases, tables and their columns, and the non-table objects. */
import { DumpError, describeError } from '../errors.js';
import { planColumns, type ColumnInfoRow } from './columns.js';
import { rows, text, type DbSession } from './connection.js';
import { qualified, quoteIdent } from './names.js';
import type { DatabaseObjects, DumpColumn, SqlObject } from './types.js';

export const SYSTEM_SCHEMAS = new Set(['information_schema', 'performance_schema', 'mysql', 'sys']);

export interface CatalogTable {
  db: string;
  table: string;
  engine: string | null;
  /** a size estimate, to start the largest tables first */
  bytes: number;
  transactional: boolean;
  systemVersioned: boolean;
}

export interface Catalog {
  databases: string[];
  tables: CatalogTable[];
  /** per database: sequence and view names (dumped as objects, not as data) */
  sequences: Map<string, string[]>;
  views: Map<string, string[]>;
}

export interface Selection {
  /** databases to dump; all but the system schemas when absent */
  databases?: readonly string[];
  /** `db` or `db.table` entries to leave out */
  exclude?: readonly string[];
}

export async function readCatalog(s: DbSession, sel: Selection): Promise<Catalog> {
  const all = (await rows(s, 'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME')).map((r) => text(r['n']));
  const excluded = new Set(sel.exclude ?? []);
  let databases: string[];
  if (sel.databases && sel.databases.length > 0) {
    const missing = sel.databases.filter((d) => !all.includes(d));
    if (missing.length > 0) {
      throw new DumpError(`database${missing.length > 1 ? 's' : ''} not found on the server: ${missing.join(', ')}`, {
        hint: 'Check the databases list of the dump (names are case-sensitive), and that the dump user may see them (SELECT privilege).',
      });
    }
    databases = [...sel.databases];
  } else {
    databases = all.filter((d) => !SYSTEM_SCHEMAS.has(d.toLowerCase()));
  }
  databases = databases.filter((d) => !excluded.has(d));
  const tables: CatalogTable[] = [];
  const sequences = new Map<string, string[]>();
  const views = new Map<string, string[]>();
  for (const db of databases) {
    sequences.set(db, []);
    views.set(db, []);
    const list = await rows(
      s,
      `SELECT TABLE_NAME AS t, TABLE_TYPE AS tt, ENGINE AS e, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) AS b
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`,
      [db],
    );
    for (const r of list) {
      const table = text(r['t']);
      const type = text(r['tt']);
      if (excluded.has(`${db}.${table}`)) continue;
      if (type === 'VIEW') views.get(db)!.push(table);
      else if (type === 'SEQUENCE') sequences.get(db)!.push(table);
      else if (type === 'BASE TABLE' || type === 'SYSTEM VERSIONED') {
        const engine = r['e'] == null ? null : text(r['e']);
        tables.push({
          db,
          table,
          engine,
          bytes: Number(text(r['b'])) || 0,
          transactional: engine !== null && /^(innodb|xtradb|rocksdb|tokudb)$/i.test(engine),
          systemVersioned: type === 'SYSTEM VERSIONED',
        });
      }
    }
  }
  return { databases, tables, sequences, views };
}

export async function readColumns(s: DbSession, db: string, table: string): Promise<DumpColumn[]> {
  const r = await rows(
    s,
    `SELECT COLUMN_NAME AS n, DATA_TYPE AS t, CHARACTER_SET_NAME AS cs, IS_GENERATED AS g, EXTRA AS x
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [db, table],
  );
  const info: ColumnInfoRow[] = r.map((x) => ({
    name: text(x['n']),
    dataType: text(x['t']),
    charset: x['cs'] == null ? null : text(x['cs']),
    generated: text(x['g']) === 'ALWAYS' || /GENERATED|ROW START|ROW END/i.test(text(x['x'])),
  }));
  if (info.length === 0) throw new DumpError(`table ${db}.${table} has no columns visible to the dump user (dropped during the dump?)`);
  return planColumns(info);
}

export async function readPrimaryKey(s: DbSession, db: string, table: string): Promise<string[]> {
  const r = await rows(
    s,
    `SELECT COLUMN_NAME AS n FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
    [db, table],
  );
  return r.map((x) => text(x['n']));
}

export async function showCreateTable(s: DbSession, db: string, table: string): Promise<string> {
  const [r] = await rows(s, `SHOW CREATE TABLE ${qualified(db, table)}`);
  const create = r?.['Create Table'] ?? r?.['Create Sequence'] ?? r?.['Create View'];
  if (create == null) throw new DumpError(`SHOW CREATE TABLE ${db}.${table} returned nothing`);
  return text(create);
}

export async function showCreateDatabase(s: DbSession, db: string): Promise<string> {
  const [r] = await rows(s, `SHOW CREATE DATABASE ${quoteIdent(db)}`);
  return text(r?.['Create Database']);
}

function sqlObject(name: string, r: Record<string, unknown> | undefined, createField: string, what: string): SqlObject {
  const create = r?.[createField];
  if (create == null) {
    throw new DumpError(`cannot read the definition of ${what} (no privilege?)`, {
      hint: 'Grant the dump user SELECT on mysql.proc (routines), SHOW VIEW (views), TRIGGER and EVENT, or exclude the database.',
    });
  }
  return {
    name,
    create: text(create),
    sqlMode: text(r?.['sql_mode']),
    characterSetClient: text(r?.['character_set_client']) || 'utf8mb4',
    collationConnection: text(r?.['collation_connection']) || 'utf8mb4_general_ci',
  };
}

/** Sequences (with the snapshot's next value), views, routines, triggers and events of one database. */
export async function readObjects(s: DbSession, db: string, catalog: Catalog, warnings: string[]): Promise<DatabaseObjects> {
  const out: DatabaseObjects = { sequences: [], views: [], routines: [], triggers: [], events: [] };
  const q = (name: string) => qualified(db, name);
  for (const name of catalog.sequences.get(db) ?? []) {
    const [c] = await rows(s, `SHOW CREATE SEQUENCE ${q(name)}`);
    const [v] = await rows(s, `SELECT next_not_cached_value AS n FROM ${q(name)}`);
    out.sequences.push({ name, create: text(c?.['Create Table']), nextValue: text(v?.['n']) });
  }
  for (const name of catalog.views.get(db) ?? []) {
    const [r] = await rows(s, `SHOW CREATE VIEW ${q(name)}`);
    out.views.push({ ...sqlObject(name, r, 'Create View', `view ${db}.${name}`), sqlMode: '' });
  }
  const routines = await rows(
    s,
    `SELECT ROUTINE_NAME AS n, ROUTINE_TYPE AS t FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME`,
    [db],
  );
  for (const r of routines) {
    const name = text(r['n']);
    const type = text(r['t']) === 'FUNCTION' ? 'FUNCTION' : 'PROCEDURE';
    if (type !== 'FUNCTION' && text(r['t']) !== 'PROCEDURE') {
      warnings.push(`${db}.${name}: routine type ${text(r['t'])} is not dumped`);
      continue;
    }
    const [c] = await rows(s, `SHOW CREATE ${type} ${q(name)}`);
    out.routines.push({ type, ...sqlObject(name, c, type === 'FUNCTION' ? 'Create Function' : 'Create Procedure', `${type.toLowerCase()} ${db}.${name}`) });
  }
  const triggers = await rows(
    s,
    `SELECT TRIGGER_NAME AS n, EVENT_OBJECT_TABLE AS t FROM information_schema.TRIGGERS
      WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER`,
    [db],
  );
  for (const r of triggers) {
    const name = text(r['n']);
    const [c] = await rows(s, `SHOW CREATE TRIGGER ${q(name)}`);
    out.triggers.push({ table: text(r['t']), ...sqlObject(name, c, 'SQL Original Statement', `trigger ${db}.${name}`) });
  }
  let events: Record<string, unknown>[] = [];
  try {
    events = await rows(s, 'SELECT EVENT_NAME AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME', [db]);
  } catch (error) {
    warnings.push(`${db}: events not dumped: ${describeError(error)}`);
  }
  for (const r of events) {
    const name = text(r['n']);
    const [c] = await rows(s, `SHOW CREATE EVENT ${q(name)}`);
    out.events.push({ timeZone: text(c?.['time_zone']) || 'SYSTEM', ...sqlObject(name, c, 'Create Event', `event ${db}.${name}`) });
  }
  return out;
}
