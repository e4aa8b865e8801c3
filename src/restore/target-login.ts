import type { Config, LoginConfig } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import type { DbLogin } from './rds/restore-table.js';

/** Where restored rows go: `restore.target`, else the source login. */
export async function targetLogin(config: Config, env: NodeJS.ProcessEnv): Promise<DbLogin> {
  const login: LoginConfig = config.restore.target ?? config.source;
  const label = config.restore.target ? 'restore.target.password' : 'source.password';
  const password = login.password ? await resolveSecret(login.password, env, undefined, { label }) : undefined;
  return {
    host: login.host,
    port: login.port,
    user: login.user,
    ...(password !== undefined ? { password } : {}),
    ...(login.socketPath ? { socketPath: login.socketPath } : {}),
    ...(login.tls ? { tls: login.tls } : {}),
  };
}
