import { checkReplaceConfirmable, replaceStep } from './replace-step.js';
import { UsageError } from '../errors.js';
import { formatDuration, rdsCleanup, restoreTableFromRds, type RdsRestoreProgress } from '../restore/rds/index.js';
import {
  rdsClientFromConfig,
  rdsConnectFromConfig,
  rdsRestoreConfig,
  rdsWaitFromConfig,
  requestedBy,
  requireRdsConfig,
} from '../restore/rds/from-config.js';
import { restoreInstant } from './args.js';
import type { RdsCleanupOptions } from './commands/rds.js';
import type { RestoreTableOptions } from './commands/restore.js';
import type { CommandResult, ConfiguredDeps } from './run-command.js';

/** `restore table DB.TABLE --at TIME --from rds`: plan first, then progress lines, then a summary. */
export async function restoreTableFromRdsCommand(options: RestoreTableOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const out = (line: string) => deps.io.stdout.write(`${line}\n`);
  if (options.at.kind !== 'time') {
    throw new UsageError(`--from rds restores to a moment in time, not to a binlog ${options.at.kind}`, {
      hint: 'Pass --at as a time (e.g. 2026-11-25T14:03:00Z or "15m ago"), or use --from archive for positions and GTIDs.',
    });
  }
  const rdsConfig = requireRdsConfig(deps.config);
  checkReplaceConfirmable(options, deps);
  const timeZone = deps.config.restore.timezone;
  const at = restoreInstant(options.at, timeZone);
  const connect = await rdsConnectFromConfig(deps.config, rdsConfig, deps.io.env, !options.toFile);
  const rds = rdsClientFromConfig(rdsConfig);
  const lastState = new Map<string, string>();
  let lastCopyLine = 0;
  const onProgress = (p: RdsRestoreProgress) => {
    if (p.phase === 'copy') {
      const now = Date.now();
      if (now - lastCopyLine < 2000 && p.rows < p.expectedRows) return;
      lastCopyLine = now;
      const pct = p.expectedRows > 0 ? ` (${Math.min(100, Math.floor((100 * p.rows) / p.expectedRows))}%)` : '';
      out(`copy:   ${p.rows} of ~${p.expectedRows} rows${pct}, ${p.bytes} bytes`);
      return;
    }
    const key = `${p.phase}:${p.instance}`;
    if (lastState.get(key) === p.state) return;
    lastState.set(key, p.state);
    out(`${p.phase === 'wait' ? 'wait:  ' : 'delete:'} ${p.instance} is ${p.state} (${formatDuration(p.elapsedMs)})`);
  };
  try {
    const result = await restoreTableFromRds({
      rds,
      config: rdsRestoreConfig(rdsConfig),
      table: { db: options.table.database, name: options.table.table },
      at,
      ...(options.into ? { into: { db: options.into.database, name: options.into.table } } : {}),
      ...(options.toFile ? { toFile: options.toFile } : {}),
      ...(options.where ? { where: options.where } : {}),
      keepInstance: options.keepInstance ?? false,
      dryRun: options.dryRun,
      requestedBy: requestedBy(deps.io.env),
      logger: deps.logger,
      signal: deps.signal,
      wait: rdsWaitFromConfig(rdsConfig),
      connect,
      timeZone,
      onProgress,
    });
    out(result.dryRun ? 'plan (dry run: nothing is created):' : 'plan:');
    for (const line of result.lines) out(`  ${line}`);
    if (result.dryRun) return 0;
    out(`restored ${result.rows} row(s) of ${options.table.database}.${options.table.table} as of ${at.toISOString()} into ${result.target}`);
    out(`took ${formatDuration(result.durations.totalMs)} (instance ${formatDuration(result.durations.waitMs)}, copy ${formatDuration(result.durations.copyMs)}, delete ${formatDuration(result.durations.deleteMs)})`);
    if (result.instanceDeleted) out(`the temporary instance ${result.instance} is deleted`);
    else out(`the temporary instance ${result.instance} is KEPT at ${result.endpoint ? `${result.endpoint.host}:${result.endpoint.port}` : 'its endpoint'}; it costs money until \`mysql-archiver rds cleanup --older-than 0s\``);
    if (options.replace && result.restoredTable) {
      await replaceStep(options, deps, result.restoredTable, result.rows, at);
    } else if (!options.toFile) {
      out(`check it, then put it back with the same command plus --replace (rows copied in one replicated transaction), or on a server without replicas: RENAME TABLE ${options.table.database}.${options.table.table} TO ${options.table.database}.${options.table.table}__old, ${result.target.replace(/^table /, '')} TO ${options.table.database}.${options.table.table}`);
    }
    return 0;
  } finally {
    rds.destroy();
  }
}

export async function rdsCleanupCommand(options: RdsCleanupOptions, deps: ConfiguredDeps): Promise<CommandResult> {
  const out = (line: string) => deps.io.stdout.write(`${line}\n`);
  const rdsConfig = requireRdsConfig(deps.config);
  const rds = rdsClientFromConfig(rdsConfig);
  try {
    const result = await rdsCleanup({
      rds,
      olderThanMs: options.olderThanMs,
      dryRun: options.dryRun,
      logger: deps.logger,
      signal: deps.signal,
      wait: rdsWaitFromConfig(rdsConfig),
    });
    for (const s of result.skipped) out(`skip    ${s.instance}: ${s.reason}`);
    for (const f of result.found) {
      const done = result.deleted.includes(f.instance);
      out(`${options.dryRun ? 'would delete' : done ? 'deleted' : 'found'} ${f.instance} (${f.state}, created ${f.createdAt?.toISOString() ?? '?'}, requested by ${f.requestedBy ?? '?'}, source ${f.sourceInstance ?? '?'})`);
    }
    out(result.found.length === 0 ? 'no leftover restore instances' : `${options.dryRun ? `${result.found.length} would be deleted (dry run)` : `${result.deleted.length} deleted`}`);
    return 0;
  } finally {
    rds.destroy();
  }
}
