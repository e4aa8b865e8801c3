/**
 * The row-packet hook on a real server: every row arrives with its exact bytes, the stream pauses and
 * resumes for a slow sink, and server errors, a failing sink and an abort each reject (the last two
 * close the session, which cannot skip the rest of a result).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSession, type DbSession } from '../../src/dump/connection.js';
import { queryRowPackets } from '../../src/dump/row-packets.js';
import { textRowEnd } from '../../src/dump/text-row.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { textRow } from '../support/text-row.js';

let db: MariadbServer;
const ROWS = 20_000;

beforeAll(async () => {
  db = await startMariadb();
  await db.query('CREATE DATABASE rp');
  await db.query('CREATE TABLE rp.t (id INT PRIMARY KEY, v VARCHAR(300), n INT NULL)');
  await db.query(`INSERT INTO rp.t SELECT seq, REPEAT(CHAR(65 + seq % 26), seq % 300), IF(seq % 3 = 0, NULL, seq) FROM rp.seq_1_to_${ROWS}`);
}, 120_000);
afterAll(() => stopAllMariadb());

async function session(): Promise<DbSession> {
  const s = await openSession({ host: db.host, port: db.port, user: db.rootUser, password: db.rootPassword });
  await s.q.query('SET SESSION character_set_results = binary');
  return s;
}

function expected(id: number): Buffer {
  return textRow([Buffer.from(String(id)), Buffer.from(String.fromCharCode(65 + (id % 26)).repeat(id % 300)), id % 3 === 0 ? null : Buffer.from(String(id))]);
}

describe('rows as protocol packets (real MariaDB)', () => {
  it('hands over every row byte for byte, pausing for a slow sink', async () => {
    const s = await session();
    try {
      let id = 0;
      let pauses = 0;
      const n = await queryRowPackets(s, 'SELECT id, v, n FROM rp.t ORDER BY id', {
        row: (b, start, end) => {
          id++;
          expect(textRowEnd(b, start, 3)).toBe(end);
          if (!b.subarray(start, end).equals(expected(id))) throw new Error(`row ${id} differs`);
          return id % 1000 !== 0;
        },
        whenReady: (go) => {
          pauses++;
          setImmediate(go);
        },
      });
      expect(n).toBe(ROWS);
      expect(id).toBe(ROWS);
      expect(pauses).toBe(ROWS / 1000);
      // the session is usable afterwards
      const [r] = await s.q.query('SELECT 1 AS one');
      expect((r as { one: number }[])[0]!.one).toBe(1);
    } finally {
      await s.end();
    }
  });

  it('rejects with the server error', async () => {
    const s = await session();
    try {
      const error = await queryRowPackets(s, 'SELECT * FROM rp.missing', { row: () => true, whenReady: (go) => go() }).catch((e: unknown) => e);
      expect((error as { errno?: number }).errno).toBe(1146);
    } finally {
      await s.end();
    }
  });

  it('rejects when the sink fails or the signal aborts, and closes the session', async () => {
    const s1 = await session();
    const failing = queryRowPackets(s1, 'SELECT id, v, n FROM rp.t', {
      row: (_b, _s, _e) => {
        throw new Error('sink broke');
      },
      whenReady: (go) => go(),
    });
    await expect(failing).rejects.toThrow('sink broke');
    await expect(s1.q.query('SELECT 1')).rejects.toThrow();
    await s1.end();

    const s2 = await session();
    const ac = new AbortController();
    let seen = 0;
    const aborted = queryRowPackets(
      s2,
      'SELECT id, v, n FROM rp.t',
      {
        row: () => {
          if (++seen === 100) ac.abort(new Error('stop here'));
          return true;
        },
        whenReady: (go) => go(),
      },
      ac.signal,
    );
    await expect(aborted).rejects.toThrow('stop here');
    expect(seen).toBeLessThan(ROWS);
    await s2.end();
  });
});
