import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventType, GTID_FL_STANDALONE } from '../../src/binlog/binlog-event.js';
import { createRawTailer, type RawTailer } from '../../src/binlog/raw-tailer.js';
import { createSegmentWriter, type SealedSegment, type SegmentWriter } from '../../src/binlog/segment-writer.js';
import { sourcePoolOptions } from '../../src/db/connect.js';
import type { BinlogStreamError } from '../../src/errors.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { waitFor } from '../support/wait.js';
import { mariadbBinlog, queryText, scanEvents, type ScannedEvent, reassembleToBuffer } from './binlog-inspect.js';

const MAX_SECONDS = 300;
const MAX_BYTES = 192 * 1024;
const BLOB_BYTES = 20 * 1024 * 1024;

let db: MariadbServer;
let root: Connection;
let dir: string;
let now = Date.UTC(2026, 0, 1);
const clock = () => now;
const sealed: SealedSegment[] = [];
const streamErrors: BinlogStreamError[] = [];

interface Archiver {
  tailer: RawTailer;
  writer: SegmentWriter;
}

async function startArchiver(start: { file: string; position: number }): Promise<Archiver> {
  const writer = await createSegmentWriter({
    dir,
    maxSeconds: MAX_SECONDS,
    maxBytes: MAX_BYTES,
    clock,
    onSealed: (segment) => {
      sealed.push(segment);
    },
  });
  const tailer = createRawTailer({
    poolOptions: sourcePoolOptions({ host: db.host, port: db.port, user: db.archiver.user, password: db.archiver.password, serverId: 9001 }),
    serverId: 9001,
    start,
    heartbeatMs: 250,
    onEvents: (events, meta) => writer.write(events, meta),
    onError: (error) => streamErrors.push(error),
  });
  await tailer.start();
  return { tailer, writer };
}

async function masterStatus(): Promise<{ file: string; position: number }> {
  const [row] = await db.query<{ File: string; Position: string | number }[]>('SHOW MASTER STATUS');
  return { file: row!.File, position: Number(row!.Position) };
}

/** waits until the writer has received everything the server wrote so far */
async function caughtUp(a: Archiver): Promise<{ file: string; position: number }> {
  let target = await masterStatus();
  await waitFor(
    async () => {
      if (streamErrors.length) throw streamErrors[0];
      // read again each time: after a rotation the server appends a Binlog_checkpoint event of its own
      target = await masterStatus();
      const p = a.writer.position;
      return p?.file === target.file && p.position === target.position;
    },
    { what: `the archiver to reach the server's end of binlog`, timeoutMs: 60_000, intervalMs: 20 },
  );
  return target;
}

async function timeSeal(a: Archiver): Promise<SealedSegment> {
  now += MAX_SECONDS * 1000;
  const segment = await a.writer.tick();
  expect(segment?.reason).toBe('time');
  return segment!;
}

async function workloadTypes(): Promise<void> {
  await root.query(`CREATE TABLE app.types (
    id BIGINT UNSIGNED PRIMARY KEY, i INT, d DECIMAL(30,8), f DOUBLE, dt DATETIME(6), ts TIMESTAMP(6) NULL,
    tm TIME(3), v VARCHAR(100) CHARACTER SET latin1, u VARCHAR(100), j JSON, e ENUM('a','b'), s SET('x','y','z'),
    b BIT(10), bin BINARY(4), n INT NULL, tx TEXT)`);
  await root.query(
    `INSERT INTO app.types VALUES (18446744073709551615, -2147483648, -12345678901234567890.12345678, 1.5e300,
      '2024-02-29 23:59:59.123456', '2024-01-01 00:00:00.000001', '-838:59:59.999', 'café', 'é🎉', '{"k":[1,2]}',
      'b', 'x,z', b'1010101010', x'01020304', NULL, 'first')`,
  );
  for (let batch = 0; batch < 8; batch++) {
    const rows = Array.from({ length: 150 }, (_, k) => {
      const id = batch * 1000 + k + 1;
      return `(${id}, ${id}, ${id}.5, ${id}e3, '2025-06-0${(k % 9) + 1} 12:00:00.${String(id).padStart(6, '0')}', NULL, '12:34:56.789', 'r${id}', 'row ${id} ü', '{"id":${id}}', 'a', 'y', b'1', x'0a0b0c0d', ${k}, REPEAT('t', ${k * 7}))`;
    });
    await root.query(`INSERT INTO app.types VALUES ${rows.join(',')}`);
  }
}

async function workloadTransactions(): Promise<void> {
  await root.query('BEGIN');
  await root.query("INSERT INTO app.types (id, i, u) VALUES (900001, 1, 'in trx')");
  await root.query("UPDATE app.types SET u = 'updated' WHERE id BETWEEN 1 AND 400");
  await root.query('SAVEPOINT sp1');
  await root.query('DELETE FROM app.types WHERE id BETWEEN 1001 AND 1100');
  await root.query('ROLLBACK TO SAVEPOINT sp1');
  await root.query('DELETE FROM app.types WHERE id BETWEEN 2001 AND 2050');
  await root.query('COMMIT');
  // non-transactional engine: the group ends with a COMMIT query, not an Xid
  await root.query('CREATE TABLE app.m (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM');
  await root.query("INSERT INTO app.m VALUES (1,'one'),(2,'two')");
  // DDL carrying rows
  await root.query('CREATE TABLE app.copy ENGINE=InnoDB AS SELECT id, u FROM app.types WHERE id < 500');
  await root.query('ALTER TABLE app.types ADD COLUMN extra INT NULL FIRST');
  await root.query('UPDATE app.types SET extra = 7 WHERE id < 100');
  await root.query('DROP TABLE app.copy');
}

beforeAll(async () => {
  db = await startMariadb({ serverId: 301, initSql: ['CREATE DATABASE app'] });
  root = await db.connectRoot();
  dir = await mkdtemp(join(tmpdir(), 'segments-'));
}, 120_000);

afterAll(async () => {
  await root?.end();
  await stopAllMariadb();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('archiving a live MariaDB binlog into segments', () => {
  let files: string[];
  let resumedFrom: { file: string; position: number };

  it('streams a workload into sealed segments, resumes from the checkpoint, and keeps up with rotations', { timeout: 180_000 }, async () => {
    const first = (await db.query<{ Log_name: string }[]>('SHOW BINARY LOGS'))[0]!.Log_name;
    const a1 = await startArchiver({ file: first, position: 4 });

    await workloadTypes();
    // the batches above may have ended exactly on a size seal; one small row leaves a segment open
    await root.query("INSERT INTO app.types (id, u) VALUES (900000, 'open segment')");
    await caughtUp(a1);
    const mid = await timeSeal(a1); // sealed by time inside a file the server still writes
    expect(mid.serverFile).toBe(first);

    await root.query(`CREATE TABLE app.blobs (id INT PRIMARY KEY, data LONGBLOB)`);
    await root.query(`INSERT INTO app.blobs VALUES (1, REPEAT('abcdefgh', ${BLOB_BYTES / 8}))`);
    // statement text with binary data travels in the Annotate_rows event
    await root.query('INSERT INTO app.blobs VALUES (2, ?)', [Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256))]);
    await workloadTransactions();
    await root.query('FLUSH BINARY LOGS');
    await root.query("INSERT INTO app.m VALUES (3,'three')");
    await root.query('FLUSH BINARY LOGS');
    await root.query("INSERT INTO app.types (id, u) VALUES (900002, 'third file')");
    const open1 = await caughtUp(a1);
    await timeSeal(a1);
    expect(a1.writer.checkpoint).toEqual(open1);
    expect(sealed.filter((s) => s.serverFile === first).length).toBeGreaterThanOrEqual(3);

    // what the supervisor will do after a crash or disconnect: a new tailer and writer at the checkpoint
    resumedFrom = a1.writer.checkpoint!;
    await a1.tailer.stop();
    await a1.writer.close();
    await root.query("INSERT INTO app.types (id, u) VALUES (900003, 'while down')");

    const a2 = await startArchiver(resumedFrom);
    await root.query("UPDATE app.types SET u = 'resumed' WHERE id = 900002");
    await root.query('FLUSH BINARY LOGS');
    await root.query("INSERT INTO app.types (id, u) VALUES (900004, 'fourth file')");
    await caughtUp(a2);
    await timeSeal(a2);
    await a2.tailer.stop();
    await a2.writer.close();

    expect(streamErrors).toEqual([]);
    files = [...new Set(sealed.map((s) => s.serverFile))];
    expect(files).toHaveLength(4);
    expect(new Set(sealed.map((s) => s.reason))).toEqual(new Set(['time', 'size', 'rotate']));
  });

  it('every segment passes mariadb-binlog --verify-binlog-checksum and decodes its rows', { timeout: 120_000 }, async () => {
    let inserts = 0;
    let updates = 0;
    let deletes = 0;
    const seen: string[] = [];
    for (const seg of sealed) {
      const rowEvents = (await scanEvents(seg.path)).filter((e) => e.type >= 23 && e.type <= 25).length;
      const out = await mariadbBinlog(seg.path, /-12345678901234567890\.12345678|'resumed'|'while down'/);
      expect(out.code, `${seg.name}: ${out.stderr}`).toBe(0);
      expect(out.stderr).toBe('');
      if (rowEvents > 0) expect(out.inserts + out.updates + out.deletes, seg.name).toBeGreaterThanOrEqual(rowEvents);
      inserts += out.inserts;
      updates += out.updates;
      deletes += out.deletes;
      seen.push(...out.matches);
    }
    console.log({ inserts, updates, deletes });
    expect(seen.join('\n')).toMatch(/-12345678901234567890\.12345678/);
    expect(seen.join('\n')).toMatch(/'resumed'/);
    expect(seen.join('\n')).toMatch(/'while down'/);
  });

  it('the segments of each server file rebuild it byte for byte', { timeout: 120_000 }, async () => {
    const open = (await masterStatus()).file;
    for (const file of files) {
      const segs = sealed.filter((s) => s.serverFile === file).sort((x, y) => x.startPos - y.startPos);
      const rebuilt = await reassembleToBuffer(segs);
      let server = await readFile(join(db.binlogDir, file));
      if (file === open) {
        // the server sets LOG_EVENT_BINLOG_IN_USE_F in the open file's FDE and clears it when sending
        expect(server[21]! & 1).toBe(1);
        expect(rebuilt[21]! & 1).toBe(0);
        server[21] = server[21]! & ~1;
        // it may have appended a Binlog_checkpoint event of its own since the last seal
        expect(rebuilt.length).toBe(segs.at(-1)!.endPos);
        server = server.subarray(0, rebuilt.length);
      }
      expect(rebuilt.length, file).toBe(server.length);
      expect(rebuilt.equals(server), file).toBe(true);
      expect(segs.at(-1)!.fileComplete).toBe(file !== open);
    }
    // one segment holds the 20 MiB row whole, so it is larger than maxBytes
    expect(sealed.some((s) => s.size > BLOB_BYTES && s.size > MAX_BYTES)).toBe(true);
    // the resumed writer continued exactly at the checkpoint: its first segment starts there
    expect(sealed.some((s) => s.serverFile === resumedFrom.file && s.startPos === resumedFrom.position)).toBe(true);
  });

  it('segments never split a transaction', async () => {
    for (const seg of sealed) {
      const events = await scanEvents(seg.path);
      const content = seg.startPos === 4 ? events : events.slice(1);
      expect(content.length, seg.name).toBe(seg.events);
      // outside a group between segments: the first event starts one, or belongs to none
      expect(isGroupStartOrOutside(content[0]!), seg.name).toBe(true);
      expect(openGroupAfter(content), `${seg.name} ends inside a transaction`).toBe(false);
      // positions inside the segment are the server's
      let pos = seg.startPos;
      for (const e of content) {
        pos += e.size;
        if (e.logPos !== 0) expect(e.logPos).toBe(pos);
      }
      expect(pos).toBe(seg.endPos);
    }
  });
});

function isGroupStartOrOutside(e: ScannedEvent): boolean {
  return [EventType.MARIADB_GTID, EventType.FORMAT_DESCRIPTION, EventType.ROTATE, EventType.MARIADB_GTID_LIST, EventType.BINLOG_CHECKPOINT, EventType.STOP].includes(e.type as never);
}

/** independent of TransactionTracker: MariaDB groups open at a GTID and close at Xid, COMMIT, or the statement of a standalone GTID */
function openGroupAfter(events: ScannedEvent[]): boolean {
  let open = false;
  let standalone = false;
  for (const e of events) {
    if (e.type === EventType.MARIADB_GTID) {
      expect(open, 'a GTID inside an open group').toBe(false);
      open = true;
      standalone = (e.raw[19 + 12]! & GTID_FL_STANDALONE) !== 0;
    } else if (e.type === EventType.XID) {
      open = false;
    } else if (e.type === EventType.QUERY && open && (standalone || /^COMMIT/i.test(queryText(e.raw)))) {
      open = false;
    }
  }
  return open;
}
