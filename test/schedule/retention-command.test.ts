import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDumps } from '../../src/dump/index.js';
import { createManifest } from '../../src/manifest/manifest.js';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import { cliInProcess } from '../support/in-process-cli.js';
import { startMariadb, stopAllMariadb, type MariadbServer } from '../support/mariadb.js';
import { writeTestConfig } from '../support/config-file.js';

/** `retention [--dry-run]` on real dumps of a real MariaDB in a real local storage. */

let db: MariadbServer;
let work: string;

beforeAll(async () => {
  db = await startMariadb({ serverId: 821, initSql: ['CREATE DATABASE shop', 'CREATE TABLE shop.t (id INT PRIMARY KEY)', 'INSERT INTO shop.t SELECT seq FROM shop.seq_1_to_100'] });
  work = await mkdtemp(join(tmpdir(), 'retention-'));
  await writeTestConfig(work, db, 9821, { storages: { disk: { type: 'local', path: join(work, 'disk') } } });
  await writeFile(join(work, 'schedules', 'daily.yaml'), stringify({ tier: 'daily', cron: '0 3 * * *', targets: ['disk'], retention: { keep: 1 } }));
}, 120_000);

afterAll(async () => {
  await stopAllMariadb();
  if (work) await rm(work, { recursive: true, force: true });
});

const cli = (argv: string[]) => cliInProcess(['--config', join(work, 'config.yaml'), ...argv], { ...process.env, T_DB: db.archiver.password });

async function files(): Promise<string[]> {
  return (await readdir(join(work, 'disk'), { recursive: true })).map(String).filter((f) => !f.includes('.tmp')).sort();
}

describe('retention', () => {
  it('--dry-run prints the plan and deletes nothing; the real run deletes only what the dumps list, keeps the newest and records it', { timeout: 120_000 }, async () => {
    for (let i = 0; i < 3; i++) expect((await cli(['dump', '--tier', 'daily'])).code).toBe(0);
    const disk = createLocalStorage({ path: join(work, 'disk') });
    const dumps = await listDumps(disk, 'daily');
    expect(dumps).toHaveLength(3);
    // something this tool did not write, inside an old dump's folder
    const foreign = join(work, 'disk', dumps[0]!.prefix, 'operator-notes.txt');
    await writeFile(foreign, 'keep me');
    const before = await files();

    const dry = await cli(['retention', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(new RegExp(`^keep +disk +daily +${dumps[2]!.dumpId} .* newest dump$`, 'm'));
    expect(dry.stdout).toMatch(new RegExp(`^DELETE disk +daily +${dumps[0]!.dumpId} .* not among the newest 1$`, 'm'));
    expect(dry.stdout).toMatch(/^dry run: would delete 2 dump\(s\) and 0 segment\(s\); kept 1 dump\(s\)$/m);
    expect(await files()).toEqual(before);

    const real = await cli(['retention']);
    expect(real.code).toBe(0);
    expect(real.stdout).toMatch(/^deleted 2 dump\(s\) and 0 segment\(s\); kept 1 dump\(s\)$/m);
    expect((await listDumps(disk, 'daily')).map((d) => d.dumpId)).toEqual([dumps[2]!.dumpId]);
    const after = await files();
    // the foreign file is still there; nothing of the deleted dumps but it
    expect(after).toContain(join(dumps[0]!.prefix, 'operator-notes.txt'));
    expect(after.filter((f) => f.startsWith(dumps[1]!.prefix))).toEqual([]);
    // the manifest still verifies (records of deleted dumps went with them) and the deletion is an event
    expect(await createManifest(disk).verify({ deep: true })).toMatchObject({ missing: [], altered: [] });
    const events = [];
    for await (const r of createManifest(disk).records('events/retention/')) events.push(r);
    expect(events).toEqual([expect.objectContaining({ kind: 'retention', tier: 'daily' })]);
    expect([...(events[0]!['deleted'] as string[])].sort()).toEqual([dumps[0]!.dumpId, dumps[1]!.dumpId].sort());

    // running it again changes nothing
    const again = await cli(['retention']);
    expect(again.stdout).toMatch(/^deleted 0 dump\(s\)/m);
  });
});
