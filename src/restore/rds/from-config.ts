/**
 * The configured RDS restore: builds the RDS client (AWS default provider chain: environment,
 * profile, instance or task role; never a key in the config) and the two logins (the temporary
 * instance, the target) from the validated config, with passwords read from env or files.
 */
import { hostname, userInfo } from 'node:os';
import { RDSClient } from '@aws-sdk/client-rds';
import type { Config, RdsConfig } from '../../config/schema.js';
import { targetLogin } from '../target-login.js';
import { resolveSecret } from '../../config/secrets.js';
import { ConfigError } from '../../errors.js';
import type { RdsRestoreConfig, RdsRestoreConnect } from './restore-table.js';
import type { RdsWaitOptions } from './rds-ops.js';

/** A dead TCP connect fails in seconds instead of the OS default of minutes. */
const CONNECT_TIMEOUT_MS = 10_000;

export function requireRdsConfig(config: Config): RdsConfig {
  if (!config.rds) {
    throw new ConfigError(`${config.configFile}: no rds section, so there is no RDS instance to restore from`, {
      hint: 'Add rds: { region: eu-west-1, sourceInstance: YOUR-DB-INSTANCE-ID } (see the README, "Restores from Amazon RDS"), or restore from the archive with --from archive.',
    });
  }
  return config.rds;
}

export function rdsClientFromConfig(rds: RdsConfig): RDSClient {
  return new RDSClient({
    region: rds.region,
    ...(rds.endpoint ? { endpoint: rds.endpoint } : {}),
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: 60_000 },
  });
}

export function rdsRestoreConfig(rds: RdsConfig): RdsRestoreConfig {
  return {
    region: rds.region,
    sourceInstance: rds.sourceInstance,
    publiclyAccessible: rds.publiclyAccessible,
    ...(rds.instanceClass ? { instanceClass: rds.instanceClass } : {}),
    ...(rds.subnetGroup ? { subnetGroup: rds.subnetGroup } : {}),
    ...(rds.securityGroups ? { securityGroups: rds.securityGroups } : {}),
    ...(rds.parameterGroup ? { parameterGroup: rds.parameterGroup } : {}),
    ...(rds.caBundle ? { caBundle: rds.caBundle } : {}),
    ...(rds.tags ? { tags: rds.tags } : {}),
  };
}

/** Polling as configured; the timeouts stay at the library's (4 h to become available, 1 h to go). */
export function rdsWaitFromConfig(rds: RdsConfig): RdsWaitOptions {
  return { minDelaySeconds: rds.pollSeconds, maxDelaySeconds: Math.max(rds.pollSeconds, Math.min(120, rds.pollSeconds * 4)) };
}

export async function rdsConnectFromConfig(config: Config, rds: RdsConfig, env: NodeJS.ProcessEnv, needTarget: boolean): Promise<RdsRestoreConnect> {
  const instanceUser = rds.login?.user ?? config.source.user;
  const instancePasswordRef = rds.login ? rds.login.password : config.source.password;
  const instancePassword = instancePasswordRef
    ? await resolveSecret(instancePasswordRef, env, undefined, { label: rds.login ? 'rds.login.password' : 'source.password' })
    : undefined;
  const target = needTarget ? await targetLogin(config, env) : undefined;
  return {
    instance: {
      user: instanceUser,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      ...(instancePassword !== undefined ? { password: instancePassword } : {}),
      ...(rds.caBundle ? { tls: { caFile: rds.caBundle } } : {}),
    },
    ...(target ? { target } : {}),
  };
}

/** Who asked, for the instance's requested-by tag: the person behind sudo when there is one. */
export function requestedBy(env: NodeJS.ProcessEnv): string {
  let user = env['SUDO_USER'] || env['USER'] || '';
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return `${user}@${hostname()}`;
}
