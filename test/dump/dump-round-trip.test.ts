import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDump, listDumps, runDump, type DumpManifest } from '../../src/dump/index.js';
import { DumpIntegrityError, DumpMismatchError } from '../../src/errors.js';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import { createMemoryStorage } from '../../src/storage/memory/memory-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { runSqlFile, TRICKY_SQL } from '../support/mariadb-cli.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { fingerprintDatabase } from '../support/table-fingerprint.js';

const archiverOf = (s: MariadbServer) => ({ host: s.host, port: s.port, user: s.archiver.user, password: s.archiver.password });
const rootOf = (s: MariadbServer) => ({ host: s.host, port: s.port, user: s.rootUser, password: s.rootPassword });

let a: MariadbServer;
let b: MariadbServer;
let dir: string;
let storage: Storage;
let manifest: DumpManifest;
let connA: Connection;
let connB: Connection;
const timings: Record<string, number> = {};

async function one<T = Record<string, unknown>>(conn: Connection, sql: string): Promise<T> {
  const [rows] = await conn.query(sql);
  return (rows as T[])[0]!;
}

async function count(conn: Connection, sql: string): Promise<number> {
  return Number((await one<{ n: unknown }>(conn, sql)).n);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dump-test-'));
  storage = createLocalStorage({ path: dir });
  [a, b] = await Promise.all([startMariadb(), startMariadb()]);
  let t = performance.now();
  await runSqlFile(a, TRICKY_SQL);
  timings.loadFixtureMs = performance.now() - t;
  connA = await a.connectRoot();
  connB = await b.connectRoot();
  t = performance.now();
  manifest = await runDump({
    source: archiverOf(a),
    storage,
    tier: 'daily',
    mode: 'backup-stage',
    concurrency: 2,
    chunkBytes: 1 << 20, // several chunks for the big tables
    compression: 'gzip', // the fallback codec; the default (zstd) is the ftwrl test's
    clock: () => new Date('2026-01-01T06:00:00Z'),
  });
  timings.dumpMs = performance.now() - t;
});

afterAll(async () => {
  console.log('timings (ms):', Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])));
  await connA?.end();
  await connB?.end();
  await stopAllMariadb();
  await rm(dir, { recursive: true, force: true });
});

describe('dump and load of the tricky fixture', () => {
  it('writes a complete manifest with coordinates, every table, every file', async () => {
    expect(manifest.dumpId).toMatch(/^20260101T060000Z-[0-9a-f]{4}$/);
    expect(manifest.prefix).toBe(`dumps/daily/${manifest.dumpId}`);
    const status = await one<{ File: string; Position: string }>(connA, 'SHOW MASTER STATUS');
    expect(manifest.snapshot.coordinates).toEqual({ file: status.File, position: Number(status.Position), gtid: expect.stringMatching(/^0-\d+-\d+$/), exact: true });
    const gtid = await one<{ g: string }>(connA, 'SELECT @@gtid_binlog_pos AS g');
    expect(manifest.snapshot.coordinates?.gtid).toBe(gtid.g);
    const names = manifest.tables.map((t) => t.table).sort();
    expect(names).toEqual(['audit', 'child', 'generated', 'geo', 'myisam_t', 'no_pk', 'numbers', 'order', 'parent', 'parted', 'texts', 'times', 'weird-name.with dots']);
    expect(manifest.tables.every((t) => t.pointInTime)).toBe(true);
    expect(manifest.tables.find((t) => t.table === 'numbers')!.rows).toBe(20003);
    expect(manifest.tables.find((t) => t.table === 'texts')!.files.length).toBeGreaterThan(1);
    expect(manifest.databases[0]!.objects).toEqual({
      sequences: ['ticket_seq'],
      views: ['parent_names'],
      procedures: ['churn_marker'],
      functions: ['twice'],
      triggers: ['parent_ai'],
      events: [],
    });
    // every listed file exists with that size
    for (const f of manifest.files) expect((await storage.head(`${manifest.prefix}/${f.key}`)).size).toBe(f.size);
    expect(manifest.files.some((f) => f.key === 'tricky/weird-name%2Ewith%20dots.schema.sql')).toBe(true);
    const listed = await listDumps(storage, 'daily');
    expect(listed.map((d) => d.dumpId)).toEqual([manifest.dumpId]);
    expect(listed[0]!.rows).toBe(manifest.tables.reduce((n, t) => n + t.rows, 0));
  });

  it('loads into a fresh server: rows, counts, SHOW CREATE TABLE, AUTO_INCREMENT, objects all equal', async () => {
    const t = performance.now();
    const report = await loadDump({ storage, dumpPrefix: manifest.prefix, target: rootOf(b), concurrency: 2 });
    timings.loadMs = performance.now() - t;
    expect(report.tables).toHaveLength(13);
    expect(report.tables.every((r) => r.ok === true)).toBe(true);
    expect(report.objects).toEqual({ sequences: 1, views: 1, routines: 2, triggers: 1, events: 0 });

    const fa = await fingerprintDatabase(connA, 'tricky');
    const fb = await fingerprintDatabase(connB, 'tricky');
    expect(Object.keys(fb)).toEqual(Object.keys(fa));
    for (const name of Object.keys(fa)) {
      expect({ name, ...fb[name] }).toEqual({ name, ...fa[name] });
    }
    // FLOAT values bit for bit (their own text has 6 digits and would hide a rounding)
    const floats = 'SELECT SUM(CRC32(CONCAT(id, \':\', f + 0e0))) AS n FROM tricky.numbers';
    expect(await count(connB, floats)).toBe(await count(connA, floats));
    expect((await one(connB, 'SHOW CREATE DATABASE tricky'))['Create Database']).toBe((await one(connA, 'SHOW CREATE DATABASE tricky'))['Create Database']);
    for (const sql of ['SHOW CREATE FUNCTION tricky.twice', 'SHOW CREATE PROCEDURE tricky.churn_marker', 'SHOW CREATE TRIGGER tricky.parent_ai', 'SHOW CREATE VIEW tricky.parent_names', 'SHOW CREATE SEQUENCE tricky.ticket_seq']) {
      const ra = await one(connA, sql);
      const rb = await one(connB, sql);
      delete ra['Created'];
      delete rb['Created'];
      expect(rb, sql).toEqual(ra);
    }
    // the objects work
    expect(await one(connB, 'SELECT tricky.twice(21) AS v')).toEqual({ v: 42 });
    expect(await count(connB, 'SELECT COUNT(*) AS n FROM tricky.parent_names')).toBe(200);
    await connB.query("INSERT INTO tricky.parent VALUES (999999, 'via trigger')");
    expect(await count(connB, "SELECT COUNT(*) AS n FROM tricky.audit WHERE what = 'parent 999999'")).toBe(1);
    // AUTO_INCREMENT continues where the source would
    await connA.query("INSERT INTO tricky.numbers (ti) VALUES (5)");
    await connB.query("INSERT INTO tricky.numbers (ti) VALUES (5)");
    expect(await one(connB, 'SELECT MAX(id) AS m FROM tricky.numbers')).toEqual(await one(connA, 'SELECT MAX(id) AS m FROM tricky.numbers'));
    // the sequence continues: it never reissues a value the source issued (1000), same increment.
    // The snapshot lock flushes tables, which drops the source's sequence cache (as a restart
    // does), so the source continues at next_not_cached_value too: both give the same next value.
    const nextA = Number((await one<{ v: string }>(connA, 'SELECT NEXTVAL(tricky.ticket_seq) AS v')).v);
    const nextB = Number((await one<{ v: string }>(connB, 'SELECT NEXTVAL(tricky.ticket_seq) AS v')).v);
    expect(nextB).toBeGreaterThan(1000);
    expect((nextB - 1000) % 7).toBe(0);
    expect(nextB).toBe(nextA);
  });

  it('loads from a storage that only streams (no local file to read): the same rows, checked', async () => {
    const streamed = createMemoryStorage();
    for await (const o of storage.list(`${manifest.prefix}/`)) {
      const chunks: Buffer[] = [];
      for await (const c of await storage.get(o.key)) chunks.push(c as Buffer);
      await streamed.put(o.key, () => Readable.from([Buffer.concat(chunks)]));
    }
    const report = await loadDump({ storage: streamed, dumpPrefix: manifest.prefix, target: rootOf(b), tables: ['tricky.texts', 'tricky.no_pk'], renameDatabase: 'streamed' });
    expect(report.tables.length).toBe(2);
    expect(report.tables.every((t) => t.ok)).toBe(true);
    const fa = await fingerprintDatabase(connA, 'tricky');
    const fs = await fingerprintDatabase(connB, 'streamed');
    expect(fs['texts']).toEqual(fa['texts']);
    expect(fs['no_pk']).toEqual(fa['no_pk']);
  });

  it('loads chosen tables into another database name', async () => {
    const report = await loadDump({ storage, dumpPrefix: manifest.prefix, target: rootOf(b), tables: ['tricky.texts', 'tricky.parent', 'tricky.weird-name.with dots'], renameDatabase: 'copy' });
    expect(report.tables.map((t) => `${t.targetDb}.${t.table}`).sort()).toEqual(['copy.parent', 'copy.texts', 'copy.weird-name.with dots']);
    expect(report.tables.every((t) => t.ok)).toBe(true);
    expect(report.objects.triggers).toBe(1); // parent_ai belongs to parent
    const fa = await fingerprintDatabase(connA, 'tricky');
    const fc = await fingerprintDatabase(connB, 'copy');
    expect(fc['texts']).toEqual(fa['texts']);
    expect(fc['weird-name.with dots']).toEqual(fa['weird-name.with dots']);
  });

  it('refuses a tampered data file, naming it, and keeps none of its rows', async () => {
    const rec = manifest.tables.find((t) => t.table === 'no_pk')!;
    const key = rec.files[0]!;
    const path = join(dir, ...`${manifest.prefix}/${key}`.split('/'));
    const original = await readFile(path);
    try {
      const bad = Buffer.from(original);
      bad[Math.floor(bad.length / 2)]! ^= 0x01;
      await writeFile(path, bad);
      const error = await loadDump({ storage, dumpPrefix: manifest.prefix, target: rootOf(b), tables: ['tricky.no_pk'], renameDatabase: 'tampered' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DumpIntegrityError);
      expect((error as Error).message).toContain(key);
      expect(await count(connB, 'SELECT COUNT(*) AS n FROM tampered.no_pk')).toBe(0);

      // same size, valid gzip, different content: caught by the sha256
      await connB.query('DROP DATABASE tampered');
      const { gzipSync, gunzipSync } = await import('node:zlib');
      const sql = gunzipSync(original).toString('utf8').replace("'v1'", "'v2'");
      await writeFile(path, gzipSync(sql));
      const error2 = await loadDump({ storage, dumpPrefix: manifest.prefix, target: rootOf(b), tables: ['tricky.no_pk'], renameDatabase: 'tampered' }).catch((e: unknown) => e);
      expect(error2).toBeInstanceOf(DumpIntegrityError);
      expect((error2 as Error).message).toContain(key);
      expect((error2 as Error).message).toMatch(/does not match dump\.json/);
      expect(await count(connB, 'SELECT COUNT(*) AS n FROM tampered.no_pk')).toBe(0);
    } finally {
      await writeFile(path, original);
    }
  });

  it('refuses a tampered zstd data file (which zstd reads from disk itself), naming it, and keeps none of its rows', async () => {
    // a storage of its own: the other tests list this one's dumps
    const own = await mkdtemp(join(tmpdir(), 'dump-tamper-'));
    const ownStorage = createLocalStorage({ path: own });
    const m = await runDump({ source: archiverOf(a), storage: ownStorage, tier: 'daily', compression: 'zstd', databases: ['tricky'] });
    const key = m.tables.find((t) => t.table === 'no_pk')!.files[0]!;
    const path = join(own, ...`${m.prefix}/${key}`.split('/'));
    const original = await readFile(path);
    const load = (name: string) => loadDump({ storage: ownStorage, dumpPrefix: m.prefix, target: rootOf(b), tables: ['tricky.no_pk'], renameDatabase: name }).catch((e: unknown) => e);
    try {
      // cut short: zstd fails
      await writeFile(path, original.subarray(0, original.length - 7));
      const cut = await load('tampered_zstd');
      expect(cut).toBeInstanceOf(DumpIntegrityError);
      expect((cut as Error).message).toContain(key);
      expect(await count(connB, 'SELECT COUNT(*) AS n FROM tampered_zstd.no_pk')).toBe(0);
      await connB.query('DROP DATABASE tampered_zstd');
      // valid zstd of other statements: caught by the sha256
      const sql = spawnSync('zstd', ['-d', '-c'], { input: original }).stdout.toString('utf8').replace("'v1'", "'v2'");
      await writeFile(path, spawnSync('zstd', ['-1', '-c'], { input: sql }).stdout);
      const other = await load('tampered_zstd');
      expect(other).toBeInstanceOf(DumpIntegrityError);
      expect((other as Error).message).toMatch(/does not match dump\.json/);
      expect(await count(connB, 'SELECT COUNT(*) AS n FROM tampered_zstd.no_pk')).toBe(0);
      await connB.query('DROP DATABASE tampered_zstd');
      // and the file as written loads, checked
      await writeFile(path, original);
      const good = await load('tampered_zstd');
      expect((good as { tables: { ok: boolean | null }[] }).tables.every((t) => t.ok === true)).toBe(true);
    } finally {
      await connB.query('DROP DATABASE IF EXISTS tampered_zstd');
      await rm(own, { recursive: true, force: true });
    }
  });

  it('ftwrl mode, zstd chunks, a database selection with an excluded table', async () => {
    const m = await runDump({ source: archiverOf(a), storage, tier: 'weekly', mode: 'ftwrl', compression: 'zstd', concurrency: 3, databases: ['tricky'], exclude: ['tricky.texts'], chunkBytes: 256 * 1024 });
    expect(m.snapshot.connections).toBe(3);
    expect(m.snapshot.lockHeldMs).toBeGreaterThanOrEqual(0);
    expect(m.tables.map((t) => t.table)).not.toContain('texts');
    expect(m.files.filter((f) => f.key.endsWith('.sql.zst')).length).toBeGreaterThan(5);
    const report = await loadDump({ storage, dumpPrefix: m.prefix, target: rootOf(b), renameDatabase: 'viazstd', concurrency: 3 });
    expect(report.tables.every((t) => t.ok)).toBe(true);
    const fa = await fingerprintDatabase(connA, 'tricky');
    const fz = await fingerprintDatabase(connB, 'viazstd');
    expect(fz['numbers']!.digest).toBe(fa['numbers']!.digest);
    expect(fz['geo']).toEqual(fa['geo']);
    // the view was rewritten to the new database name
    expect(String((await one(connB, 'SHOW CREATE VIEW viazstd.parent_names'))['Create View'])).toContain('`viazstd`.`parent`');
    expect((await listDumps(storage)).map((d) => d.tier).sort()).toEqual(['daily', 'weekly']);
  });

  it('reports a loaded table that differs from the dump record as an error', async () => {
    const tables = manifest.tables.map((t) => (t.table === 'parent' ? { ...t, rows: t.rows + 1 } : t.table === 'child' ? { ...t, checksum: t.checksum.replace(/.$/, (c) => (c === '0' ? '1' : '0')) } : t));
    const error = await loadDump({ storage, manifest: { ...manifest, tables }, target: rootOf(b), tables: ['tricky.parent', 'tricky.child'], renameDatabase: 'drift', objects: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DumpMismatchError);
    expect((error as DumpMismatchError).mismatches.map((m) => m.table).sort()).toEqual(['child', 'parent']);
    expect((error as Error).message).toContain('drift.parent (rows 200, expected 201)');
    expect((error as Error).message).toContain('drift.child (rows 2000, expected 2000, checksum differs)');
  });
});
