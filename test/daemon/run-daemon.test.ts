import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reassemble, type SegmentSource } from '../../src/binlog/reassemble.js';
import { loadConfig } from '../../src/config/load-config.js';
import { runDaemon } from '../../src/daemon/run-daemon.js';
import { createManifest, type ManifestRecord } from '../../src/manifest/manifest.js';
import { createSilentLogger } from '../../src/ops/logger.js';
import { buildStatus } from '../../src/ops/status.js';
import { openSpool } from '../../src/spool/spool.js';
import { createS3Storage } from '../../src/storage/s3/s3-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { startS3rver, stopAllS3rver, type S3rverHandle } from '../support/s3rver.js';
import { cliInProcess } from '../support/in-process-cli.js';
import { waitFor } from '../support/wait.js';

/**
 * `mysql-archiver run` end to end against a real MariaDB and a real S3 (s3rver): segments reach S3
 * within seconds, verified and in the manifest; S3 down only grows the spool; bad server settings
 * stop it before anything is written.
 */

let db: MariadbServer;
let s3: S3rverHandle;
let work: string;
let storage: Storage;
const env = (): NodeJS.ProcessEnv => ({ ...process.env, T_DB_PW: db.archiver.password, T_S3_ID: s3.credentials.accessKeyId, T_S3_SECRET: s3.credentials.secretAccessKey });

async function writeConfig(dir: string, port: number, user = 'archiver'): Promise<string> {
  const file = join(dir, 'config.yaml');
  await mkdir(join(dir, 'schedules'), { recursive: true });
  await writeFile(
    file,
    stringify({
      source: { host: '127.0.0.1', port, user, password: { env: 'T_DB_PW' }, serverId: 9601 },
      archiver: { storage: 's3', spoolDir: join(dir, 'spool'), stateDir: join(dir, 'state'), segment: { maxSeconds: 2 }, spoolMaxBytes: '1GiB' },
      storages: {
        s3: { type: 's3', bucket: s3.bucket, prefix: 'arch/', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: { env: 'T_S3_ID' }, secretAccessKey: { env: 'T_S3_SECRET' } } },
      },
      log: { level: 'warn', format: 'json' },
    }),
  );
  return file;
}

async function masterStatus(): Promise<{ file: string; position: number }> {
  const [row] = await db.query<{ File: string; Position: string | number }[]>('SHOW MASTER STATUS');
  return { file: row!.File, position: Number(row!.Position) };
}

async function segmentRecords(): Promise<ManifestRecord[]> {
  const out: ManifestRecord[] = [];
  for await (const r of createManifest(storage).records('segments/')) out.push(r);
  return out;
}

beforeAll(async () => {
  db = await startMariadb({ serverId: 601, initSql: ['CREATE DATABASE app', 'CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(40))'] });
  s3 = await startS3rver({ bucket: 'archive-daemon' });
  storage = createS3Storage({ bucket: s3.bucket, prefix: 'arch/', client: s3.client() });
  work = await mkdtemp(join(tmpdir(), 'daemon-'));
}, 120_000);

afterAll(async () => {
  await storage?.close?.();
  await stopAllS3rver();
  await stopAllMariadb();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('mysql-archiver run', () => {
  it('ships a committed transaction to S3, verified and in the manifest, within seconds; keeps reading while S3 is down', { timeout: 120_000 }, async () => {
    const config = await loadConfig(await writeConfig(work, db.port), { env: env() });
    const controller = new AbortController();
    const running = runDaemon(config, {
      logger: createSilentLogger(),
      signal: controller.signal,
      env: env(),
      archiverTuning: { heartbeatMs: 500, backoff: { minMs: 50, maxMs: 500 }, pollMs: 200 },
      statusEveryMs: 200,
    });
    try {
      await db.query("INSERT INTO app.t VALUES (1, 'first')");
      const committed = await masterStatus();
      const t0 = Date.now();
      // maxSeconds is 2: the file the server is still writing is sealed and shipped anyway
      await waitFor(async () => (await segmentRecords()).some((r) => r['serverFile'] === committed.file && Number(r['endPos']) >= committed.position), {
        what: 'the transaction to be in S3 and in the manifest',
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      const latencyMs = Date.now() - t0;
      expect(latencyMs).toBeLessThan(10_000);

      // S3 goes away: the archiver keeps reading into the spool
      await s3.stop();
      for (let i = 2; i < 6; i++) {
        await db.query(`INSERT INTO app.t VALUES (${i}, 'while S3 is down')`);
        await db.query('FLUSH BINARY LOGS');
      }
      // read-only: the daemon owns this spool, a second recovery could take its add in progress for a leftover
      const spool = await openSpool({ dir: config.archiver.spoolDir, maxBytes: config.archiver.spoolMaxBytes, logger: createSilentLogger(), readOnly: true });
      await waitFor(async () => (await spool.stats()).items >= 4, { what: 'segments to wait in the spool', timeoutMs: 20_000, intervalMs: 100 });
      expect((await buildStatus(config, Date.now())).archiver?.connected).toBe(true);

      await s3.restart();
      const end = await masterStatus();
      await waitFor(async () => (await spool.stats()).items === 0 && (await segmentRecords()).some((r) => r['serverFile'] === end.file && Number(r['endPos']) >= end.position), {
        what: 'the spool to drain into S3',
        timeoutMs: 60_000,
        intervalMs: 200,
      });
      // status while running: connected, positions, lag, spool, last sealed and shipped, no gaps
      const configFile = join(work, 'config.yaml');
      // the server may still log a small event after the rotations (a binlog checkpoint): its segment is
      // sealed and shipped on its own, so the status is read once nothing waits in the spool
      let status: Record<string, any> = {};
      await waitFor(async () => {
        const r = await cliInProcess(['--config', configFile, 'status', '--json'], env());
        status = JSON.parse(r.stdout) as Record<string, any>;
        return r.code === 0 && status['spool']?.items === 0;
      }, { what: 'status to report no problem and an empty spool', timeoutMs: 10_000, intervalMs: 200 });
      expect(status['daemon'].running).toBe(true);
      expect(status['archiver']).toMatchObject({ connected: true, gaps: [], needsFullDump: false });
      expect(status['archiver'].server.file).toBe(end.file);
      expect(status['archiver'].archived.file).toBe(end.file);
      expect(typeof status['archiver'].lagBytes).toBe('number');
      expect(status['spool']).toMatchObject({ items: 0, bytes: 0, full: false });
      expect(status['archiver'].lastSealed.name).toMatch(/^segments\/server-601\//);
      expect(status['lastShipped'].key).toMatch(/^segments\/server-601\//);
      const text = await cliInProcess(['--config', configFile, 'status'], env());
      expect(text.stdout).toMatch(/^daemon {5}running/m);
      expect(text.stdout).toMatch(/^ok {9}no problems/m);

      // a second daemon on the same directories is refused before it does anything
      const second = await cliInProcess(['--config', configFile, 'run'], env());
      expect(second.code).toBe(2);
      expect(second.stderr).toContain(`is in use by mysql-archiver pid ${process.pid}`);
      expect(second.stderr).toMatch(/archiver\.stateDir/);
    } finally {
      controller.abort();
      await running;
    }
    // stopped: status says so, with exit code 1 for monitoring
    const stopped = await cliInProcess(['--config', join(work, 'config.yaml'), 'status'], env());
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toMatch(/NOT RUNNING/);

    // the archive in S3 is complete and intact: every record verifies deep, every closed file rebuilds exactly
    const report = await createManifest(storage).verify({ prefix: 'segments/', deep: true });
    expect(report.missing).toEqual([]);
    expect(report.altered).toEqual([]);
    const records = await segmentRecords();
    expect(new Set(records.map((r) => r.key)).size).toBe(records.length);
    const files = [...new Set(records.map((r) => String(r['serverFile'])))].sort();
    const { readFile } = await import('node:fs/promises');
    for (const file of files.filter((f) => records.some((r) => r['serverFile'] === f && r['fileComplete'] === true))) {
      const segs = records.filter((r) => r['serverFile'] === file).sort((x, y) => Number(x['startPos']) - Number(y['startPos']));
      const sources: SegmentSource[] = segs.map((r) => ({ startPos: Number(r['startPos']), endPos: Number(r['endPos']), serverFile: file, open: () => storage.get(r.key!) }));
      const chunks: Buffer[] = [];
      await reassemble(sources, new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
      expect(Buffer.concat(chunks).equals(await readFile(join(db.binlogDir, file))), file).toBe(true);
    }

    // the command an operator uses: binlog fetch rebuilds a closed server file byte for byte
    const closedFile = files.find((f) => records.some((r) => r['serverFile'] === f && r['fileComplete'] === true))!;
    const fetched = join(work, 'fetched.bin');
    const fetch = await cliInProcess(['--config', join(work, 'config.yaml'), 'binlog', 'fetch', closedFile, '-o', fetched], env());
    expect(fetch.code, fetch.stderr).toBe(0);
    expect((await readFile(fetched)).equals(await readFile(join(db.binlogDir, closedFile)))).toBe(true);
    const listed = await cliInProcess(['--config', join(work, 'config.yaml'), 'list', 'segments'], env());
    expect(listed.stdout).toContain(`${records.length} segment(s)`);
  });

  it('refuses a server with binlog_format=STATEMENT: exit 2, the setting and the fix named, nothing written', { timeout: 60_000 }, async () => {
    const bad = await startMariadb({ serverId: 602, extraArgs: ['--binlog-format=STATEMENT'] });
    const dir = await mkdtemp(join(tmpdir(), 'daemon-bad-'));
    try {
      const file = await writeConfig(dir, bad.port);
      const result = await cliInProcess(['--config', file, 'run'], { ...env(), T_DB_PW: bad.archiver.password });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/binlog_format/);
      expect(result.stderr).toMatch(/ROW/);
      const { readdir } = await import('node:fs/promises');
      expect((await readdir(dir, { recursive: true })).sort()).toEqual(['config.yaml', 'schedules']);
    } finally {
      await bad.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a login without REPLICATION SLAVE: exit 2 naming the privilege', { timeout: 60_000 }, async () => {
    await db.query('SET sql_log_bin = 0');
    await db.query("CREATE USER IF NOT EXISTS 'weak'@'127.0.0.1' IDENTIFIED BY 'weak-pw-123'");
    await db.query("GRANT SELECT, RELOAD, REPLICATION CLIENT ON *.* TO 'weak'@'127.0.0.1'");
    const dir = await mkdtemp(join(tmpdir(), 'daemon-weak-'));
    try {
      const file = await writeConfig(dir, db.port, 'weak');
      const result = await cliInProcess(['--config', file, 'run'], { ...env(), T_DB_PW: 'weak-pw-123' });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/REPLICATION SLAVE/);
      expect(result.stderr).not.toContain('weak-pw-123');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

