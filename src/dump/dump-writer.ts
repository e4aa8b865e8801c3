/**
 * runDump: one consistent, verified dump of all (or selected) databases to a Storage.
 *
 * Order: catalog → snapshot (non-transactional tables read while the lock is held in lock modes) →
 * InnoDB tables in parallel, largest first, one per snapshot connection → per database its
 * CREATE DATABASE and objects → dump.json last. Every file goes through `storage.put` (size + sha256
 * verified). A failed dump leaves files without a dump.json: never a complete-looking dump.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { throwIfAborted } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { readCatalog, readObjects, showCreateDatabase, type Catalog, type CatalogTable } from './catalog.js';
import { CHECKSUM_ALGORITHM } from './checksum.js';
import { chooseCompression } from './codec.js';
import { openSession, type DbSession, type DumpConnectionOptions } from './connection.js';
import { keyName, makeDumpId } from './names.js';
import { isLockMode, openSnapshot } from './snapshot.js';
import { bufferStream, dumpTable, type TableDumpContext } from './table-dump.js';
import { readUsersSql, USERS_FILE } from './users.js';
import {
  DEFAULT_DUMPS_ROOT,
  DUMP_FORMAT_VERSION,
  DUMP_MANIFEST_NAME,
  DUMP_SQL_MODE,
  silentDumpLogger,
  type DumpCompression,
  type DumpDatabaseRecord,
  type DumpFileRecord,
  type DumpLogger,
  type DumpManifest,
  type DumpTableRecord,
  type SnapshotMode,
} from './types.js';

export interface RunDumpOptions {
  source: DumpConnectionOptions;
  storage: Storage;
  /** tier name, e.g. `daily`; part of the key prefix */
  tier: string;
  /** databases to dump; all but information_schema, performance_schema, mysql and sys when absent */
  databases?: readonly string[];
  /** `db` or `db.table` entries to leave out */
  exclude?: readonly string[];
  /** default `backup-stage` */
  mode?: SnapshotMode;
  /** tables dumped at once (= snapshot connections in lock modes); default 2 */
  concurrency?: number;
  /** uncompressed SQL bytes per data file; default 64 MiB */
  chunkBytes?: number;
  /** bytes per INSERT statement (rows are never split); default 1 MiB */
  statementBytes?: number;
  /** default `auto`: zstd (level 1, the zstd program) when installed, else gzip (level 1, in-process) */
  compression?: DumpCompression | 'auto';
  gzipLevel?: number;
  /** lock_wait_timeout for the snapshot lock, seconds; default 60 */
  lockWaitTimeoutSec?: number;
  /** key root, default `dumps` → `dumps/<tier>/<dumpId>/` */
  root?: string;
  /** also dump users and grants (users.sql) */
  users?: boolean;
  /** for temp chunk files; default the OS temp dir */
  tmpDir?: string;
  clock?: () => Date;
  logger?: DumpLogger;
  signal?: AbortSignal;
}

export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;
export const DEFAULT_STATEMENT_BYTES = 1024 * 1024;

export function dumpPrefix(root: string, tier: string, dumpId: string): string {
  return `${root}/${keyName(tier)}/${dumpId}`;
}

export async function runDump(o: RunDumpOptions): Promise<DumpManifest> {
  const clock = o.clock ?? (() => new Date());
  const logger = o.logger ?? silentDumpLogger;
  const mode = o.mode ?? 'backup-stage';
  const concurrency = Math.max(1, Math.floor(o.concurrency ?? 2));
  const { compression, warning: compressionWarning } = chooseCompression(o.compression ?? 'auto');
  const startedAt = clock();
  const dumpId = makeDumpId(startedAt, randomBytes(2).toString('hex'));
  const prefix = dumpPrefix(o.root ?? DEFAULT_DUMPS_ROOT, o.tier, dumpId);
  const warnings: string[] = [];
  if (compressionWarning) warnings.push(compressionWarning);
  const files: DumpFileRecord[] = [];
  const tables: DumpTableRecord[] = [];
  throwIfAborted(o.signal);
  logger.info('dump started', { tier: o.tier, dumpId, mode, storage: o.storage.name, prefix });

  const catalogSession = await openSession(o.source);
  let catalog: Catalog;
  try {
    catalog = await readCatalog(catalogSession, { databases: o.databases, exclude: o.exclude });
  } finally {
    await catalogSession.end();
  }
  for (const t of catalog.tables) {
    if (t.systemVersioned) warnings.push(`${t.db}.${t.table}: system-versioned table: only current rows are dumped, not the history`);
  }

  const tmpDir = await mkdtemp(join(o.tmpDir ?? tmpdir(), 'mysql-archiver-dump-'));
  const ctx: TableDumpContext = {
    storage: o.storage,
    prefix,
    compression,
    gzipLevel: o.gzipLevel,
    chunkBytes: o.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    statementBytes: o.statementBytes ?? DEFAULT_STATEMENT_BYTES,
    tmpDir,
    signal: o.signal,
    addFile: (f) => files.push(f),
  };
  const nonTx = catalog.tables.filter((t) => !t.transactional);
  const tx = catalog.tables.filter((t) => t.transactional);
  const lockMode = isLockMode(mode);
  const wanted = Math.min(concurrency, Math.max(1, tx.length, nonTx.length));
  try {
    const snapshot = await openSnapshot({
      source: o.source,
      mode,
      workers: wanted,
      lockWaitTimeoutSec: o.lockWaitTimeoutSec,
      logger,
      signal: o.signal,
      // non-transactional tables are consistent only while nothing can write them
      whileLocked: nonTx.length > 0 ? (workers) => runPool(workers, nonTx, ctx, true, tables, logger) : undefined,
    });
    warnings.push(...snapshot.warnings);
    try {
      if (!lockMode && nonTx.length > 0) {
        await runPool(snapshot.workers, nonTx, ctx, false, tables, logger);
        warnings.push(
          `not point-in-time (mode ${mode} takes no lock, and ${[...new Set(nonTx.map((t) => t.engine ?? '?'))].join('/')} tables ignore the snapshot): ${nonTx.map((t) => `${t.db}.${t.table}`).join(', ')}`,
        );
      }
      await runPool(snapshot.workers, tx, ctx, true, tables, logger);
      const databases: DumpDatabaseRecord[] = [];
      const meta = snapshot.workers[0]!;
      for (const db of catalog.databases) databases.push(await dumpDatabase(meta, db, catalog, ctx, warnings));
      if (o.users) {
        const users = await readUsersSql(meta);
        const body = Buffer.from(users.sql, 'utf8');
        const put = await ctx.storage.put(`${ctx.prefix}/${USERS_FILE}`, () => bufferStream(body), { signal: ctx.signal });
        ctx.addFile({ key: USERS_FILE, size: put.size, sha256: put.sha256 });
      }
      const tablesSorted = tables.sort((a, b) => cmp(a.db, b.db) || cmp(a.table, b.table));
      await snapshot.close();
      const manifest: DumpManifest = {
        format: DUMP_FORMAT_VERSION,
        tool: 'mysql-archiver',
        dumpId,
        tier: o.tier,
        prefix,
        startedAt: startedAt.toISOString(),
        finishedAt: clock().toISOString(),
        mode,
        snapshot: { coordinates: snapshot.coordinates, lockHeldMs: snapshot.lockHeldMs, connections: snapshot.workers.length },
        server: { version: snapshot.server.version, serverId: snapshot.server.serverId, hostname: snapshot.server.hostname },
        compression,
        chunkBytes: ctx.chunkBytes,
        checksumAlgorithm: CHECKSUM_ALGORITHM,
        session: { timeZone: '+00:00', sqlMode: DUMP_SQL_MODE, charset: 'utf8mb4' },
        databases,
        tables: tablesSorted,
        files: [...files].sort((a, b) => cmp(a.key, b.key)),
        warnings,
      };
      const body = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
      await o.storage.put(`${prefix}/${DUMP_MANIFEST_NAME}`, () => bufferStream(body), { signal: o.signal, sizeHint: body.length });
      for (const w of warnings) logger.warn(w, { dumpId });
      logger.info('dump finished', {
        tier: o.tier,
        dumpId,
        tables: tables.length,
        rows: tables.reduce((n, t) => n + t.rows, 0),
        files: files.length + 1,
        bytes: files.reduce((n, f) => n + f.size, 0),
        lockHeldMs: snapshot.lockHeldMs,
      });
      return manifest;
    } finally {
      await snapshot.close();
    }
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Dumps `list` over the sessions, each session taking the next table (largest first). */
async function runPool(
  sessions: readonly DbSession[],
  list: readonly CatalogTable[],
  ctx: TableDumpContext,
  pointInTime: boolean,
  out: DumpTableRecord[],
  logger: DumpLogger,
): Promise<void> {
  const queue = [...list].sort((a, b) => b.bytes - a.bytes);
  let failed: unknown;
  await Promise.all(
    sessions.map(async (s) => {
      for (let t = queue.shift(); t && failed === undefined; t = queue.shift()) {
        try {
          throwIfAborted(ctx.signal);
          const record = await dumpTable(s, t, ctx, pointInTime);
          out.push(record);
          logger.debug('table dumped', { db: t.db, table: t.table, rows: record.rows, files: record.files.length, ms: record.durationMs });
        } catch (error) {
          failed ??= error;
        }
      }
    }),
  );
  if (failed !== undefined) throw failed;
}

async function dumpDatabase(s: DbSession, db: string, catalog: Catalog, ctx: TableDumpContext, warnings: string[]): Promise<DumpDatabaseRecord> {
  const base = keyName(db);
  const schemaFile = `${base}/db.sql`;
  const create = Buffer.from(`${await showCreateDatabase(s, db)};\n`, 'utf8');
  const put1 = await ctx.storage.put(`${ctx.prefix}/${schemaFile}`, () => bufferStream(create), { signal: ctx.signal });
  ctx.addFile({ key: schemaFile, size: put1.size, sha256: put1.sha256 });
  const objects = await readObjects(s, db, catalog, warnings);
  const objectsFile = `${base}/objects.json`;
  const body = Buffer.from(JSON.stringify(objects, null, 2) + '\n', 'utf8');
  const put2 = await ctx.storage.put(`${ctx.prefix}/${objectsFile}`, () => bufferStream(body), { signal: ctx.signal });
  ctx.addFile({ key: objectsFile, size: put2.size, sha256: put2.sha256 });
  return {
    name: db,
    schemaFile,
    objectsFile,
    tables: catalog.tables.filter((t) => t.db === db).map((t) => t.table),
    objects: {
      sequences: objects.sequences.map((x) => x.name),
      views: objects.views.map((x) => x.name),
      procedures: objects.routines.filter((r) => r.type === 'PROCEDURE').map((x) => x.name),
      functions: objects.routines.filter((r) => r.type === 'FUNCTION').map((x) => x.name),
      triggers: objects.triggers.map((x) => x.name),
      events: objects.events.map((x) => x.name),
    },
  };
}
