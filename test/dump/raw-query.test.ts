/**
 * rawQuery (a statement sent from a Buffer, through mysql2's Query command) on a real MariaDB:
 * statements of any size up to several MiB run, one buffer serves statement after statement, an
 * error rejects with the server's error and leaves the session usable, and ordinary queries on the
 * same session keep working between raw ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSession, type DbSession } from '../../src/dump/connection.js';
import { queryPacket, RAW_QUERY_MAX, RAW_QUERY_OFFSET, rawQuery } from '../../src/dump/raw-query.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';

let db: MariadbServer;
let s: DbSession;

beforeAll(async () => {
  db = await startMariadb();
  await db.query('CREATE DATABASE rq');
  await db.query('CREATE TABLE rq.t (id INT PRIMARY KEY, v LONGTEXT)');
  s = await openSession({ host: db.host, port: db.port, user: db.rootUser, password: db.rootPassword });
}, 120_000);

afterAll(async () => {
  await s?.end();
  await stopAllMariadb();
});

/** `sql` placed where rawQuery reads it, in `buf`; its length */
function place(buf: Buffer, sql: string): number {
  return buf.write(sql, RAW_QUERY_OFFSET, 'utf8');
}

describe('rawQuery', () => {
  it('runs statements of any size from one reused buffer, between ordinary queries', async () => {
    const buf = Buffer.alloc(8 << 20, 0x20);
    const sizes = [0, 10, 100_000, 3_000_000, 3];
    for (const [i, size] of sizes.entries()) {
      const len = place(buf, `INSERT INTO rq.t VALUES (${i}, '${'é'.repeat(size)}')`);
      await rawQuery(s, buf, len);
      // an ordinary query in between keeps the session's packet sequence right
      await s.q.query('SELECT 1');
    }
    const [rows] = await s.q.query('SELECT id, CHAR_LENGTH(v) AS n, v LIKE "é%" OR v = "" AS ok FROM rq.t ORDER BY id');
    expect((rows as Record<string, unknown>[]).map((r) => ({ id: Number(r['id']), n: Number(r['n']), ok: Number(r['ok']) }))).toEqual(sizes.map((n, id) => ({ id, n, ok: 1 })));
  });

  it('rejects with the server error, and the session goes on', async () => {
    const buf = Buffer.alloc(1024);
    await expect(rawQuery(s, buf, place(buf, 'INSERT INTO rq.nope VALUES (1)'))).rejects.toMatchObject({ errno: 1146 });
    await expect(rawQuery(s, buf, place(buf, 'INSERT INTO rq.t VALUES (0, "duplicate")'))).rejects.toMatchObject({ errno: 1062 });
    await rawQuery(s, buf, place(buf, 'DELETE FROM rq.t WHERE id = 4'));
    const [rows] = await s.q.query('SELECT COUNT(*) AS n FROM rq.t');
    expect(Number((rows as { n: unknown }[])[0]!.n)).toBe(4);
  });

  it('runs a statement of exactly RAW_QUERY_MAX bytes as one packet, and the session goes on', async () => {
    const head = 'SELECT 7 AS seven /*';
    const buf = Buffer.alloc(RAW_QUERY_OFFSET + RAW_QUERY_MAX, 0x2d);
    buf.write(head, RAW_QUERY_OFFSET, 'latin1');
    buf.write('*/', RAW_QUERY_OFFSET + RAW_QUERY_MAX - 2, 'latin1');
    // what goes to the socket: one write of one whole packet
    const conn = s.raw as unknown as { write(b: Buffer): void };
    const writes: Buffer[] = [];
    const write = conn.write;
    conn.write = function (this: unknown, b: Buffer) {
      writes.push(b);
      return write.call(this, b);
    };
    try {
      await rawQuery(s, buf, RAW_QUERY_MAX);
    } finally {
      conn.write = write;
    }
    expect(writes.map((w) => w.length)).toEqual([RAW_QUERY_MAX + 5]);
    expect(writes[0]!.readUIntLE(0, 3)).toBe(RAW_QUERY_MAX + 1);
    const [rows] = await s.q.query('SELECT 8 AS eight');
    expect(Number((rows as { eight: unknown }[])[0]!.eight)).toBe(8);
  });

  it('lays out the packet as mysql2 does, with and without query attributes (MySQL 8.0.23+)', () => {
    const buf = Buffer.alloc(RAW_QUERY_OFFSET + 3, 0xee);
    buf.write('DO1', RAW_QUERY_OFFSET, 'latin1');
    const plain = queryPacket(buf, 3, false);
    plain.writeHeader(0);
    expect([...plain.buffer]).toEqual([4, 0, 0, 0, 0x03, 0x44, 0x4f, 0x31]);
    const withAttributes = queryPacket(buf, 3, true);
    withAttributes.writeHeader(0);
    expect([...withAttributes.buffer]).toEqual([6, 0, 0, 0, 0x03, 0x00, 0x01, 0x44, 0x4f, 0x31]);
    expect(withAttributes.length()).toBe(10);
  });

  it('refuses a statement too long for one packet, before sending anything', async () => {
    await expect(rawQuery(s, Buffer.alloc(16), RAW_QUERY_MAX + 1)).rejects.toThrow(/does not fit one packet/);
    const [rows] = await s.q.query('SELECT 2 AS two');
    expect(Number((rows as { two: unknown }[])[0]!.two)).toBe(2);
  });
});
