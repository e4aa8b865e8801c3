/**
 * loadDump: a whole dump, or chosen databases/tables (optionally under another database name), into
 * a target server, checked against dump.json.
 *
 * - Every file is checked against its dump.json record (size + sha256) while it streams. A data
 *   chunk is loaded inside one transaction that commits only once the file's bytes checked out, so
 *   a damaged chunk leaves no rows behind in InnoDB tables (non-transactional engines keep what
 *   was inserted before the damage was found); the error names the file.
 * - Order: CREATE DATABASE → sequences → CREATE TABLE (foreign_key_checks = 0) → data in parallel
 *   (foreign_key_checks = 0, unique_checks = 0 per session) → sequence values → functions and
 *   procedures → views (retried until their dependencies exist) → triggers → events.
 * - Then every loaded table is read back with the dump's own SELECT and checksum (rowsum-sha256-v1,
 *   src/dump/checksum.ts); a row-count or checksum difference is a DumpMismatchError.
 * - With renameDatabase, `old`. qualifiers inside view, routine, trigger and event bodies are
 *   rewritten to `new`. (textual, best effort); table DDL and data are unqualified.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DumpError, DumpIntegrityError, DumpMismatchError, describeError, isAbortError, throwIfAborted } from '../errors.js';
import { hashFile, type FileFacts } from '../fs/hash-file.js';
import { ByteCounter } from '../storage/byte-counter.js';
import type { Storage } from '../storage/storage.js';
import { isChecksumAlgorithm, type ChecksumAlgorithm, type RowChecksum } from './checksum.js';
import { RowBatches } from './row-workers.js';
import { queryRowPackets } from './row-packets.js';
import { compressionOfKey, decompressFile, decompressor } from './codec.js';
import { selectSql } from './columns.js';
import { openSession, type DbSession, type DumpConnectionOptions } from './connection.js';
import { qualified, quoteIdent } from './names.js';
import { USERS_FILE } from './users.js';
import { ChunkQueue } from './chunk-queue.js';
import { deferSecondaryKeys } from './deferred-keys.js';
import { RAW_QUERY_MAX, RAW_QUERY_OFFSET, rawQuery } from './raw-query.js';
import {
  DUMP_FORMAT_VERSION,
  DUMP_MANIFEST_NAME,
  DUMP_SQL_MODE,
  silentDumpLogger,
  type DatabaseObjects,
  type DumpCompression,
  type DumpFileRecord,
  type DumpLogger,
  type DumpManifest,
  type DumpTableRecord,
  type SqlObject,
} from './types.js';

export type TableSelector = string | { db: string; table?: string };

export interface LoadDumpOptions {
  storage: Storage;
  /** the dump's prefix (`dumps/daily/<dumpId>`); or give `manifest` (its `prefix` is used unless dumpPrefix is set) */
  dumpPrefix?: string;
  manifest?: DumpManifest;
  target: DumpConnectionOptions;
  /** `db` (whole database, with its objects) or `db.table` entries; everything when absent */
  tables?: readonly TableSelector[];
  /** a new name for the (single) loaded database, or a map old → new */
  renameDatabase?: string | Readonly<Record<string, string>>;
  /** tables loaded at once; default 2 */
  concurrency?: number;
  /** load views, routines, triggers, events and sequences; default true */
  objects?: boolean;
  /** read every loaded table back and compare with dump.json; default true */
  verify?: boolean;
  /** keep the load out of the target's binlog (scratch copies on a live server; needs BINLOG ADMIN or SUPER) */
  skipBinlog?: boolean;
  /**
   * build plain secondary keys of InnoDB tables after their rows (deferred-keys.ts); default true.
   * Measured on 8 x 250k sysbench rows (3 GiB buffer pool, the keys fit in memory): 20.7 s
   * deferred, 23.7 s with the keys in place.
   */
  deferKeys?: boolean;
  /** also create the dump's users with their grants (users.sql), when it has them */
  users?: boolean;
  logger?: DumpLogger;
  signal?: AbortSignal;
}

export interface LoadedTable {
  db: string;
  table: string;
  targetDb: string;
  rows: number;
  checksum: string | null;
  expectedRows: number;
  expectedChecksum: string;
  /** null when not verified */
  ok: boolean | null;
  files: number;
  bytes: number;
  durationMs: number;
}

export interface LoadReport {
  dumpId: string;
  prefix: string;
  tables: LoadedTable[];
  objects: { sequences: number; views: number; routines: number; triggers: number; events: number };
  bytesRead: number;
  durationMs: number;
  /** accounts created from users.sql */
  users?: number;
}

export async function readDumpManifest(storage: Storage, prefix: string, signal?: AbortSignal): Promise<DumpManifest> {
  const key = `${prefix}/${DUMP_MANIFEST_NAME}`;
  const body = await readAll(await storage.get(key, { signal }));
  let manifest: DumpManifest;
  try {
    manifest = JSON.parse(body.toString('utf8')) as DumpManifest;
  } catch (error) {
    throw new DumpIntegrityError(key, `${storage.name}: ${key} is not valid JSON`, { cause: error });
  }
  if (manifest.format !== DUMP_FORMAT_VERSION || manifest.tool !== 'mysql-archiver' || !Array.isArray(manifest.files)) {
    throw new DumpError(`${storage.name}: ${key} is not a dump manifest of format ${DUMP_FORMAT_VERSION}`, {
      hint: 'Load it with the version of mysql-archiver that wrote it.',
    });
  }
  if (!isChecksumAlgorithm(manifest.checksumAlgorithm)) {
    throw new DumpError(`${storage.name}: ${key} uses table checksum ${JSON.stringify(manifest.checksumAlgorithm)}, which this version does not know`, {
      hint: 'Load it with the version of mysql-archiver that wrote it (or a newer one).',
    });
  }
  return manifest;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

interface Plan {
  tables: DumpTableRecord[];
  /** databases loaded whole (with objects) */
  wholeDbs: Set<string>;
  targetOf(db: string): string;
}

function plan(manifest: DumpManifest, o: LoadDumpOptions): Plan {
  const dbs = new Set(manifest.databases.map((d) => d.name));
  let tables: DumpTableRecord[];
  const wholeDbs = new Set<string>();
  if (!o.tables || o.tables.length === 0) {
    tables = manifest.tables;
    for (const d of dbs) wholeDbs.add(d);
  } else {
    const chosen = new Set<DumpTableRecord>();
    for (const sel of o.tables) {
      const { db, table } = typeof sel === 'string' ? parseSelector(sel, dbs) : sel;
      if (!dbs.has(db)) throw new DumpError(`database ${db} is not in dump ${manifest.dumpId}`, { hint: `It holds: ${[...dbs].join(', ')}.` });
      const found = manifest.tables.filter((t) => t.db === db && (table === undefined || t.table === table));
      if (table !== undefined && found.length === 0) throw new DumpError(`table ${db}.${table} is not in dump ${manifest.dumpId}`);
      if (table === undefined) wholeDbs.add(db);
      for (const t of found) chosen.add(t);
    }
    tables = manifest.tables.filter((t) => chosen.has(t));
  }
  const involved = new Set([...tables.map((t) => t.db), ...wholeDbs]);
  const rename = o.renameDatabase;
  let map: Record<string, string> = {};
  if (typeof rename === 'string') {
    if (involved.size !== 1) throw new DumpError(`renameDatabase as a single name needs exactly one database, this load has ${involved.size}`, { hint: 'Pass a map { old: new } instead.' });
    map = { [[...involved][0]!]: rename };
  } else if (rename) map = { ...rename };
  return { tables, wholeDbs, targetOf: (db) => map[db] ?? db };
}

function parseSelector(sel: string, dbs: Set<string>): { db: string; table?: string } {
  if (dbs.has(sel)) return { db: sel };
  const dot = sel.indexOf('.');
  if (dot < 0) return { db: sel };
  return { db: sel.slice(0, dot), table: sel.slice(dot + 1) };
}

export async function loadDump(o: LoadDumpOptions): Promise<LoadReport> {
  const started = performance.now();
  const logger = o.logger ?? silentDumpLogger;
  const prefix = o.dumpPrefix ?? o.manifest?.prefix;
  if (!prefix) throw new DumpError('loadDump needs dumpPrefix or manifest');
  const manifest = o.manifest ?? (await readDumpManifest(o.storage, prefix, o.signal));
  const files = new Map<string, DumpFileRecord>(manifest.files.map((f) => [f.key, f]));
  const p = plan(manifest, o);
  const concurrency = Math.max(1, Math.floor(o.concurrency ?? 2));
  const withObjects = o.objects !== false;
  let bytesRead = 0;
  const record = (key: string): DumpFileRecord => {
    const f = files.get(key);
    if (!f) throw new DumpIntegrityError(key, `${key} is used by dump ${manifest.dumpId} but not listed in its dump.json`);
    return f;
  };
  const readSmall = async (key: string): Promise<Buffer> => {
    const f = record(key);
    const body = await readAll(await o.storage.get(`${prefix}/${key}`, { signal: o.signal }));
    const sha = createHash('sha256').update(body).digest('hex');
    bytesRead += body.length;
    if (body.length !== f.size || sha !== f.sha256) throw integrity(o.storage, prefix, f, body.length, sha);
    return body;
  };
  logger.info('load started', { dumpId: manifest.dumpId, tables: p.tables.length, target: o.target.socketPath ?? `${o.target.host}:${o.target.port}` });

  const sessions: DbSession[] = [];
  const report: LoadReport = {
    dumpId: manifest.dumpId,
    prefix,
    tables: [],
    objects: { sequences: 0, views: 0, routines: 0, triggers: 0, events: 0 },
    bytesRead: 0,
    durationMs: 0,
  };
  try {
    for (let i = 0; i < concurrency; i++) {
      const s = await openSession(o.target);
      sessions.push(s);
      await s.q.query(`SET SESSION foreign_key_checks = 0, unique_checks = 0${o.skipBinlog ? ', sql_log_bin = 0' : ''}`);
    }
    const main = sessions[0]!;
    // databases, sequences, tables
    const dbsInvolved = manifest.databases.filter((d) => p.wholeDbs.has(d.name) || p.tables.some((t) => t.db === d.name));
    const objectsOf = new Map<string, DatabaseObjects>();
    for (const d of dbsInvolved) {
      const target = p.targetOf(d.name);
      const create = (await readSmall(d.schemaFile)).toString('utf8').trim().replace(/;$/, '');
      const head = `CREATE DATABASE ${quoteIdent(d.name)}`;
      const sql = create.startsWith(head) ? `CREATE DATABASE IF NOT EXISTS ${quoteIdent(target)}${create.slice(head.length)}` : `CREATE DATABASE IF NOT EXISTS ${quoteIdent(target)}`;
      await exec(main, sql, `creating database ${target}`);
      objectsOf.set(d.name, JSON.parse((await readSmall(d.objectsFile)).toString('utf8')) as DatabaseObjects);
      if (withObjects && p.wholeDbs.has(d.name)) {
        for (const seq of objectsOf.get(d.name)!.sequences) {
          await exec(main, `USE ${quoteIdent(target)}`, '');
          await exec(main, seq.create, `creating sequence ${target}.${seq.name}`);
          report.objects.sequences++;
        }
      }
    }
    /** secondary keys added once the table's rows are in */
    const deferred = new Map<DumpTableRecord, string[]>();
    for (const t of p.tables) {
      const target = p.targetOf(t.db);
      const dumped = (await readSmall(t.schemaFile)).toString('utf8').trim().replace(/;$/, '');
      const d = t.files.length > 0 && o.deferKeys !== false ? deferSecondaryKeys(dumped, t.engine) : { create: dumped, adds: [] };
      if (d.adds.length > 0) deferred.set(t, d.adds);
      await exec(main, `USE ${quoteIdent(target)}`, '');
      await exec(main, d.create, `creating table ${target}.${t.table}`, 'Load into a database without this table, or rename the database (renameDatabase).');
    }
    // data: every chunk file is a work item (chunk-queue.ts)
    const queue = new ChunkQueue(p.tables);
    const loaded = new Map<DumpTableRecord, LoadedTable>(
      p.tables.map((t) => [
        t,
        { db: t.db, table: t.table, targetDb: p.targetOf(t.db), rows: -1, checksum: null, expectedRows: t.rows, expectedChecksum: t.checksum, ok: null, files: t.files.length, bytes: 0, durationMs: 0 },
      ]),
    );
    const left = new Map(p.tables.map((t) => [t, t.files.length]));
    let failed: unknown;
    await Promise.all(
      sessions.map(async (s) => {
        let usedDb: string | undefined;
        for (let item = queue.take(); item && failed === undefined; item = queue.take()) {
          // the table counts as loading from taking the file until its rows are in
          let loading = true;
          const rowsIn = () => {
            if (loading) queue.loaded(item!.table);
            loading = false;
          };
          try {
            throwIfAborted(o.signal);
            const { table: t, key } = item;
            const t0 = performance.now();
            const target = p.targetOf(t.db);
            if (usedDb !== target) await exec(s, `USE ${quoteIdent(target)}`, '');
            usedDb = target;
            const bytes = await loadFile(s, o.storage, prefix, record(key), `${target}.${t.table}`, o.signal);
            rowsIn();
            bytesRead += bytes;
            const r = loaded.get(t) as LoadedTable;
            r.bytes += bytes;
            // session time spent on the table (chunks loaded in parallel add up)
            r.durationMs += Math.round(performance.now() - t0);
            logger.debug('chunk loaded', { db: target, table: t.table, key });
            const chunksLeft = (left.get(t) ?? 1) - 1;
            left.set(t, chunksLeft);
            if (chunksLeft === 0) {
              const adds = deferred.get(t);
              if (adds) await exec(s, `ALTER TABLE ${quoteIdent(target)}.${quoteIdent(t.table)} ${adds.join(', ')}`, `adding the secondary keys of ${target}.${t.table}`);
              // checked as soon as its last chunk is in, while the other sessions go on loading
              if (o.verify !== false) await verifyTable(s, r, t, manifest.checksumAlgorithm);
            }
          } catch (error) {
            failed ??= error;
          } finally {
            rowsIn();
          }
        }
      }),
    );
    if (failed !== undefined) throw failed;
    // objects
    if (withObjects) {
      for (const d of dbsInvolved) {
        const objs = objectsOf.get(d.name)!;
        const target = p.targetOf(d.name);
        const rw = (sql: string) => (target === d.name ? sql : sql.replaceAll(`${quoteIdent(d.name)}.`, `${quoteIdent(target)}.`));
        const whole = p.wholeDbs.has(d.name);
        await exec(main, `USE ${quoteIdent(target)}`, '');
        if (whole) {
          for (const seq of objs.sequences) {
            await exec(main, `SELECT SETVAL(${qualified(target, seq.name)}, ${BigInt(seq.nextValue).toString()}, 0)`, `setting sequence ${target}.${seq.name}`);
          }
          for (const r of objs.routines) {
            await execObject(main, r, rw(r.create), `creating ${r.type.toLowerCase()} ${target}.${r.name}`);
            report.objects.routines++;
          }
          let pending = [...objs.views];
          while (pending.length > 0) {
            const failedViews: { v: SqlObject; error: unknown }[] = [];
            for (const v of pending) {
              try {
                await execObject(main, v, rw(v.create), `creating view ${target}.${v.name}`);
                report.objects.views++;
              } catch (error) {
                failedViews.push({ v, error });
              }
            }
            if (failedViews.length === pending.length) throw failedViews[0]!.error;
            pending = failedViews.map((x) => x.v);
          }
        }
        const tablesHere = new Set(p.tables.filter((t) => t.db === d.name).map((t) => t.table));
        for (const tr of objs.triggers) {
          if (!tablesHere.has(tr.table)) continue;
          await execObject(main, tr, rw(tr.create), `creating trigger ${target}.${tr.name}`);
          report.objects.triggers++;
        }
        if (whole) {
          for (const ev of objs.events) {
            await main.q.query('SET SESSION time_zone = ?', [ev.timeZone]);
            try {
              await execObject(main, ev, rw(ev.create), `creating event ${target}.${ev.name}`);
            } finally {
              await main.q.query("SET SESSION time_zone = '+00:00'");
            }
            report.objects.events++;
          }
        }
      }
    }
    // verification
    const results = p.tables.map((t) => loaded.get(t)!);
    if (o.verify !== false) {
      // tables without data files (the others were checked as they finished loading)
      const vq = p.tables.filter((t) => loaded.get(t)!.ok === null);
      await Promise.all(
        sessions.map(async (s) => {
          for (let t = vq.shift(); t; t = vq.shift()) await verifyTable(s, loaded.get(t)!, t, manifest.checksumAlgorithm);
        }),
      );
    }
    if (o.users && files.has(USERS_FILE)) {
      // one statement a line, as users.ts writes them; existing accounts are kept as they are
      const sql = (await readSmall(USERS_FILE)).toString('utf8');
      for (const statement of sql.split('\n').filter((l) => l.trim() !== '')) await exec(sessions[0]!, statement, 'restoring users and grants');
      report.users = sql.split('\n').filter((l) => l.startsWith('CREATE USER')).length;
    }
    report.tables = results;
    report.bytesRead = bytesRead;
    report.durationMs = Math.round(performance.now() - started);
    const bad = results.filter((r) => r.ok === false);
    if (bad.length > 0) {
      throw new DumpMismatchError(
        `${bad.length} loaded table(s) differ from dump ${manifest.dumpId}: ${bad
          .map((b) => `${b.targetDb}.${b.table} (rows ${b.rows}, expected ${b.expectedRows}${b.checksum !== b.expectedChecksum ? ', checksum differs' : ''})`)
          .join('; ')}`,
        bad.map((b) => ({ db: b.targetDb, table: b.table, expected: { rows: b.expectedRows, checksum: b.expectedChecksum }, actual: { rows: b.rows, checksum: b.checksum ?? '' } })),
      );
    }
    logger.info('load finished', { dumpId: manifest.dumpId, tables: results.length, bytesRead, ms: report.durationMs });
    return report;
  } finally {
    await Promise.all(sessions.map((s) => s.end()));
  }
}

/** Reads a loaded table with the dump's SELECT and checksums it the same way. */
async function verifyTable(s: DbSession, r: LoadedTable, t: DumpTableRecord, algorithm: ChecksumAlgorithm): Promise<void> {
  const sum = await checksumTable(s, r.targetDb, t, algorithm);
  r.rows = sum.rows;
  r.checksum = sum.digest();
  r.ok = r.rows === t.rows && r.checksum === t.checksum;
}

/** Reads a table with the dump's SELECT and sums it with `algorithm` (the dump's checksumAlgorithm). */
export async function checksumTable(s: DbSession, db: string, t: Pick<DumpTableRecord, 'table' | 'columns' | 'primaryKey'>, algorithm: ChecksumAlgorithm): Promise<RowChecksum> {
  const sum = new RowBatches(t.columns.length, algorithm);
  await s.q.query('SET SESSION character_set_results = binary');
  try {
    await queryRowPackets(s, selectSql(db, t.table, t.columns, t.primaryKey), {
      row: (b, start, end) => sum.add(b, start, end),
      whenReady: (go, fail) => sum.drained().then(go, fail),
    });
  } finally {
    await s.q.query('SET SESSION character_set_results = utf8mb4').catch(() => undefined);
  }
  return await sum.finish();
}

function integrity(storage: Storage, prefix: string, f: DumpFileRecord, size: number, sha256: string): DumpIntegrityError {
  return new DumpIntegrityError(
    f.key,
    `${storage.name}: ${prefix}/${f.key} does not match dump.json: ${size} bytes sha256 ${sha256}, recorded ${f.size} bytes sha256 ${f.sha256}`,
    { hint: 'The file was changed or damaged after the dump was written: load an older dump, or the same dump from another tier.' },
  );
}

async function exec(s: DbSession, sql: string, what: string, hint?: string): Promise<void> {
  try {
    await s.q.query(sql);
  } catch (error) {
    if (!what) throw error;
    throw new DumpError(`${what} failed: ${describeError(error)}`, { cause: error, hint });
  }
}

async function execObject(s: DbSession, obj: SqlObject, sql: string, what: string): Promise<void> {
  const utf8Client = /^utf8/.test(obj.characterSetClient);
  await s.q.query(`SET SESSION sql_mode = ?, collation_connection = ?${utf8Client ? ', character_set_client = ?' : ''}`, [
    obj.sqlMode,
    obj.collationConnection,
    ...(utf8Client ? [obj.characterSetClient] : []),
  ]);
  try {
    await exec(s, sql, what);
  } finally {
    await s.q.query('SET NAMES utf8mb4').catch(() => undefined);
    await s.q.query(`SET SESSION sql_mode = '${DUMP_SQL_MODE}'`).catch(() => undefined);
  }
}

/**
 * The statements (lines, without the newline) of a byte stream, each copied into `packet.buffer`
 * from RAW_QUERY_OFFSET (the buffer grows when one does not fit); yields each one's length. The
 * bytes stay valid until the generator resumes.
 */
async function* statements(source: AsyncIterable<Buffer>, packet: { buffer: Buffer }): AsyncGenerator<number> {
  let len = 0;
  const append = (piece: Buffer) => {
    const need = RAW_QUERY_OFFSET + len + piece.length;
    if (need > packet.buffer.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(need, 2 * packet.buffer.length));
      packet.buffer.copy(bigger, 0, 0, RAW_QUERY_OFFSET + len);
      packet.buffer = bigger;
    }
    piece.copy(packet.buffer, RAW_QUERY_OFFSET + len);
    len += piece.length;
  };
  for await (const chunk of source) {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
      append(chunk.subarray(start, nl));
      yield len;
      len = 0;
      start = nl + 1;
    }
    if (start < chunk.length) append(chunk.subarray(start));
  }
  if (len > 0) yield len;
}

/**
 * A data file, decompressed: its statements in `output`, and in `read` its size and sha256 once
 * all of it was read. A local file is opened once, decompressed from its start (zstd reads it
 * itself) and hashed in the hash worker with positioned reads of the same open file (so both see
 * one file even if the key were replaced meanwhile); anything else streams through here.
 */
async function openDataFile(storage: Storage, full: string, compression: DumpCompression, signal?: AbortSignal): Promise<{ output: Readable; read: Promise<FileFacts>; abort(): void }> {
  const input = await storage.get(full, { signal });
  let file: { output: Readable; read: Promise<FileFacts>; abort(): void };
  if (input.filePath !== undefined) {
    input.destroy();
    const handle = await open(input.filePath, 'r');
    let codec: ReturnType<typeof decompressFile>;
    try {
      codec = decompressFile(compression, handle.fd);
    } catch (error) {
      await handle.close();
      throw error;
    }
    const hashed = hashFile(handle.fd);
    const read = Promise.all([hashed, codec.done])
      .then(([facts]) => facts)
      // the hash must be done with the descriptor before it closes, whatever zstd did
      .finally(() => hashed.catch(() => undefined).then(() => handle.close()));
    file = { output: codec.output, read, abort: () => codec.output.destroy() };
  } else {
    const counter = new ByteCounter();
    const codec = decompressor(compression);
    const feed = pipeline(input, counter, codec.input, { signal });
    const read = Promise.all([feed, codec.done]).then(() => ({ size: counter.size, sha256: counter.sha256 }));
    file = {
      output: codec.output,
      read,
      abort: () => {
        input.destroy();
        codec.input.destroy();
      },
    };
  }
  file.read.catch(() => undefined);
  return file;
}

/** One data chunk in one transaction, committed only when the file's bytes match dump.json. Returns its size. */
async function loadFile(s: DbSession, storage: Storage, prefix: string, f: DumpFileRecord, into: string, signal?: AbortSignal): Promise<number> {
  const compression = compressionOfKey(f.key);
  if (!compression) throw new DumpIntegrityError(f.key, `${f.key}: unknown data file type`);
  const full = `${prefix}/${f.key}`;
  const file = await openDataFile(storage, full, compression, signal);
  let began = false;
  try {
    await s.q.query('START TRANSACTION');
    began = true;
    let lineNo = 0;
    let sqlFailed: unknown;
    let read: FileFacts;
    // one buffer for the file's statements: sent as they are, without a string (raw-query.ts)
    const packet = { buffer: Buffer.allocUnsafeSlow(2 << 20) };
    try {
      for await (const len of statements(file.output as AsyncIterable<Buffer>, packet)) {
        lineNo++;
        throwIfAborted(signal);
        if (len === 0) continue;
        try {
          if (len <= RAW_QUERY_MAX) await rawQuery(s, packet.buffer, len);
          else await s.q.query(packet.buffer.toString('utf8', RAW_QUERY_OFFSET, RAW_QUERY_OFFSET + len));
        } catch (error) {
          sqlFailed = error;
          throw error;
        }
      }
      read = await file.read;
    } catch (error) {
      if (isAbortError(error)) throw error;
      if (sqlFailed === undefined) {
        throw new DumpIntegrityError(f.key, `${storage.name}: ${full} cannot be read or decompressed: ${describeError(error)}`, {
          cause: error,
          hint: 'The file is damaged: load an older dump, or the same dump from another tier.',
        });
      }
      throw new DumpError(`loading ${full} (line ${lineNo}) into ${into} failed: ${describeError(error)}`, { cause: error });
    }
    if (read.size !== f.size || read.sha256 !== f.sha256) throw integrity(storage, prefix, f, read.size, read.sha256);
    throwIfAborted(signal);
    await s.q.query('COMMIT');
    return read.size;
  } catch (error) {
    file.abort();
    if (began) await s.q.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
