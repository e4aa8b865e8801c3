/**
 * tricky.sql plus rounds of tricky-churn.sql, archived by the real daemon, with two dumps:
 * - `restore pitr` of a chosen moment into a fresh server;
 * - `restore table` of every base table of `tricky` as of that moment, each equal (rows and
 *   content) to the same table after the full replay;
 * - `verify` (the restore drill) passes, and fails naming the object when a segment is altered
 *   or removed.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listSegments } from '../../../src/binlog/archive-catalog.js';
import { readLastDrill } from '../../../src/restore/drill.js';
import { listDumps } from '../../../src/dump/index.js';
import { createLocalStorage } from '../../../src/storage/local/local-storage.js';
import { runChurn, runSqlFile, TRICKY_SQL } from '../../support/mariadb-cli.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../../support/mariadb.js';
import { fingerprintTable } from '../../support/table-fingerprint.js';
import { startArchiveRig, type ArchiveRig } from './rig.js';

let source: MariadbServer;
let fresh: MariadbServer;
let rig: ArchiveRig;
let moment: string;
let tables: string[];
/** every tricky table as it was at `moment` */
const atMoment = new Map<string, { rows: number; digest: string }>();

beforeAll(async () => {
  source = await startMariadb({ serverId: 841 });
  rig = await startArchiveRig(source, 9841, {}, { users: true });
  await runSqlFile(source, TRICKY_SQL);
  // an application account: a disaster-recovery restore must bring it back
  await source.query("CREATE USER 'app_reader'@'%' IDENTIFIED BY 'reader-secret-1'");
  await source.query("GRANT SELECT ON tricky.* TO 'app_reader'@'%'");
  for (let i = 0; i < 2; i++) await runChurn(source);
  await rig.dump();
  for (let i = 0; i < 3; i++) await runChurn(source);
  await rig.dump();
  for (let i = 0; i < 3; i++) await runChurn(source);
  const rows = await source.query<{ t: string }[]>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'tricky' AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1");
  tables = rows.map((r) => r.t);
  const conn = await source.connectRoot();
  for (const t of tables) {
    const f = await fingerprintTable(conn, 'tricky', t);
    atMoment.set(t, { rows: f.rows, digest: f.digest });
  }
  await conn.end();
  await rig.nextSecond();
  moment = new Date().toISOString();
  await rig.nextSecond();
  for (let i = 0; i < 2; i++) await runChurn(source);
  await rig.waitArchived();
  fresh = await startMariadb({ serverId: 842 });
}, 300_000);

afterAll(async () => {
  await rig?.stop();
  await stopAllMariadb();
}, 60_000);

describe('restores of the tricky database', () => {
  it('restore pitr into a fresh server, then every table restored alone equals its full-replay twin', { timeout: 300_000 }, async () => {
    // the fresh server's own login, in a config of its own
    const pitrConfig = join(rig.work, 'pitr.yaml');
    const base = await readFile(rig.configFile, 'utf8');
    await writeFile(pitrConfig, base.replace(/restore:\n(?: {2}.*\n)+/m, stringify({ restore: { target: { host: '127.0.0.1', port: fresh.port, user: fresh.rootUser, password: { env: 'T_FRESH' } } } })));
    const env = { ...rig.env, T_FRESH: fresh.rootPassword };
    const dry = await rig.cliWith(pitrConfig, ['restore', 'pitr', '--at', moment, '--target', `127.0.0.1:${fresh.port}`, '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/dump: +\S+ on disk/);
    const pitr = await rig.cliWith(pitrConfig, ['restore', 'pitr', '--at', moment, '--target', `127.0.0.1:${fresh.port}`], env);
    expect(pitr.stderr).toBe('');
    expect(pitr.code).toBe(0);
    expect(pitr.stdout).toMatch(/restored \d+ table\(s\) and replayed \d+ event\(s\)/);
    expect(pitr.stdout.indexOf('plan:')).toBeGreaterThanOrEqual(0);
    expect(pitr.stdout.indexOf('plan:')).toBeLessThan(pitr.stdout.indexOf('replay:'));
    // the dump's users came along, with their grants and password
    const grants = await fresh.query<Record<string, string>[]>("SHOW GRANTS FOR 'app_reader'@'%'");
    expect(grants.map((g) => Object.values(g)[0]).join('\n')).toMatch(/GRANT SELECT ON `tricky`\.\* TO `app_reader`@`%`/);
    // a second run refuses: the target is no longer fresh
    const again = await rig.cliWith(pitrConfig, ['restore', 'pitr', '--at', moment, '--target', `127.0.0.1:${fresh.port}`], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already has tricky/);

    await source.query('CREATE DATABASE IF NOT EXISTS tricky_back');
    const freshConn = await fresh.connectRoot();
    const sourceConn = await source.connectRoot();
    try {
      expect(tables.length).toBeGreaterThan(5);
      for (const table of tables) {
        const q = (n: string) => `\`${n.replaceAll('`', '``')}\``;
        const r = await rig.cli(['restore', 'table', `${q('tricky')}.${q(table)}`, '--at', moment, '--into', `${q('tricky_back')}.${q(table)}`]);
        expect(r.stderr, table).toBe('');
        expect(r.code, table).toBe(0);
        const single = await fingerprintTable(sourceConn, 'tricky_back', table);
        const full = await fingerprintTable(freshConn, 'tricky', table);
        // the full restore equals the source at that moment, and the single-table one equals both
        expect({ rows: full.rows, digest: full.digest }, table).toEqual(atMoment.get(table));
        expect(single.rows, table).toBe(full.rows);
        expect(single.digest, table).toBe(full.digest);
      }
    } finally {
      await freshConn.end();
      await sourceConn.end();
    }
  });

  it('verify: the drill passes on the healthy archive and fails loudly, naming the object, when a segment is altered or removed', { timeout: 300_000 }, async () => {
    const ok = await rig.cli(['verify']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/drill passed: dump \S+ restored, binlog replayed to dump \S+ and all \d+ table\(s\) equal to its checksums/);
    const status = await rig.cli(['status']);
    expect(status.stdout).toMatch(/^drill +passed at /m);

    // the segments between the two dumps are what the drill replays: alter the one after the older dump's position
    const disk = createLocalStorage({ path: join(rig.work, 'disk') });
    const segs = await listSegments(disk);
    const [older] = await listDumps(disk, 'daily');
    const at = older!.coordinates!;
    const victim = segs.find((s) => s.serverFile === at.file && s.startPos <= at.position && at.position < s.endPos) ?? segs.find((s) => s.serverFile === at.file && s.startPos >= at.position)!;
    const path = join(rig.work, 'disk', victim.key);
    const original = await readFile(path);
    const altered = Buffer.from(original);
    altered.writeUInt8(altered.readUInt8(altered.length - 5) ^ 0x01, altered.length - 5);
    await writeFile(path, altered);
    const bad = await rig.cli(['verify']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^RESTORE DRILL FAILED: .*differs from its manifest record/m);
    expect(bad.stderr).toContain(victim.key);
    expect((await readLastDrill(join(rig.work, 'state')))?.ok).toBe(false);
    expect((await rig.cli(['status'])).stdout).toMatch(/PROBLEM +the last restore drill FAILED/);

    await rm(path);
    const gone = await rig.cli(['verify']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/RESTORE DRILL FAILED: .*(not found|no such|missing|ENOENT)/i);
    expect(gone.stderr).toContain(victim.key);
    await writeFile(path, original);
  });
});
