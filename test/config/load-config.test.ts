import { existsSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/load-config.js';
import { loadSchedules } from '../../src/config/schedules.js';
import { collectSecretRefs, resolveSecret, nodeSecretFs } from '../../src/config/secrets.js';
import { parseDuration, parseSize } from '../../src/config/sizes.js';
import { ConfigError } from '../../src/errors.js';
import { SecretRegistry } from '../../src/ops/redact.js';
import { listTree, makeSandbox, ROOT, runCliProcess, validConfig, writeSetup, type Sandbox } from './fixtures.js';

let sandbox: Sandbox;
beforeEach(async () => {
  sandbox = await makeSandbox();
});
afterEach(async () => {
  await sandbox.cleanup();
});

type Mutate = (c: Record<string, any>, s: Sandbox) => void;

interface Case {
  name: string;
  /** changes a valid config, or gives the whole file text */
  change: Mutate | string;
  /** the key path named in the message */
  key: string;
  /** words of the fix that must be on the same line */
  fix: string;
}

const INVALID: Case[] = [
  { name: 'plain-text password', change: (c) => (c.source.password = 'hunter2-very-secret'), key: 'source.password', fix: 'use { env: NAME } or { file: PATH }' },
  { name: 'bad env var name', change: (c) => (c.source.password = { env: '1-not-a-name' }), key: 'source.password.env', fix: 'environment variable name' },
  { name: 'relative secret file', change: (c) => (c.source.password = { file: 'db-password' }), key: 'source.password.file', fix: 'absolute path' },
  { name: 'env and file both', change: (c) => (c.source.password = { env: 'A', file: '/x' }), key: 'source.password', fix: 'exactly one of' },
  { name: 'misspelt key', change: (c) => ((c.source.serverld = c.source.serverId), delete c.source.serverId), key: 'source.serverld', fix: 'did you mean "serverId"?' },
  { name: 'missing serverId', change: (c) => delete c.source.serverId, key: 'source.serverId', fix: 'add it' },
  { name: 'serverId 0', change: (c) => (c.source.serverId = 0), key: 'source.serverId', fix: 'must be at least 1' },
  { name: 'serverId above 32 bits', change: (c) => (c.source.serverId = 2 ** 32), key: 'source.serverId', fix: 'at most 4294967295' },
  { name: 'port as text', change: (c) => (c.source.port = 'mysql'), key: 'source.port', fix: 'write a number' },
  { name: 'unknown archiver storage', change: (c) => (c.archiver.storage = 's3-mian'), key: 'archiver.storage', fix: 'did you mean "s3-main"?' },
  { name: 'spool smaller than two segments', change: (c) => (c.archiver.spoolMaxBytes = '300MiB'), key: 'archiver.spoolMaxBytes', fix: 'at least twice archiver.segment.maxBytes' },
  { name: 'unknown dump codec', change: (c) => (c.dump = { compression: 'lz4' }), key: 'dump.compression', fix: '"auto"' },
  { name: 'dump concurrency 0', change: (c) => (c.dump = { concurrency: 0 }), key: 'dump.concurrency', fix: 'must be at least 1' },
  { name: 'unparseable size', change: (c) => (c.archiver.segment.maxBytes = 'lots'), key: 'archiver.segment.maxBytes', fix: 'such as 512KiB, 256MiB' },
  { name: 'relative spoolDir', change: (c) => (c.archiver.spoolDir = 'spool'), key: 'archiver.spoolDir', fix: 'absolute path' },
  { name: 'stateDir inside spoolDir', change: (c, s) => (c.archiver.stateDir = join(s.dir, 'spool', 'state')), key: 'archiver.stateDir', fix: 'separate directories' },
  { name: 'unknown storage type', change: (c) => (c.storages['local-disk'].type = 'ftp'), key: 'storages.local-disk.type', fix: 'use one of local, s3, dropbox' },
  { name: 'invalid bucket name', change: (c) => (c.storages['s3-main'].bucket = 'My_Backups'), key: 'storages.s3-main.bucket', fix: 'lowercase letters' },
  { name: 'prefix with leading slash', change: (c) => (c.storages['s3-main'].prefix = '/prod/'), key: 'storages.s3-main.prefix', fix: 'write "prod/"' },
  { name: 'plain-text S3 secret', change: (c) => (c.storages['s3-main'].credentials.secretAccessKey = 'wJalrXUtnFEMI/K7MDENG'), key: 'storages.s3-main.credentials.secretAccessKey', fix: '{ env: NAME }' },
  { name: 'endpoint not a URL', change: (c) => (c.storages['s3-main'].endpoint = 'minio:9000'), key: 'storages.s3-main.endpoint', fix: 'http://' },
  { name: 'bad object lock mode', change: (c) => (c.storages['s3-main'].objectLock = { mode: 'STRICT', days: 30 }), key: 'storages.s3-main.objectLock.mode', fix: 'must be one of "GOVERNANCE", "COMPLIANCE"' },
  { name: 'part size below S3 minimum', change: (c) => (c.storages['s3-main'].partSize = '1MiB'), key: 'storages.s3-main.partSize', fix: 'at least 5MiB' },
  { name: 'dropbox refresh without secret', change: (c) => delete c.storages['dropbox-offsite'].auth.clientSecret, key: 'storages.dropbox-offsite.auth.clientSecret', fix: 'add clientSecret' },
  { name: 'dropbox auth empty', change: (c) => (c.storages['dropbox-offsite'].auth = {}), key: 'storages.dropbox-offsite.auth', fix: 'add accessToken, or refreshToken' },
  { name: 'dropbox relative root', change: (c) => (c.storages['dropbox-offsite'].root = 'backups'), key: 'storages.dropbox-offsite.root', fix: 'write "/backups"' },
  { name: 'dropbox chunk not 4MiB multiple', change: (c) => (c.storages['dropbox-offsite'].chunkSize = '6MiB'), key: 'storages.dropbox-offsite.chunkSize', fix: 'multiple of 4MiB' },
  { name: 'local path overlapping the spool', change: (c, s) => (c.storages['local-disk'].path = join(s.dir, 'spool')), key: 'storages.local-disk.path', fix: 'use a separate directory' },
  { name: 'no storages', change: (c) => ((c.storages = {}), (c.archiver.storage = 'x')), key: 'storages', fix: 'add at least one' },
  { name: 'bad log level', change: (c) => (c.log.level = 'loud'), key: 'log.level', fix: 'must be one of "error", "warn"' },
  { name: 'unknown top-level key', change: (c) => (c.notify = { slack: true }), key: 'notify', fix: 'remove it' },
  { name: 'rds without sourceInstance', change: (c) => (c.rds = { region: 'eu-west-1' }), key: 'rds.sourceInstance', fix: 'add it' },
  { name: 'rds instance id with underscore', change: (c) => (c.rds = { region: 'eu-west-1', sourceInstance: 'prod_db' }), key: 'rds.sourceInstance', fix: 'letters, digits and single hyphens' },
  { name: 'rds security group by name', change: (c) => (c.rds = { region: 'eu-west-1', sourceInstance: 'prod-db', securityGroups: ['default'] }), key: 'rds.securityGroups[0]', fix: 'sg-0123456789abcdef0' },
  { name: 'rds plain-text login password', change: (c) => (c.rds = { region: 'eu-west-1', sourceInstance: 'prod-db', login: { user: 'admin', password: 'pw-in-the-clear' } }), key: 'rds.login.password', fix: 'use { env: NAME } or { file: PATH }' },
  { name: 'unknown restore time zone', change: (c) => (c.restore = { timezone: 'Europe/Berln' }), key: 'restore.timezone', fix: 'did you mean "Europe/Berlin"?' },
  { name: 'YAML syntax error', change: 'source:\n  host: [127.0.0.1\n', key: 'line 3', fix: 'invalid YAML' },
  { name: 'duplicate YAML key', change: 'source:\n  host: a\n  host: b\n', key: 'line 3', fix: 'unique' },
  { name: 'empty file', change: '# nothing yet\n', key: 'the file is empty', fix: 'the file is empty' },
];

function configFor(c: Case): Record<string, any> | string {
  if (typeof c.change === 'string') return c.change;
  const config = validConfig(sandbox);
  c.change(config, sandbox);
  return config;
}

describe('loadConfig', () => {
  it('loads examples/config.yaml and the default schedules against it', async () => {
    const config = await loadConfig(join(ROOT, 'examples/config.yaml'));
    expect(config.source).toMatchObject({ host: '127.0.0.1', port: 3306, serverId: 4242, password: { env: 'MYSQL_ARCHIVER_DB_PASSWORD' } });
    expect(config.archiver.spoolMaxBytes).toBe(10 * 1024 ** 3);
    expect(config.archiver.segment).toEqual({ maxSeconds: 300, maxBytes: 256 * 1024 ** 2 });
    expect(Object.keys(config.storages).sort()).toEqual(['dropbox-offsite', 'local-disk', 's3-main']);
    expect(config.storages['s3-main']).toMatchObject({ type: 's3', bucket: 'my-backups', prefix: 'prod/', forcePathStyle: false });
    expect(config.schedulesDir).toBe(join(ROOT, 'examples/schedules'));

    const schedules = await loadSchedules(join(ROOT, 'schedules'), config);
    expect(schedules.map((s) => [s.tier, s.targets, s.retention])).toEqual([
      ['daily', ['local-disk'], { keep: 7 }],
      ['monthly', ['dropbox-offsite'], { keep: 12, maxAgeMs: 400 * 86_400_000 }],
      ['weekly', ['s3-main'], { keep: 5 }],
    ]);
  });

  it('applies defaults and normalises prefixes and roots', () => {
    const text = `
source: { user: archiver, serverId: 7 }
archiver: { storage: s3 }
storages:
  s3: { type: s3, bucket: b-1, prefix: "a/b", region: us-east-1 }
  dbx: { type: dropbox, root: "/", auth: { accessToken: { env: T } } }
schedulesDir: ../elsewhere
`;
    const config = parseConfig(text, '/etc/mysql-archiver/config.yaml');
    expect(config.source).toEqual({ host: '127.0.0.1', port: 3306, user: 'archiver', serverId: 7 });
    expect(config.archiver).toEqual({
      storage: 's3',
      spoolDir: '/var/lib/mysql-archiver/spool',
      spoolMaxBytes: 10 * 1024 ** 3,
      stateDir: '/var/lib/mysql-archiver/state',
      segment: { maxSeconds: 300, maxBytes: 256 * 1024 ** 2 },
      uploadConcurrency: 2,
    });
    expect(config.storages['s3']).toMatchObject({ prefix: 'a/b/' });
    expect(config.storages['dbx']).toMatchObject({ root: '', auth: { accessToken: { env: 'T' } } });
    expect(config.log).toEqual({ level: 'info', format: 'auto' });
    expect(config.dump).toEqual({ mode: 'backup-stage', concurrency: 2, compression: 'auto', chunkSize: 64 * 1024 ** 2 });
    expect(config.schedulesDir).toBe('/etc/elsewhere');
    expect(config.configFile).toBe('/etc/mysql-archiver/config.yaml');
  });

  it('loads the sandbox setup and lists every secret reference', async () => {
    await writeSetup(sandbox, validConfig(sandbox));
    const config = await loadConfig(sandbox.configFile);
    expect(config.schedulesDir).toBe(sandbox.schedulesDir);
    expect((await loadSchedules(config.schedulesDir, config)).map((s) => s.tier)).toEqual(['daily', 'monthly', 'weekly']);
    expect(collectSecretRefs(config).map((r) => r.path)).toEqual([
      'source.password',
      'storages.s3-main.credentials.accessKeyId',
      'storages.s3-main.credentials.secretAccessKey',
      'storages.dropbox-offsite.auth.refreshToken',
      'storages.dropbox-offsite.auth.clientSecret',
    ]);
  });

  it(`rejects ${INVALID.length} invalid configurations with one line naming the key and the fix`, async () => {
    const before = await listTree(sandbox.dir);
    for (const c of INVALID) {
      await writeSetup(sandbox, configFor(c), {});
      const error = await loadConfig(sandbox.configFile).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, c.name).toBeInstanceOf(ConfigError);
      const configError = error as ConfigError;
      expect(configError.exitCode, c.name).toBe(2);
      expect(configError.message, c.name).not.toContain('\n');
      expect(configError.message, c.name).toContain(`config ${sandbox.configFile}: ${c.key}`);
      expect(configError.message, c.name).toContain(c.fix);
      expect(configError.hint, c.name).toMatch(/^[A-Z].*\.$/);
      expect(configError.message + configError.hint, c.name).not.toContain('hunter2');
      expect(configError.message + configError.hint, c.name).not.toContain('wJalrXUtnFEMI');
    }
    for (const dir of sandbox.namedDirs) expect(existsSync(dir)).toBe(false);
    expect(before).toEqual(['schedules']);
    expect(await listTree(sandbox.dir)).toEqual(['config.yaml', 'schedules']);
  });

  it('names --config when the file is missing', async () => {
    const error = await loadConfig(join(sandbox.dir, 'nope.yaml')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe(`config ${join(sandbox.dir, 'nope.yaml')}: file not found`);
    expect((error as ConfigError).hint).toContain('--config');
  });

  it('exits 2 from the real CLI with one error line, no secret and nothing created', async () => {
    const cases = INVALID.filter((c) =>
      ['plain-text password', 'misspelt key', 'unknown archiver storage', 'YAML syntax error', 'dropbox refresh without secret'].includes(c.name),
    );
    expect(cases).toHaveLength(5);
    for (const c of cases) {
      await writeSetup(sandbox, configFor(c));
      const result = await runCliProcess(['--config', sandbox.configFile, 'check']);
      expect(result.code, c.name).toBe(2);
      expect(result.stdout, c.name).toBe('');
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines, c.name).toHaveLength(2);
      expect(lines[0], c.name).toMatch(new RegExp(`^error: config ${escape(sandbox.configFile)}: ${escape(c.key)}`));
      expect(lines[0], c.name).toContain(c.fix);
      expect(lines[1], c.name).toMatch(/^hint: [A-Z]/);
      expect(result.stderr).not.toContain('hunter2');
      for (const dir of sandbox.namedDirs) expect(existsSync(dir), c.name).toBe(false);
    }
    const missing = await runCliProcess(['--config', join(sandbox.dir, 'missing.yaml'), 'check']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('file not found');
    expect(missing.stderr).toContain('hint: Pass --config PATH');
  });
});

describe('resolveSecret', () => {
  it('reads env vars and files, registers the value, names the source on errors', async () => {
    const registry = new SecretRegistry();
    expect(await resolveSecret({ env: 'PW' }, { PW: 's3cr3t-value' }, nodeSecretFs, { registry })).toBe('s3cr3t-value');
    const file = join(sandbox.dir, 'secret');
    await writeFile(file, 'file-secret-value\n', { mode: 0o600 });
    const warnings: string[] = [];
    expect(await resolveSecret({ file }, {}, nodeSecretFs, { registry, warn: (m) => warnings.push(m) })).toBe('file-secret-value');
    expect(warnings).toEqual([]);
    expect(registry.values()).toEqual(expect.arrayContaining(['s3cr3t-value', 'file-secret-value']));

    await chmod(file, 0o644);
    await resolveSecret({ file }, {}, nodeSecretFs, { registry, warn: (m) => warnings.push(m) });
    expect(warnings).toEqual([`secret file ${file} is readable by every user (mode 0644); run chmod 600 ${file}`]);

    const missingEnv = await resolveSecret({ env: 'NOPE' }, {}, nodeSecretFs, { registry, label: 'source.password' }).catch((e: unknown) => e);
    expect(missingEnv).toBeInstanceOf(ConfigError);
    expect((missingEnv as ConfigError).message).toBe('source.password: environment variable NOPE is not set');
    const missingFile = await resolveSecret({ file: join(sandbox.dir, 'none') }, {}, nodeSecretFs, { registry }).catch((e: unknown) => e);
    expect((missingFile as ConfigError).message).toBe(`secret file ${join(sandbox.dir, 'none')} does not exist`);
    await writeFile(file, '\n');
    const empty = await resolveSecret({ file }, {}, nodeSecretFs, { registry }).catch((e: unknown) => e);
    expect((empty as ConfigError).message).toBe(`secret file ${file} is empty`);
  });
});

describe('sizes and durations', () => {
  it.each([
    ['10GiB', 10 * 1024 ** 3],
    ['256MiB', 256 * 1024 ** 2],
    ['512KiB', 512 * 1024],
    ['64MB', 64_000_000],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['4096', 4096],
    [1234, 1234],
  ])('parseSize(%s) = %d', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each([['30d', 30 * 86_400_000], ['12h', 12 * 3_600_000], ['1h30m', 5_400_000], ['45s', 45_000], ['2w', 14 * 86_400_000], [90, 90_000]])(
    'parseDuration(%s) = %d',
    (input, ms) => {
      expect(parseDuration(input)).toBe(ms);
    },
  );

  it.each(['', 'lots', '10 parsecs', '-1MiB', '1.2.3GiB'])('parseSize rejects %j', (input) => {
    expect(() => parseSize(input)).toThrow(/invalid size/);
  });

  it.each(['', 'forever', '30', 'd30', '1h 30x'])('parseDuration rejects %j', (input) => {
    expect(() => parseDuration(input)).toThrow(/invalid duration/);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
