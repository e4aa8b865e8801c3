import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseRestorePoint } from '../../src/cli/args.js';
import { runCli } from '../../src/cli/program.js';
import type { CliContext, ConfiguredDeps, InterruptSignal } from '../../src/cli/run-command.js';
import { defaultUseCases, type UseCases } from '../../src/cli/use-cases.js';
import { ArchiverError, OperationAbortedError } from '../../src/errors.js';
import { registerSecret } from '../../src/ops/redact.js';
import { makeSandbox, ROOT, runCliProcess, validConfig, writeSetup, type Sandbox } from '../config/fixtures.js';

const COMMANDS = ['run', 'check', 'status', 'dump', 'list', 'restore', 'verify', 'retention', 'rds', 'demo', 'spool', 'binlog'];
const LEAVES = [
  ['run'],
  ['check'],
  ['status'],
  ['dump'],
  ['list'],
  ['restore', 'table'],
  ['restore', 'pitr'],
  ['verify'],
  ['retention'],
  ['rds', 'cleanup'],
  ['demo'],
  ['spool', 'status'],
  ['binlog', 'fetch'],
];

interface Harness {
  ctx: CliContext;
  stdout: () => string;
  stderr: () => string;
  interrupt: (signal: InterruptSignal) => void;
}

function harness(): Harness {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: string[] = [];
  const e: string[] = [];
  out.on('data', (c: Buffer) => o.push(c.toString()));
  err.on('data', (c: Buffer) => e.push(c.toString()));
  const handlers = new Set<(signal: InterruptSignal) => void>();
  const ctx: CliContext = {
    io: { stdout: out, stderr: err, env: {} },
    version: '9.9.9-test',
    exitCode: 0,
    onInterrupt: (handler) => {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
  };
  return {
    ctx,
    stdout: () => o.join(''),
    stderr: () => e.join(''),
    interrupt: (signal) => {
      for (const h of handlers) h(signal);
    },
  };
}

let sandbox: Sandbox;
beforeEach(async () => {
  sandbox = await makeSandbox();
  await writeSetup(sandbox, validConfig(sandbox));
});
afterEach(async () => {
  await sandbox.cleanup();
});

describe('cli (child process)', () => {
  it('--version prints the version from package.json', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await runCliProcess(['--version']);
    expect(result).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it('--help lists every command with an example', async () => {
    const result = await runCliProcess(['--help']);
    expect(result.code).toBe(0);
    for (const command of COMMANDS) {
      expect(result.stdout, command).toMatch(new RegExp(`^  ${command}\\b.*\\S`, 'm'));
      expect(result.stdout, command).toMatch(new RegExp(`^  \\$ mysql-archiver ${command}\\b`, 'm'));
    }
  });

  it('unknown commands and options exit 2 with one line', async () => {
    const unknown = await runCliProcess(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trimEnd().split('\n')).toEqual(["error: unknown command 'frobnicate'"]);
    const option = await runCliProcess(['status', '--jsn']);
    expect(option.code).toBe(2);
    expect(option.stderr.trimEnd().split('\n')).toEqual(["error: unknown option '--jsn' (did you mean --json?)"]);
  });
});

describe('cli (in process)', () => {
  it('every command has a description and an Examples block in its help', async () => {
    for (const path of LEAVES) {
      const h = harness();
      expect(await runCli([...path, '--help'], h.ctx), path.join(' ')).toBe(0);
      expect(h.stdout(), path.join(' ')).toMatch(/\n\S.+\n/); // the description line
      expect(h.stdout(), path.join(' ')).toContain('Examples:');
      expect(h.stdout(), path.join(' ')).toContain(`$ mysql-archiver ${path.join(' ')}`);
    }
  });

  it.each([
    [['dump'], "error: required option '--tier <name>' not specified"],
    [['list'], "error: missing required argument 'what'"],
    [['list', 'tables'], "error: command-argument value 'tables' is invalid for argument 'what'. Allowed choices are dumps, segments."],
    [['restore', 'table', 'shop', '--at', '2026-01-01T00:00:00Z'], "error: command-argument value 'shop' is invalid for argument 'db.table'"],
    [['restore', 'table', 'shop.orders', '--at', 'yesterday'], "error: option '--at <time>' argument 'yesterday' is invalid"],
    [['restore', 'table', 'shop.orders', '--at', '2026-01-01T00:00:00Z', '--into', 'a.b', '--to-file', 'x.sql'], "error: option '--into <db.table>' cannot be used with option '--to-file <path>'"],
    [['restore', 'pitr', '--at', '2026-01-01T00:00:00Z', '--target', 'db'], "error: option '--target <host:port>' argument 'db' is invalid"],
    [['rds', 'cleanup', '--older-than', 'soon'], "error: option '--older-than <duration>' argument 'soon' is invalid"],
    [['--log-level', 'loud', 'status'], "error: option '--log-level <level>' argument 'loud' is invalid"],
    [['status', 'extra'], "error: too many arguments for 'status'"],
  ])('usage error %j exits 2 with one line', async (argv, line) => {
    const h = harness();
    expect(await runCli(argv, h.ctx)).toBe(2);
    const lines = h.stderr().trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(line);
    expect(h.stdout()).toBe('');
  });

  it('spool status on a fresh install: an empty spool, nothing created', async () => {
    const h = harness();
    expect(await runCli(['--config', sandbox.configFile, 'spool', 'status'], h.ctx), h.stderr()).toBe(0);
    expect(h.stdout()).toMatch(/^0 item\(s\), 0 of 10737418240 bytes waiting for s3-main$/m);
    expect(existsSync(join(sandbox.dir, 'spool'))).toBe(false);
  });

  it('check loads config and schedules, then runs the preflight use case', async () => {
    let seen: ConfiguredDeps | undefined;
    const useCases: UseCases = {
      ...defaultUseCases,
      check: async (_opts, deps) => {
        seen = deps;
        deps.io.stdout.write('ok\n');
      },
    };
    const h = harness();
    expect(await runCli(['--config', sandbox.configFile, 'check'], h.ctx, useCases)).toBe(0);
    expect(h.stdout()).toBe('ok\n');
    expect(seen?.config.configFile).toBe(sandbox.configFile);
    expect(seen?.schedules.map((s) => s.tier)).toEqual(['daily', 'monthly', 'weekly']);
  });

  it('parses flags into the options objects the use cases take', async () => {
    const calls: unknown[] = [];
    const record = async (options: unknown) => {
      calls.push(options);
    };
    const useCases: UseCases = {
      ...defaultUseCases,
      restoreTable: record,
      restorePitr: record,
      dump: record,
      list: record,
      rdsCleanup: record,
      retention: record,
      status: record,
      spoolStatus: record,
    };
    const runs = [
      ['restore', 'table', 'shop.orders', '--at', '2026-11-25 14:03:00', '--into', 'shop.orders_back', '--dry-run'],
      ['restore', 'table', '`my.db`.`t`', '--at', 'mysql-bin.000042:1337', '--from', 'rds', '--to-file', '/tmp/t.sql', '--where', 'id = 1'],
      ['restore', 'pitr', '--at', '0-1-865', '--target', '[::1]:3307'],
      ['dump', '--tier', 'daily'],
      ['list', 'segments', '--json'],
      ['rds', 'cleanup', '--older-than', '2d'],
      ['retention', '--dry-run'],
      ['status', '--json'],
      ['spool', 'status'],
    ];
    for (const argv of runs) {
      const h = harness();
      expect(await runCli(['--config', sandbox.configFile, ...argv], h.ctx, useCases), `${argv.join(' ')}: ${h.stderr()}`).toBe(0);
    }
    expect(calls).toEqual([
      {
        table: { database: 'shop', table: 'orders' },
        at: { kind: 'time', at: new Date('2026-11-25T14:03:00Z'), wallClock: '2026-11-25T14:03:00' },
        from: 'archive',
        into: { database: 'shop', table: 'orders_back' },
        dryRun: true,
        keepInstance: false,
      },
      {
        table: { database: 'my.db', table: 't' },
        at: { kind: 'position', file: 'mysql-bin.000042', position: 1337 },
        from: 'rds',
        toFile: '/tmp/t.sql',
        where: 'id = 1',
        dryRun: false,
        keepInstance: false,
      },
      { at: { kind: 'gtid', gtid: '0-1-865' }, target: { host: '::1', port: 3307 }, dryRun: false },
      { tier: 'daily' },
      { what: 'segments', json: true },
      { olderThanMs: 2 * 86_400_000, dryRun: false },
      { dryRun: true },
      { json: true },
      { json: false },
    ]);
  });

  it('a config error exits 2 before any use case runs', async () => {
    await writeSetup(sandbox, { ...validConfig(sandbox), extra: 1 });
    let ran = false;
    const h = harness();
    const code = await runCli(['--config', sandbox.configFile, 'dump', '--tier', 'daily'], h.ctx, {
      ...defaultUseCases,
      dump: async () => {
        ran = true;
      },
    });
    expect(code).toBe(2);
    expect(ran).toBe(false);
    expect(h.stderr()).toContain(`error: config ${sandbox.configFile}: extra: unknown key`);
  });

  it('maps error types to exit codes and scrubs secrets from what it prints', async () => {
    registerSecret('cli-test-secret-value');
    const cases: [unknown, number, RegExp][] = [
      [new ArchiverError('upload to s3 failed for cli-test-secret-value', { hint: 'Check the bucket policy.' }), 1, /^error: upload to s3 failed for \[REDACTED\]\nhint: Check the bucket policy\.\n$/],
      [new TypeError('boom password=abc123'), 1, /^error: boom password=\[REDACTED\]\nhint: This is unexpected\. Run again with --log-level debug/],
    ];
    for (const [error, code, pattern] of cases) {
      const h = harness();
      const result = await runCli(['--config', sandbox.configFile, 'verify'], h.ctx, {
        ...defaultUseCases,
        verify: async () => {
          throw error;
        },
      });
      expect(result).toBe(code);
      expect(h.stderr()).toMatch(pattern);
    }
    const debug = harness();
    await runCli(['--config', sandbox.configFile, '--log-level', 'debug', 'verify'], debug.ctx, {
      ...defaultUseCases,
      verify: async () => {
        throw new TypeError('kaput');
      },
    });
    expect(debug.stderr()).toMatch(/^error: kaput\nTypeError: kaput\n\s+at /);
  });

  it('Ctrl-C aborts the running use case and exits 130', async () => {
    const h = harness();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const result = runCli(['--config', sandbox.configFile, 'run'], h.ctx, {
      ...defaultUseCases,
      run: (_opts, deps) =>
        new Promise((_resolve, reject) => {
          deps.signal.addEventListener('abort', () => reject(new OperationAbortedError()));
          started();
        }),
    });
    await running;
    h.interrupt('SIGINT');
    expect(await result).toBe(130);
    expect(h.stderr()).toBe('stopping and cleaning up (press Ctrl-C again to quit at once)\ninterrupted\n');
  });

  it('SIGTERM lets the daemon finish cleanly with its own exit code', async () => {
    const h = harness();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const result = runCli(['--config', sandbox.configFile, 'run'], h.ctx, {
      ...defaultUseCases,
      run: (_opts, deps) =>
        new Promise((resolve) => {
          deps.signal.addEventListener('abort', () => resolve(0));
          started();
        }),
    });
    await running;
    h.interrupt('SIGTERM');
    expect(await result).toBe(0);
  });
});

describe('restore point parsing', () => {
  const now = () => new Date('2026-11-25T12:00:00Z');
  it.each([
    ['2026-11-25T14:03:00Z', { kind: 'time', at: new Date('2026-11-25T14:03:00Z') }],
    ['2026-11-25T15:03:00+01:00', { kind: 'time', at: new Date('2026-11-25T14:03:00Z') }],
    ['2026-11-25 14:03', { kind: 'time', at: new Date('2026-11-25T14:03:00Z'), wallClock: '2026-11-25T14:03' }],
    ['2026-11-25 14:03:07.123456', { kind: 'time', at: new Date('2026-11-25T14:03:07.123Z'), wallClock: '2026-11-25T14:03:07.123456' }],
    ['15m ago', { kind: 'time', at: new Date('2026-11-25T11:45:00Z') }],
    ['mysql-bin.000042:1337', { kind: 'position', file: 'mysql-bin.000042', position: 1337 }],
    ['0-1-865', { kind: 'gtid', gtid: '0-1-865' }],
    ['3E11FA47-71CA-11E1-9E33-C80AA9429562:23', { kind: 'gtid', gtid: '3E11FA47-71CA-11E1-9E33-C80AA9429562:23' }],
  ])('%s', (input, expected) => {
    expect(parseRestorePoint(input, now)).toEqual(expected);
  });

  it.each(['yesterday', '2026-11-25', '2026-13-45 99:99', 'mysql-bin:12'])('rejects %s', (input) => {
    expect(() => parseRestorePoint(input, now)).toThrow();
  });
});
