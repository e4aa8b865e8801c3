import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { loadSchedules } from '../../src/config/schedules.js';
import { ConfigError } from '../../src/errors.js';
import { listTree, makeSandbox, runCliProcess, validConfig, validSchedules, writeSetup, type Sandbox } from './fixtures.js';

let sandbox: Sandbox;
beforeEach(async () => {
  sandbox = await makeSandbox();
});
afterEach(async () => {
  await sandbox.cleanup();
});

interface Case {
  name: string;
  /** changes the valid schedule files (name → data or raw text) */
  change: (files: Record<string, Record<string, any> | string>) => void;
  /** file named in the message */
  file: string;
  key: string;
  fix: string;
}

const INVALID: Case[] = [
  { name: 'unknown target', change: (f) => (daily(f).targets = ['local-dsk']), file: 'daily.yaml', key: 'targets[0]', fix: 'did you mean "local-disk"?' },
  { name: 'unknown target, no near match', change: (f) => (daily(f).targets = ['tape']), file: 'daily.yaml', key: 'targets[0]', fix: 'use one of local-disk, s3-main, dropbox-offsite' },
  { name: 'target listed twice', change: (f) => (daily(f).targets = ['local-disk', 'local-disk']), file: 'daily.yaml', key: 'targets[1]', fix: 'list each storage once' },
  { name: 'no targets', change: (f) => (daily(f).targets = []), file: 'daily.yaml', key: 'targets', fix: 'at least 1 item' },
  { name: 'invalid cron field', change: (f) => (daily(f).cron = '61 3 * * *'), file: 'daily.yaml', key: 'cron', fix: 'write five fields such as "0 3 * * *"' },
  { name: 'cron with four fields', change: (f) => (daily(f).cron = '0 3 * *'), file: 'daily.yaml', key: 'cron', fix: 'expected 5 or 6 fields' },
  { name: 'unknown time zone', change: (f) => (daily(f).timezone = 'Europe/Berln'), file: 'daily.yaml', key: 'timezone', fix: 'did you mean "Europe/Berlin"?' },
  { name: 'keep 0 without maxAge', change: (f) => (daily(f).retention = { keep: 0 }), file: 'daily.yaml', key: 'retention.keep', fix: 'use keep: 1 or more, or add maxAge' },
  { name: 'maxAge 0', change: (f) => (daily(f).retention = { maxAge: '0d' }), file: 'daily.yaml', key: 'retention.maxAge', fix: 'use a duration such as 30d' },
  { name: 'retention without rules', change: (f) => (daily(f).retention = {}), file: 'daily.yaml', key: 'retention', fix: 'add keep: N and/or maxAge: D' },
  { name: 'maxAge without unit', change: (f) => (daily(f).retention = { maxAge: 30 }), file: 'daily.yaml', key: 'retention.maxAge', fix: 'with a unit such as 30d' },
  { name: 'negative keep', change: (f) => (daily(f).retention = { keep: -1 }), file: 'daily.yaml', key: 'retention.keep', fix: 'must be at least 0' },
  { name: 'misspelt key', change: (f) => ((daily(f).taregts = daily(f).targets), delete daily(f).targets), file: 'daily.yaml', key: 'taregts', fix: 'did you mean "targets"?' },
  { name: 'duplicate tier', change: (f) => ((f['weekly.yaml'] as Record<string, any>).tier = 'daily'), file: 'weekly.yaml', key: 'tier', fix: 'give each tier its own name' },
  { name: 'bad tier name', change: (f) => (daily(f).tier = 'Daily Dumps'), file: 'daily.yaml', key: 'tier', fix: 'short lowercase name' },
  { name: 'database both included and excluded', change: (f) => Object.assign(daily(f), { databases: ['shop'], exclude: ['shop'] }), file: 'daily.yaml', key: 'exclude', fix: 'remove it from one of them' },
  { name: 'verify not a boolean', change: (f) => (daily(f).verify = 'yes please'), file: 'daily.yaml', key: 'verify', fix: 'write a boolean' },
  { name: 'YAML syntax error', change: (f) => (f['daily.yaml'] = 'tier: daily\ncron: "0 3 * * *\n'), file: 'daily.yaml', key: 'line 3', fix: 'invalid YAML: missing closing' },
];

function daily(files: Record<string, Record<string, any> | string>): Record<string, any> {
  return files['daily.yaml'] as Record<string, any>;
}

describe('loadSchedules', () => {
  it('loads valid schedules, sorted by file name, with defaults', async () => {
    const files = validSchedules();
    delete daily(files).timezone;
    await writeSetup(sandbox, validConfig(sandbox), files);
    const config = await loadConfig(sandbox.configFile);
    const schedules = await loadSchedules(config.schedulesDir, config);
    expect(schedules).toEqual([
      { tier: 'daily', cron: '0 3 * * *', timezone: 'UTC', targets: ['local-disk'], retention: { keep: 7 }, verify: false, users: false, file: join(sandbox.schedulesDir, 'daily.yaml') },
      {
        tier: 'monthly',
        cron: '0 5 1 * *',
        timezone: 'Europe/Berlin',
        targets: ['dropbox-offsite'],
        retention: { keep: 12, maxAgeMs: 400 * 86_400_000 },
        verify: false,
        users: false,
        file: join(sandbox.schedulesDir, 'monthly.yaml'),
      },
      { tier: 'weekly', cron: '0 4 * * 0', timezone: 'UTC', targets: ['s3-main'], retention: { keep: 5 }, verify: false, users: false, file: join(sandbox.schedulesDir, 'weekly.yaml') },
    ]);
  });

  it('treats an empty directory as no schedules and a missing one as an error', async () => {
    await writeSetup(sandbox, validConfig(sandbox), {});
    const config = await loadConfig(sandbox.configFile);
    expect(await loadSchedules(config.schedulesDir, config)).toEqual([]);
    await rm(sandbox.schedulesDir, { recursive: true });
    const error = await loadSchedules(config.schedulesDir, config).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(`schedules ${sandbox.schedulesDir}: directory not found`);
    expect((error as ConfigError).hint).toContain('schedulesDir');
  });

  it(`rejects ${INVALID.length} invalid schedules with one line naming file, key and fix`, async () => {
    for (const c of INVALID) {
      const files = validSchedules();
      c.change(files);
      await rm(sandbox.schedulesDir, { recursive: true, force: true });
      await mkdir(sandbox.schedulesDir);
      await writeSetup(sandbox, validConfig(sandbox), files);
      const config = await loadConfig(sandbox.configFile);
      const error = await loadSchedules(config.schedulesDir, config).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, c.name).toBeInstanceOf(ConfigError);
      const configError = error as ConfigError;
      expect(configError.exitCode, c.name).toBe(2);
      expect(configError.message, c.name).not.toContain('\n');
      expect(configError.message, c.name).toContain(`config ${join(sandbox.schedulesDir, c.file)}: ${c.key}`);
      expect(configError.message, c.name).toContain(c.fix);
      expect(configError.hint, c.name).toMatch(/^[A-Z].*\.$/);
    }
    for (const dir of sandbox.namedDirs) expect(existsSync(dir)).toBe(false);
  });

  it('exits 2 from the real CLI on a bad schedule and creates nothing', async () => {
    const files = validSchedules();
    daily(files).targets = ['local-dsk'];
    await writeSetup(sandbox, validConfig(sandbox), files);
    const before = await listTree(sandbox.dir);
    const result = await runCliProcess(['--config', sandbox.configFile, 'check']);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      `error: config ${join(sandbox.schedulesDir, 'daily.yaml')}: targets[0]: unknown storage "local-dsk"; did you mean "local-disk"?`,
      `hint: Targets name entries under \`storages\` in ${sandbox.configFile}.`,
    ]);
    expect(await listTree(sandbox.dir)).toEqual(before);
  });
});
