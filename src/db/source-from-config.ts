import type { SourceConfig } from '../config/schema.js';
import { resolveSecret, type ResolveSecretOptions } from '../config/secrets.js';
import type { SourceOptions } from './source-options.js';

/** Turns the validated `source:` section into connection options, reading the password from its env var or file. */
export async function sourceOptionsFromConfig(
  source: SourceConfig,
  env: NodeJS.ProcessEnv,
  options: ResolveSecretOptions = {},
): Promise<SourceOptions> {
  const password = source.password
    ? await resolveSecret(source.password, env, undefined, { ...options, label: 'source.password' })
    : undefined;
  return {
    host: source.host,
    port: source.port,
    user: source.user,
    serverId: source.serverId,
    ...(password === undefined ? {} : { password }),
    ...(source.socketPath ? { socketPath: source.socketPath } : {}),
    ...(source.tls ? { tls: source.tls } : {}),
  };
}
