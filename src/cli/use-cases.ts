import { UsageError, describeError } from '../errors.js';
import { runCheck } from '../ops/check.js';
import { runDemo } from '../demo/run-demo.js';
import { runDaemon } from '../daemon/run-daemon.js';
import { listSegments } from '../binlog/archive-catalog.js';
import { fetchBinlog } from '../binlog/fetch-binlog.js';
import { openStorage } from '../storage/registry.js';
import { listDumps } from '../dump/index.js';
import { runTierDump } from '../schedule/run-tier-dump.js';
import { lastDumpRuns } from '../schedule/last-runs.js';
import { runRetention } from '../schedule/retention.js';
import type { Storage } from '../storage/storage.js';
import { buildStatus, formatStatus } from '../ops/status.js';
import { openSpool } from '../spool/spool.js';
import { rdsCleanupCommand, restoreTableFromRdsCommand } from './rds-use-cases.js';
import { restorePitrCommand, restoreTableFromArchiveCommand, verifyCommand } from './archive-use-cases.js';
import type { BaseDeps, CommandResult, ConfiguredDeps } from './run-command.js';
import type { BinlogFetchOptions } from './commands/binlog.js';
import type { CheckOptions } from './commands/check.js';
import type { DemoOptions } from './commands/demo.js';
import type { DumpOptions } from './commands/dump.js';
import type { ListOptions } from './commands/list.js';
import type { RdsCleanupOptions } from './commands/rds.js';
import type { RestorePitrOptions, RestoreTableOptions } from './commands/restore.js';
import type { RetentionOptions } from './commands/retention.js';
import type { RunOptions } from './commands/run.js';
import type { SpoolStatusOptions } from './commands/spool.js';
import type { StatusOptions } from './commands/status.js';
import type { VerifyOptions } from './commands/verify.js';

/**
 * What each command calls once its flags are parsed. The CLI takes this table as a whole so tests
 * can drive commands with their own use cases; `defaultUseCases` wires the real ones.
 */
export interface UseCases {
  run(options: RunOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  check(options: CheckOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  status(options: StatusOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  dump(options: DumpOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  list(options: ListOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  restoreTable(options: RestoreTableOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  restorePitr(options: RestorePitrOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  verify(options: VerifyOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  retention(options: RetentionOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  rdsCleanup(options: RdsCleanupOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  demo(options: DemoOptions, deps: BaseDeps): Promise<CommandResult>;
  spoolStatus(options: SpoolStatusOptions, deps: ConfiguredDeps): Promise<CommandResult>;
  binlogFetch(options: BinlogFetchOptions, deps: ConfiguredDeps): Promise<CommandResult>;
}

async function check(_options: CheckOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const result = await runCheck(deps.config, {
    logger: deps.logger,
    signal: deps.signal,
    env: deps.io.env,
    out: (line) => deps.io.stdout.write(`${line}\n`),
  });
  if (!result.ok) return 1;
  const storages = Object.keys(deps.config.storages).length;
  deps.io.stdout.write(
    `check passed: ${deps.config.configFile}, ${storages} storage(s), ${deps.schedules.length} schedule(s) in ${deps.config.schedulesDir}\n`,
  );
  return 0;
}

async function run(_options: RunOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  await runDaemon(deps.config, { logger: deps.logger, signal: deps.signal, env: deps.io.env, schedules: deps.schedules });
  return 0;
}

async function status(options: StatusOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const report = await buildStatus(deps.config, Date.now(), deps.schedules, (schedule) =>
    lastDumpRuns(schedule, (name) => openStorage(name, deps.config.storages[name]!, { env: deps.io.env }), deps.logger, deps.signal),
  );
  if (options.json) deps.io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else for (const line of formatStatus(report)) deps.io.stdout.write(`${line}\n`);
  // monitoring can alert on the exit code alone
  return report.problems.length === 0 ? 0 : 1;
}

async function withArchiveStorage<T>(deps: ConfiguredDeps, body: (storage: Storage) => Promise<T>): Promise<T> {
  const name = deps.config.archiver.storage;
  const storage = await openStorage(name, deps.config.storages[name]!, { env: deps.io.env });
  try {
    return await body(storage);
  } finally {
    await storage.close?.();
  }
}

async function binlogFetch(options: BinlogFetchOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const output = options.output ?? options.file;
  const result = await withArchiveStorage(deps, (storage) =>
    fetchBinlog(storage, { file: options.file, output, stdout: deps.io.stdout, signal: deps.signal, ...(options.source ? { source: options.source } : {}) }),
  );
  if (output !== '-') {
    deps.io.stdout.write(
      `${output}: ${result.bytes} bytes from ${result.segments} segment(s) of ${result.source}, each verified by sha256${result.complete ? '' : ' (the server was still writing this file: it ends at the last archived transaction)'}\n`,
    );
  }
  return 0;
}

async function dump(options: DumpOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const schedule = deps.schedules.find((s) => s.tier === options.tier);
  if (!schedule) {
    throw new UsageError(`no tier named ${options.tier}`, { hint: `Tiers are the files in ${deps.config.schedulesDir}: ${deps.schedules.map((s) => s.tier).join(', ') || 'none'}.` });
  }
  const outcomes = await runTierDump(deps.config, schedule, { logger: deps.logger, signal: deps.signal, env: deps.io.env });
  for (const o of outcomes) {
    if (o.ok && o.manifest) {
      const m = o.manifest;
      const rows = m.tables.reduce((n, t) => n + t.rows, 0);
      const bytes = m.files.reduce((n, f) => n + f.size, 0);
      const at = m.snapshot.coordinates ? ` at ${m.snapshot.coordinates.file}:${m.snapshot.coordinates.position}` : '';
      deps.io.stdout.write(`ok    ${o.target}: ${m.prefix} (${m.tables.length} tables, ${rows} rows, ${m.files.length} files, ${bytes} bytes${at})\n`);
    } else {
      deps.io.stdout.write(`FAIL  ${o.target}: ${o.error}\n`);
    }
  }
  return outcomes.every((o) => o.ok) ? 0 : 1;
}

async function list(options: ListOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  if (options.what === 'dumps') return listDumpsCommand(options, deps);
  const segments = await withArchiveStorage(deps, (storage) => listSegments(storage, { signal: deps.signal }));
  if (options.json) {
    for (const s of segments) deps.io.stdout.write(`${JSON.stringify(s)}\n`);
    return 0;
  }
  deps.io.stdout.write(`${'source'.padEnd(16)} ${'file'.padEnd(18)} ${'start'.padStart(12)} ${'end'.padStart(12)} ${'bytes'.padStart(12)}  last event (UTC)\n`);
  for (const s of segments) {
    deps.io.stdout.write(
      `${s.source.padEnd(16)} ${s.serverFile.padEnd(18)} ${String(s.startPos).padStart(12)} ${String(s.endPos).padStart(12)} ${String(s.size).padStart(12)}  ${s.lastEventTime}${s.fileComplete ? '  (file complete)' : ''}\n`,
    );
  }
  deps.io.stdout.write(`${segments.length} segment(s)\n`);
  return 0;
}

async function listDumpsCommand(options: ListOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const names = [...new Set(deps.schedules.flatMap((s) => s.targets))];
  for (const name of names) {
    const storage = await openStorage(name, deps.config.storages[name]!, { env: deps.io.env });
    try {
      for (const d of await listDumps(storage)) {
        if (options.json) deps.io.stdout.write(`${JSON.stringify({ target: name, ...d })}\n`);
        else deps.io.stdout.write(`${name.padEnd(16)} ${d.tier.padEnd(10)} ${d.dumpId.padEnd(26)} ${d.finishedAt}  ${String(d.tables).padStart(5)} tables ${String(d.rows).padStart(10)} rows ${String(d.bytes).padStart(12)} bytes\n`);
      }
    } catch (error) {
      deps.io.stdout.write(`FAIL  ${name}: ${describeError(error)}\n`);
    } finally {
      await storage.close?.();
    }
  }
  return 0;
}

async function retention(options: RetentionOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const out = (line: string) => deps.io.stdout.write(`${line}\n`);
  const report = await runRetention(deps.config, deps.schedules, { logger: deps.logger, env: deps.io.env, signal: deps.signal, dryRun: options.dryRun });
  const verb = options.dryRun ? 'would delete' : 'deleted';
  for (const d of report.dumps) {
    out(`${d.keep ? 'keep  ' : options.dryRun ? 'DELETE' : 'gone  '} ${d.target.padEnd(16)} ${d.tier.padEnd(8)} ${d.dumpId.padEnd(28)} ${d.startedAt}  ${d.reason}`);
  }
  for (const s of report.segments) out(`${options.dryRun ? 'DELETE' : 'gone  '} segment ${s.key} (last event ${s.lastEventTime})`);
  const dumps = report.dumps.filter((d) => !d.keep).length;
  out(`${options.dryRun ? 'dry run: ' : ''}${verb} ${dumps} dump(s) and ${report.segments.length} segment(s); kept ${report.dumps.filter((d) => d.keep).length} dump(s)`);
  if (report.segmentsSkipped) out(`segments left alone: ${report.segmentsSkipped}`);
  for (const e of report.errors) out(`FAIL  ${e}`);
  return report.errors.length === 0 ? 0 : 1;
}

async function spoolStatus(options: SpoolStatusOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const out = (line: string) => deps.io.stdout.write(`${line}\n`);
  const a = deps.config.archiver;
  // read-only: the daemon may be adding and removing items right now
  const spool = await openSpool({ dir: a.spoolDir, maxBytes: a.spoolMaxBytes, logger: deps.logger, readOnly: true });
  const items = await spool.list();
  const stats = await spool.stats();
  if (options.json) {
    out(JSON.stringify({ ...stats, maxBytes: a.spoolMaxBytes, items: items.map((i) => ({ key: i.key, size: i.size, sha256: i.sha256, enqueuedAt: new Date(i.enqueuedAt).toISOString() })) }));
    return 0;
  }
  for (const i of items) out(`${new Date(i.enqueuedAt).toISOString()}  ${String(i.size).padStart(12)}  ${i.key}`);
  out(`${stats.items} item(s), ${stats.bytes} of ${a.spoolMaxBytes} bytes waiting for ${a.storage}${stats.damaged ? `; ${stats.damaged} damaged item(s) in ${a.spoolDir}/damaged` : ''}`);
  return 0;
}

async function demo(options: DemoOptions, deps: BaseDeps): Promise<CommandResult> {
  await runDemo({
    ...options,
    out: (line) => deps.io.stdout.write(`${line}\n`),
    logger: deps.logger,
    signal: deps.signal,
    env: deps.io.env,
  });
  return 0;
}

export const defaultUseCases: UseCases = {
  run,
  check,
  status,
  dump,
  list,
  restoreTable: (options, deps) => (options.from === 'rds' ? restoreTableFromRdsCommand(options, deps) : restoreTableFromArchiveCommand(options, deps)),
  restorePitr: restorePitrCommand,
  verify: verifyCommand,
  retention,
  rdsCleanup: rdsCleanupCommand,
  demo,
  spoolStatus,
  binlogFetch,
};
