import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BinlogArchiver } from '../../src/binlog/archiver.js';
import type { Gap } from '../../src/binlog/continuity.js';
import type { SealedSegment } from '../../src/binlog/segment-writer.js';
import { createSilentLogger } from '../../src/ops/logger.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

/**
 * Nothing is skipped silently: a purged binlog, RESET MASTER and another server behind the same
 * address each become a gap with its exact range, and archiving goes on from what can be read.
 */

let a: MariadbServer;
let proxy: TcpProxy;
let work: string;
const gaps: Gap[] = [];
const sealed: SealedSegment[] = [];

interface Running {
  archiver: BinlogArchiver;
  stop(): Promise<void>;
}

function startArchiver(password: string, stateDir = join(work, 'state')): Running {
  const controller = new AbortController();
  const archiver = new BinlogArchiver({
    source: { host: '127.0.0.1', port: proxy.port, user: 'archiver', password, serverId: 9501 },
    stateDir,
    maxSeconds: 1,
    maxBytes: 1024 * 1024,
    heartbeatMs: 300,
    backoff: { minMs: 50, maxMs: 200 },
    logger: createSilentLogger(),
    signal: controller.signal,
    async sink(segment) {
      const target = join(work, 'out', segment.name);
      await mkdir(dirname(target), { recursive: true });
      await rename(segment.path, target);
      sealed.push({ ...segment, path: target });
    },
    async onGap(gap) {
      gaps.push(gap);
    },
  });
  const done = archiver.run();
  return {
    archiver,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

async function masterStatus(server: MariadbServer): Promise<{ file: string; position: number }> {
  const [row] = await server.query<{ File: string; Position: string | number }[]>('SHOW MASTER STATUS');
  return { file: row!.File, position: Number(row!.Position) };
}

async function caughtUp(r: Running, server: MariadbServer): Promise<void> {
  await waitFor(
    async () => {
      const end = await masterStatus(server);
      const at = r.archiver.status.archived;
      return at?.file === end.file && at.position === end.position;
    },
    { what: 'the archiver to seal everything the server wrote', timeoutMs: 30_000, intervalMs: 50 },
  );
}

beforeAll(async () => {
  a = await startMariadb({ serverId: 501, initSql: ['CREATE DATABASE app', 'CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))'] });
  proxy = await startTcpProxy(a.port);
  work = await mkdtemp(join(tmpdir(), 'archiver-gaps-'));
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await stopAllMariadb();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

/** server bytes [4, end) of `file` are covered by the sealed segments exactly once */
function coveredOnce(file: string, end: number): boolean {
  const segs = sealed.filter((s) => s.serverFile === file).sort((x, y) => x.startPos - y.startPos);
  let pos = 4;
  for (const s of segs) {
    if (s.startPos !== pos) return false;
    pos = s.endPos;
  }
  return pos === end;
}

describe('reconnects without losing or repeating a byte', () => {
  it('after a killed dump thread, a dropped network, a half-open connection and a server restart', { timeout: 120_000 }, async () => {
    const r = startArchiver(a.archiver.password);
    const write = async (v: string) => a.query(`INSERT INTO app.t VALUES (${100 + sealed.length + Math.floor(Math.random() * 1e6)}, '${v}')`);
    const reconnected = async (before: number) =>
      waitFor(() => r.archiver.status.reconnects > before && r.archiver.status.connected, { what: 'the archiver to reconnect', timeoutMs: 30_000, intervalMs: 20 });
    await write('start');
    await caughtUp(r, a);

    // the server kills the dump thread
    let before = r.archiver.status.reconnects;
    const threads = await a.query<{ Id: number; Command: string }[]>('SHOW PROCESSLIST');
    for (const t of threads.filter((t) => /Binlog Dump/i.test(t.Command))) await a.query(`KILL ${t.Id}`);
    await write('after kill');
    await reconnected(before);
    await caughtUp(r, a);

    // the network drops every connection
    before = r.archiver.status.reconnects;
    proxy.cutAll();
    await write('after drop');
    await reconnected(before);
    await caughtUp(r, a);

    // the connection stays open but nothing moves: only the heartbeat watchdog can tell
    before = r.archiver.status.reconnects;
    proxy.freeze();
    await waitFor(() => !r.archiver.status.connected || r.archiver.status.reconnects > before, { what: 'the half-open connection to be noticed', timeoutMs: 30_000, intervalMs: 20 });
    proxy.thaw();
    proxy.cutAll();
    await write('after half-open');
    await reconnected(before);
    await caughtUp(r, a);

    // the server restarts (a crash: SIGKILL, then recovery)
    before = r.archiver.status.reconnects;
    await a.kill();
    await a.restart();
    await write('after restart');
    await reconnected(before);
    await caughtUp(r, a);
    await r.stop();

    expect(gaps).toEqual([]);
    const logs = await a.query<{ Log_name: string; File_size: string }[]>('SHOW BINARY LOGS');
    const end = await masterStatus(a);
    for (const log of logs) {
      const size = log.Log_name === end.file ? end.position : Number(log.File_size);
      expect(coveredOnce(log.Log_name, size), `${log.Log_name} covered exactly once up to ${size}`).toBe(true);
    }
    sealed.length = 0;
  });
});

describe('gaps in the binlog archive', () => {
  it('a binlog purged while the archiver was down is a gap from the checkpoint to the oldest file left', { timeout: 60_000 }, async () => {
    const r = startArchiver(a.archiver.password);
    await a.query("INSERT INTO app.t VALUES (1, 'archived')");
    await caughtUp(r, a);
    await r.stop();
    const checkpoint = r.archiver.checkpoint!.next;

    await a.query("INSERT INTO app.t VALUES (2, 'lost')");
    await a.query('FLUSH BINARY LOGS');
    await a.query("INSERT INTO app.t VALUES (3, 'lost too')");
    await a.query('FLUSH BINARY LOGS');
    const oldestLeft = (await masterStatus(a)).file;
    // a file is purged only once the server no longer needs it for crash recovery (its binlog
    // checkpoint comes asynchronously), so ask until it is really gone
    await waitFor(
      async () => {
        await a.query(`PURGE BINARY LOGS TO '${oldestLeft}'`);
        const logs = await a.query<{ Log_name: string }[]>('SHOW BINARY LOGS');
        return logs[0]!.Log_name === oldestLeft;
      },
      { what: `the server to purge the binlogs before ${oldestLeft}`, timeoutMs: 20_000, intervalMs: 100 },
    );
    await a.query("INSERT INTO app.t VALUES (4, 'after')");

    const r2 = startArchiver(a.archiver.password);
    await caughtUp(r2, a);
    await r2.stop();
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ reason: 'purged', source: 'server-501', from: checkpoint, to: { file: oldestLeft, position: 4, source: 'server-501' } });
    expect(r2.archiver.status.needsFullDump).toBe(true);
    // archiving went on in the file that was left
    expect(sealed.some((s) => s.serverFile === oldestLeft && s.startPos === 4)).toBe(true);
  });

  it('RESET MASTER under a running archiver is a gap, and the new history goes under a new epoch', { timeout: 60_000 }, async () => {
    gaps.length = 0;
    const r = startArchiver(a.archiver.password);
    await a.query("INSERT INTO app.t VALUES (5, 'before reset')");
    await caughtUp(r, a);
    const before = r.archiver.checkpoint!.next;
    await a.query('RESET MASTER');
    await a.query("INSERT INTO app.t VALUES (6, 'after reset')");
    await waitFor(() => gaps.length === 1, { what: 'a gap to be reported', timeoutMs: 30_000 });
    await caughtUp(r, a);
    await r.stop();
    expect(gaps[0]).toMatchObject({ reason: 'reset', source: 'server-501', from: before, to: { file: 'mysql-bin.000001', position: 4, source: 'server-501-e2' } });
    expect(sealed.some((s) => s.source === 'server-501-e2' && s.serverFile === 'mysql-bin.000001')).toBe(true);
  });

  it('a different server behind the same address is a gap, never mixed into the old history', { timeout: 90_000 }, async () => {
    gaps.length = 0;
    const r = startArchiver(a.archiver.password);
    await a.query("INSERT INTO app.t VALUES (7, 'old server')");
    await caughtUp(r, a);
    const before = r.archiver.checkpoint!.next;

    const b = await startMariadb({ serverId: 502 });
    await b.query('SET sql_log_bin = 0');
    await b.query(`ALTER USER 'archiver'@'127.0.0.1' IDENTIFIED BY '${a.archiver.password}'`);
    await b.query('CREATE DATABASE other');
    proxy.setTarget(b.port);
    proxy.cutAll();
    await waitFor(() => gaps.length === 1, { what: 'a gap to be reported', timeoutMs: 30_000 });
    await caughtUp(r, b);
    await r.stop();
    expect(gaps[0]).toMatchObject({ reason: 'different-server', source: 'server-501-e2', from: before, to: { position: 4, source: 'server-502-e3' } });
    expect(sealed.some((s) => s.source === 'server-502-e3')).toBe(true);
    // nothing of server 502 was written under an old name
    expect(sealed.filter((s) => s.serverId === 502).every((s) => s.source === 'server-502-e3')).toBe(true);
  });
});
