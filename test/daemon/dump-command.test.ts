import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManifest } from '../../src/manifest/manifest.js';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import { startFakeDropbox, type FakeDropbox } from '../support/fake-dropbox.js';
import { cliInProcess } from '../support/in-process-cli.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { writeTestConfig } from '../support/config-file.js';

/** `dump --tier`: every target gets a verified dump; a target that is down fails only itself. */

let db: MariadbServer;
let dbx: FakeDropbox;
let work: string;

beforeAll(async () => {
  db = await startMariadb({ serverId: 801, initSql: ['CREATE DATABASE shop', 'CREATE TABLE shop.orders (id INT PRIMARY KEY, total DECIMAL(10,2))', 'INSERT INTO shop.orders SELECT seq, seq / 7 FROM shop.seq_1_to_500'] });
  dbx = await startFakeDropbox({ accessTokens: ['t'] });
  work = await mkdtemp(join(tmpdir(), 'dump-cmd-'));
  await writeTestConfig(work, db, 9801, {
    storages: {
      disk: { type: 'local', path: join(work, 'disk') },
      offsite: { type: 'dropbox', root: '/d', apiBaseUrl: dbx.baseUrl, auth: { accessToken: { env: 'T_DBX' } } },
    },
  });
  await writeFile(join(work, 'schedules', 'daily.yaml'), stringify({ tier: 'daily', cron: '0 3 * * *', targets: ['disk', 'offsite'], retention: { keep: 7 } }));
}, 120_000);

afterAll(async () => {
  await dbx?.stop();
  await stopAllMariadb();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

describe('mysql-archiver dump --tier', () => {
  it('dumps to each target, reports the one that is down, and lists the dumps', { timeout: 120_000 }, async () => {
    await dbx.stop(); // the offsite provider is down
    const run = await cli(['--config', join(work, 'config.yaml'), 'dump', '--tier', 'daily']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^ok {4}disk: dumps\/daily\/\S+ \(1 tables, 500 rows, \d+ files, \d+ bytes at mysql-bin\.\d+:\d+\)$/m);
    expect(run.stdout).toMatch(/^FAIL {2}offsite: /m);

    // the dump is whole on the target that worked: dump.json recorded in the manifest, every file verifies
    const disk = createLocalStorage({ path: join(work, 'disk') });
    const records = [];
    for await (const r of createManifest(disk).records('dumps/')) records.push(r);
    expect(records).toEqual([expect.objectContaining({ kind: 'dump', tier: 'daily', files: expect.any(Number) })]);
    expect(await createManifest(disk).verify({ deep: true })).toMatchObject({ missing: [], altered: [] });

    const listed = await cli(['--config', join(work, 'config.yaml'), 'list', 'dumps']);
    expect(listed.stdout).toMatch(/^disk +daily +\S+ .* 1 tables +500 rows/m);
  });
});

function cli(argv: string[]) {
  return cliInProcess(argv, { ...process.env, T_DB: db.archiver.password, T_DBX: 't' });
}
