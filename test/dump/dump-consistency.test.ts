/**
 * A dump taken while tricky-churn.sql runs in a loop must be one consistent snapshot: the loader's
 * per-table checksums equal the dump's, and replaying the source's binlog from the recorded
 * coordinates onto the loaded copy gives exactly the source (a wrong position would replay
 * transactions twice or miss some, and the rows would differ).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDump, runDump, type DumpManifest, type SnapshotMode } from '../../src/dump/index.js';
import { openSession } from '../../src/dump/connection.js';
import { onlyMarkersBetween } from '../../src/dump/snapshot.js';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { replayBinlogFiles, runChurn, runSqlFile, TRICKY_SQL } from '../support/mariadb-cli.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { fingerprintDatabase } from '../support/table-fingerprint.js';
import { waitFor } from '../support/wait.js';

const archiverOf = (s: MariadbServer) => ({ host: s.host, port: s.port, user: s.archiver.user, password: s.archiver.password });
const rootOf = (s: MariadbServer) => ({ host: s.host, port: s.port, user: s.rootUser, password: s.rootPassword });

let dir: string;
let storage: Storage;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dump-churn-'));
  storage = createLocalStorage({ path: dir });
});

afterAll(async () => {
  await stopAllMariadb();
  await rm(dir, { recursive: true, force: true });
});

/** Runs the churn script over and over until stopped; resolves with the number of rounds. */
function churn(server: MariadbServer) {
  let stopping = false;
  let rounds = 0;
  let firstRound!: () => void;
  const started = new Promise<void>((resolve) => (firstRound = resolve));
  const done = (async () => {
    while (!stopping) {
      await runChurn(server);
      rounds++;
      if (rounds === 1) firstRound();
    }
    return rounds;
  })();
  done.catch(() => firstRound());
  return {
    started,
    roundsSoFar: () => rounds,
    stop: async () => {
      stopping = true;
      return done;
    },
  };
}

async function dumpUnderChurn(a: MariadbServer, mode: SnapshotMode): Promise<{ manifest: DumpManifest; roundsDuring: number }> {
  await runSqlFile(a, TRICKY_SQL);
  const c = churn(a);
  try {
    await c.started;
    const before = c.roundsSoFar();
    const manifest = await runDump({ source: archiverOf(a), storage, tier: mode, mode, concurrency: 2, chunkBytes: 1 << 20, statementBytes: 64 * 1024 });
    const roundsDuring = c.roundsSoFar() - before;
    // let it run on a little after the dump, so there is something to replay
    const target = c.roundsSoFar() + 2;
    await waitFor(() => c.roundsSoFar() >= target, { what: 'two more churn rounds', timeoutMs: 30_000, intervalMs: 20 });
    return { manifest, roundsDuring };
  } finally {
    await c.stop();
  }
}

describe('dump under concurrent writes', () => {
  it('backup-stage: checksums verify on load and binlog replay from the recorded position reproduces the source', async () => {
    const [a, b] = await Promise.all([startMariadb(), startMariadb()]);
    const { manifest, roundsDuring } = await dumpUnderChurn(a, 'backup-stage');
    expect(roundsDuring).toBeGreaterThan(0);
    expect(manifest.tables.every((t) => t.pointInTime)).toBe(true);
    expect(manifest.snapshot.lockHeldMs).not.toBeNull();
    const report = await loadDump({ storage, dumpPrefix: manifest.prefix, target: rootOf(b), concurrency: 2 });
    expect(report.tables.every((t) => t.ok === true)).toBe(true);

    const coords = manifest.snapshot.coordinates!;
    const files = (await readdir(a.binlogDir)).filter((f) => /\.\d{6}$/.test(f) && f >= coords.file).sort();
    expect(files[0]).toBe(coords.file);
    await replayBinlogFiles(b, files.map((f) => join(a.binlogDir, f)), [`--start-position=${coords.position}`]);
    const connA = await a.connectRoot();
    const connB = await b.connectRoot();
    try {
      const fa = await fingerprintDatabase(connA, 'tricky', { ignoreAutoIncrement: true });
      const fb = await fingerprintDatabase(connB, 'tricky', { ignoreAutoIncrement: true });
      for (const name of Object.keys(fa)) expect({ name, ...fb[name] }).toEqual({ name, ...fa[name] });
    } finally {
      await connA.end();
      await connB.end();
    }
  });

  it('single (lock-free): one connection, snapshot-bound position, MyISAM reported as not point-in-time, checksums verify', async () => {
    const [a, b] = await Promise.all([startMariadb(), startMariadb()]);
    const { manifest, roundsDuring } = await dumpUnderChurn(a, 'single');
    expect(roundsDuring).toBeGreaterThan(0);
    expect(manifest.snapshot.connections).toBe(1);
    expect(manifest.snapshot.lockHeldMs).toBeNull();
    expect(manifest.snapshot.coordinates).toMatchObject({ exact: true, gtid: expect.stringMatching(/^0-\d+-\d+$/) });
    expect(manifest.tables.filter((t) => !t.pointInTime).map((t) => t.table)).toEqual(['myisam_t']);
    expect(manifest.warnings.join('\n')).toMatch(/not point-in-time.*tricky\.myisam_t/);
    const report = await loadDump({ storage, dumpPrefix: manifest.prefix, target: rootOf(b) });
    expect(report.tables.every((t) => t.ok === true)).toBe(true);

    // InnoDB tables are exact at the position: replay onto a copy without the MyISAM table matches
    const coords = manifest.snapshot.coordinates!;
    const files = (await readdir(a.binlogDir)).filter((f) => /\.\d{6}$/.test(f) && f >= coords.file).sort();
    const connB = await b.connectRoot();
    const connA = await a.connectRoot();
    try {
      // myisam_t was read after the snapshot: its row events may not apply (ignored), the InnoDB ones must
      await connB.query("SET GLOBAL slave_exec_mode = 'IDEMPOTENT'");
      await replayBinlogFiles(b, files.map((f) => join(a.binlogDir, f)), [`--start-position=${coords.position}`]);
      const fa = await fingerprintDatabase(connA, 'tricky', { ignoreAutoIncrement: true });
      const fb = await fingerprintDatabase(connB, 'tricky', { ignoreAutoIncrement: true });
      for (const name of Object.keys(fa)) if (name !== 'myisam_t') expect({ name, ...fb[name] }).toEqual({ name, ...fa[name] });
    } finally {
      await connA.end();
      await connB.end();
    }
  });

  it('a snapshot position past the lock position is accepted only when marker events (a binlog checkpoint) lie between', async () => {
    const a = await startMariadb();
    const session = await openSession({ ...rootOf(a) });
    try {
      await session.q.query('FLUSH BINARY LOGS');
      // the new file opens with its format description, Gtid_list and (once the old file is done) Binlog_checkpoint
      const file = await waitFor(async () => {
        const [st] = (await session.q.query('SHOW MASTER STATUS')) as unknown as [Record<string, unknown>[]];
        const f = String(st[0]?.['File']);
        const [ev] = (await session.q.query(`SHOW BINLOG EVENTS IN '${f}'`)) as unknown as [Record<string, unknown>[]];
        return ev.some((e) => e['Event_type'] === 'Binlog_checkpoint') ? { name: f, events: ev } : undefined;
      }, { what: 'the binlog checkpoint of the new file', timeoutMs: 10_000 });
      if (!file) throw new Error('unreachable: waitFor returns a value');
      const markers = file.events.filter((e) => e['Event_type'] === 'Gtid_list' || e['Event_type'] === 'Binlog_checkpoint');
      const from = Number(markers[0]!['Pos']);
      const to = Number(markers.at(-1)!['End_log_pos']);
      expect(await onlyMarkersBetween(session, { file: file.name, position: from }, { file: file.name, position: to })).toBe(true);
      // a committed transaction between the two positions is not a marker
      await session.q.query('CREATE DATABASE IF NOT EXISTS m');
      await session.q.query('CREATE TABLE IF NOT EXISTS m.t (id INT PRIMARY KEY) ENGINE=InnoDB');
      await session.q.query('INSERT INTO m.t VALUES (1)');
      const [st] = (await session.q.query('SHOW MASTER STATUS')) as unknown as [Record<string, unknown>[]];
      const end = Number(st[0]?.['Position']);
      expect(await onlyMarkersBetween(session, { file: file.name, position: from }, { file: file.name, position: end })).toBe(false);
      expect(await onlyMarkersBetween(session, { file: file.name, position: from }, { file: 'other.000001', position: to })).toBe(false);
    } finally {
      await session.end();
    }
  });
});
