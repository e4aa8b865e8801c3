import { PreflightError } from '../errors.js';

/**
 * Server checks run before archiving or dumping: settings and privileges that would make the job
 * silently wrong (statement binlogs, minimal row images, a replica that doesn't log what it applies,
 * a server_id clash that kicks another replica off) are refused up front with the exact fix.
 * Works on MariaDB and MySQL; the flavour is read from the version string.
 */

/** The one thing preflight needs from a connection; mysql2/promise connections and pools fit. */
export interface QueryRunner {
  query(sql: string): Promise<[unknown, unknown]>;
}

export type PreflightRole = 'archiver' | 'dump';

export interface ServerFacts {
  version: string;
  isMariaDb: boolean;
  serverId: number;
  /** MySQL only */
  serverUuid?: string;
  isReplica: boolean;
  logBin: boolean;
  binlogFormat: string;
  binlogRowImage: string;
  /** empty when the server has no such variable (MariaDB < 10.5, MySQL < 8.0.1) */
  binlogRowMetadata: string;
  binlogChecksum: string;
  logSlaveUpdates: boolean;
  /** MariaDB @@gtid_binlog_pos, or MySQL @@gtid_executed when GTIDs are on */
  gtidBinlogPos?: string;
}

export interface PreflightFinding {
  setting: string;
  severity: 'error' | 'warning';
  problem: string;
  fix: string;
}

export interface PreflightReport {
  server: ServerFacts;
  findings: PreflightFinding[];
}

export interface CheckServerOptions {
  /** the server id the archiver will present when reading the binlog */
  serverId: number;
  /** 'dump' also needs the privileges of a consistent dump; default 'archiver' */
  role?: PreflightRole;
}

type Row = Record<string, unknown>;

const VARIABLES = [
  'version',
  'version_comment',
  'server_id',
  'server_uuid',
  'log_bin',
  'binlog_format',
  'binlog_row_image',
  'binlog_row_metadata',
  'binlog_checksum',
  'log_slave_updates',
  'log_replica_updates',
  'gtid_binlog_pos',
  'gtid_mode',
  'gtid_executed',
];

export async function checkServer(conn: QueryRunner, opts: CheckServerOptions): Promise<PreflightReport> {
  const role = opts.role ?? 'archiver';
  const vars = await nameValues(conn, `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${VARIABLES.map((v) => `'${v}'`).join(',')})`);
  const version = vars.get('version') ?? '';
  const isMariaDb = /mariadb/i.test(`${version} ${vars.get('version_comment') ?? ''}`);
  const account = await currentAccount(conn);
  const findings: PreflightFinding[] = [];

  const replica = await replicaState(conn, isMariaDb);
  const replicaUpdatesName =
    !isMariaDb && vars.has('log_replica_updates') ? 'log_replica_updates' : vars.has('log_slave_updates') ? 'log_slave_updates' : 'log_replica_updates';
  const server: ServerFacts = {
    version,
    isMariaDb,
    serverId: Number(vars.get('server_id') ?? 0),
    isReplica: replica.isReplica,
    logBin: on(vars.get('log_bin')),
    binlogFormat: (vars.get('binlog_format') ?? '').toUpperCase(),
    binlogRowImage: (vars.get('binlog_row_image') ?? '').toUpperCase(),
    binlogRowMetadata: (vars.get('binlog_row_metadata') ?? '').toUpperCase(),
    binlogChecksum: (vars.get('binlog_checksum') ?? '').toUpperCase(),
    logSlaveUpdates: on(vars.get(replicaUpdatesName)),
  };
  const serverUuid = vars.get('server_uuid');
  if (serverUuid) server.serverUuid = serverUuid;
  const gtid = isMariaDb ? vars.get('gtid_binlog_pos') : on(vars.get('gtid_mode')) ? vars.get('gtid_executed') : undefined;
  if (gtid) server.gtidBinlogPos = gtid;

  const error = (setting: string, problem: string, fix: string) => findings.push({ setting, severity: 'error', problem, fix });
  const warning = (setting: string, problem: string, fix: string) => findings.push({ setting, severity: 'warning', problem, fix });
  const setBoth = (name: string, value: string) =>
    `SET GLOBAL ${name}=${value} and ${name}=${value} under [mysqld] in my.cnf (on Amazon RDS: in the DB parameter group); sessions already open keep the old value until they reconnect`;

  if (!server.logBin) {
    error(
      'log_bin',
      'binary logging is off, so there is no binlog to archive',
      'add log_bin=mysql-bin under [mysqld] in my.cnf and restart the server (log_bin cannot be turned on at runtime; on Amazon RDS, enable automated backups)',
    );
  }
  if (server.binlogFormat !== 'ROW') {
    error('binlog_format', `binlog_format is ${server.binlogFormat || 'unknown'}, not ROW`, setBoth('binlog_format', 'ROW'));
  }
  if (server.binlogRowImage !== 'FULL') {
    error('binlog_row_image', `binlog_row_image is ${server.binlogRowImage || 'unknown'}, not FULL`, setBoth('binlog_row_image', 'FULL'));
  }
  if (server.binlogRowMetadata === '') {
    warning(
      'binlog_row_metadata',
      'the server has no binlog_row_metadata, so row events after an ALTER TABLE or DROP TABLE may decode with wrong column names',
      'upgrade to MariaDB 10.5 or MySQL 8.0.1 or later and set binlog_row_metadata=FULL',
    );
  } else if (server.binlogRowMetadata !== 'FULL') {
    warning(
      'binlog_row_metadata',
      `binlog_row_metadata is ${server.binlogRowMetadata}, not FULL: row events after an ALTER TABLE or DROP TABLE may decode with wrong column names`,
      setBoth('binlog_row_metadata', 'FULL'),
    );
  }
  if (server.isReplica && !server.logSlaveUpdates) {
    error(
      replicaUpdatesName,
      `this server is a replica and ${replicaUpdatesName} is OFF, so the changes it replicates never reach its binlog`,
      `add ${replicaUpdatesName}=ON under [mysqld] in my.cnf and restart the replica (it cannot be changed at runtime), or archive from the primary`,
    );
  } else if (replica.unknown && !server.logSlaveUpdates && replica.maybeReplica) {
    warning(
      replicaUpdatesName,
      `this server has replicated before (gtid_slave_pos is set) and ${replicaUpdatesName} is OFF; whether it is a replica now cannot be read with this user`,
      `GRANT ${isMariaDb ? 'SLAVE MONITOR' : 'REPLICATION CLIENT'} ON *.* TO ${account.quoted}, or set ${replicaUpdatesName}=ON under [mysqld] in my.cnf if this is a replica`,
    );
  }

  const idFix = `set serverId in the archiver config to a number that no server or replica in this topology uses as server_id`;
  if (opts.serverId === server.serverId) {
    error('serverId', `serverId ${opts.serverId} is this server's own server_id`, idFix);
  }
  const replicas = await replicaHosts(conn, isMariaDb);
  if (replicas.ids) {
    const clash = replicas.ids.find((r) => r.serverId === opts.serverId);
    if (clash) error('serverId', `serverId ${opts.serverId} is already used by the replica at ${clash.host}`, idFix);
  } else if (replicas.connected > 0) {
    warning(
      'serverId',
      `${replicas.connected} replica(s) are connected, but this user cannot list their server_ids to rule out a clash with serverId ${opts.serverId}`,
      `GRANT ${isMariaDb ? 'REPLICATION MASTER ADMIN' : 'REPLICATION SLAVE'} ON *.* TO ${account.quoted}, or make sure no replica uses server_id ${opts.serverId}`,
    );
  }

  const missing = await missingPrivileges(conn, isMariaDb, version, role);
  if (missing === undefined) {
    warning('privileges', 'the grants of the current user cannot be read', `run SHOW GRANTS FOR CURRENT_USER() as ${account.quoted} to check them by hand`);
  } else if (missing.length > 0) {
    error(
      'privileges',
      `user ${account.quoted} lacks ${missing.join(', ')}${role === 'dump' ? ' (needed for dumps)' : ''}`,
      `GRANT ${missing.join(', ')} ON *.* TO ${account.quoted}`,
    );
  }

  return { server, findings };
}

/**
 * Throws one PreflightError listing every error finding ("setting: problem") with the fixes in
 * its hint; returns the warnings for the caller to log.
 */
export function assertServerReady(report: PreflightReport): PreflightFinding[] {
  const errors = report.findings.filter((f) => f.severity === 'error');
  const warnings = report.findings.filter((f) => f.severity === 'warning');
  if (errors.length === 0) return warnings;
  const lines = errors.map((f) => `  ${f.setting}: ${f.problem}`);
  const fixes = errors.map((f) => `  ${f.setting}: ${f.fix}.`);
  throw new PreflightError(
    `the source server is not ready (${errors.length} problem${errors.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
    { hint: `Fix the server, then run \`mysql-archiver check\` again:\n${fixes.join('\n')}` },
  );
}

interface ReplicaState {
  isReplica: boolean;
  /** true when replica status could not be read and the answer is a guess */
  unknown: boolean;
  maybeReplica: boolean;
}

async function replicaState(conn: QueryRunner, isMariaDb: boolean): Promise<ReplicaState> {
  const statements = isMariaDb ? ['SHOW ALL SLAVES STATUS'] : ['SHOW REPLICA STATUS', 'SHOW SLAVE STATUS'];
  for (const sql of statements) {
    try {
      return { isReplica: (await rows(conn, sql)).length > 0, unknown: false, maybeReplica: false };
    } catch (error) {
      if (isSyntaxError(error)) continue; // older server: try the older spelling
      if (!isAccessDenied(error)) throw error;
      break;
    }
  }
  // without SLAVE MONITOR, fall back to counters anyone may read: running replication threads,
  // and a replication position that only a server that has replicated keeps
  const status = await nameValues(conn, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Slaves_running','Slave_running')");
  const running = Number(status.get('slaves_running') ?? 0) > 0 || on(status.get('slave_running'));
  const slavePos = isMariaDb ? (await nameValues(conn, "SHOW GLOBAL VARIABLES WHERE Variable_name = 'gtid_slave_pos'")).get('gtid_slave_pos') : '';
  return { isReplica: running, unknown: true, maybeReplica: Boolean(slavePos) };
}

async function replicaHosts(
  conn: QueryRunner,
  isMariaDb: boolean,
): Promise<{ ids?: { serverId: number; host: string }[]; connected: number }> {
  const statements = isMariaDb ? ['SHOW SLAVE HOSTS'] : ['SHOW REPLICAS', 'SHOW SLAVE HOSTS'];
  for (const sql of statements) {
    try {
      const ids = (await rows(conn, sql)).map((r) => ({
        serverId: Number(column(r, 'server_id')),
        host: `${String(column(r, 'host') ?? '') || '(unreported host)'}:${String(column(r, 'port') ?? '')}`,
      }));
      return { ids, connected: ids.length };
    } catch (error) {
      if (isSyntaxError(error)) continue;
      if (!isAccessDenied(error)) throw error;
      break;
    }
  }
  const status = await nameValues(conn, "SHOW GLOBAL STATUS WHERE Variable_name = 'Slaves_connected'");
  return { connected: Number(status.get('slaves_connected') ?? 0) };
}

const ARCHIVER_NEEDS = ['REPLICATION SLAVE'];
const DUMP_NEEDS = ['SELECT', 'RELOAD', 'LOCK TABLES', 'SHOW VIEW', 'EVENT', 'TRIGGER'];

/** undefined when the grants can't be read */
async function missingPrivileges(
  conn: QueryRunner,
  isMariaDb: boolean,
  version: string,
  role: PreflightRole,
): Promise<string[] | undefined> {
  let held: Set<string>;
  try {
    held = await globalPrivileges(conn, 'CURRENT_USER()', new Set());
  } catch (error) {
    if (isAccessDenied(error)) return undefined;
    throw error;
  }
  if (held.has('ALL PRIVILEGES') || held.has('ALL')) return [];
  const missing = ARCHIVER_NEEDS.filter((p) => !held.has(p));
  // MariaDB 10.5 renamed REPLICATION CLIENT to BINLOG MONITOR (SHOW BINARY LOGS, SHOW MASTER STATUS)
  const monitorNames = isMariaDb ? ['BINLOG MONITOR', 'REPLICATION CLIENT'] : ['REPLICATION CLIENT', 'SUPER'];
  if (!monitorNames.some((p) => held.has(p))) {
    missing.push(isMariaDb && !versionBelow(version, 10, 5) ? 'BINLOG MONITOR' : 'REPLICATION CLIENT');
  }
  if (role === 'dump') missing.push(...DUMP_NEEDS.filter((p) => !held.has(p)));
  return missing;
}

/** privileges granted ON *.* to `grantee`, following granted roles */
async function globalPrivileges(conn: QueryRunner, grantee: string, seen: Set<string>): Promise<Set<string>> {
  seen.add(grantee);
  const held = new Set<string>();
  for (const row of await rows(conn, `SHOW GRANTS FOR ${grantee}`)) {
    const line = String(Object.values(row)[0] ?? '');
    const privilegeGrant = /^GRANT\s+(.+?)\s+ON\s+(\S+)\s+TO\s/i.exec(line);
    if (privilegeGrant) {
      if (privilegeGrant[2]!.replace(/`/g, '') !== '*.*') continue;
      for (const name of privilegeGrant[1]!.split(',')) held.add(name.trim().replace(/\s+/g, ' ').toUpperCase());
      continue;
    }
    const roleGrant = /^GRANT\s+(.+?)\s+TO\s/i.exec(line);
    if (!roleGrant) continue;
    for (const roleName of roleGrant[1]!.split(/\s*,\s*/)) {
      if (seen.has(roleName) || seen.size > 20) continue;
      try {
        for (const p of await globalPrivileges(conn, roleName, seen)) held.add(p);
      } catch (error) {
        // a role's grants may be unreadable; count only what can be seen
        if (!isAccessDenied(error)) throw error;
      }
    }
  }
  return held;
}

async function currentAccount(conn: QueryRunner): Promise<{ quoted: string }> {
  const [row] = await rows(conn, 'SELECT CURRENT_USER() AS account');
  const account = String(row?.['account'] ?? '');
  const at = account.lastIndexOf('@');
  if (at < 0) return { quoted: `'${account}'` };
  return { quoted: `'${account.slice(0, at)}'@'${account.slice(at + 1)}'` };
}

async function rows(conn: QueryRunner, sql: string): Promise<Row[]> {
  const [result] = await conn.query(sql);
  return Array.isArray(result) ? (result as Row[]) : [];
}

async function nameValues(conn: QueryRunner, sql: string): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (const row of await rows(conn, sql)) {
    map.set(String(column(row, 'variable_name')).toLowerCase(), String(column(row, 'value') ?? ''));
  }
  return map;
}

/** column lookup ignoring case: MariaDB says Server_id, MySQL Server_Id */
function column(row: Row, name: string): unknown {
  const key = Object.keys(row).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : row[key];
}

function on(value: string | undefined): boolean {
  return value !== undefined && /^(ON|1|YES|TRUE)$/i.test(value);
}

function versionBelow(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split(/[.-]/).map(Number);
  return a < major || (a === major && b < minor);
}

function errno(error: unknown): number | undefined {
  return (error as { errno?: number } | null)?.errno;
}

function isAccessDenied(error: unknown): boolean {
  // 1227 specific privilege, 1142 table, 1044 database, 1045 user, 1141 no such grant
  return [1227, 1142, 1044, 1045, 1141].includes(errno(error) ?? 0);
}

function isSyntaxError(error: unknown): boolean {
  return errno(error) === 1064;
}
