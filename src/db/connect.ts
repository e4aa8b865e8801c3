import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import mysql from 'mysql2/promise';
import type { Connection, PoolOptions, SslOptions } from 'mysql2/promise';
import { ConfigError, SourceConnectionError, describeError } from '../errors.js';
import { describeSource, type SourceOptions } from './source-options.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * mysql2 options for the source server, usable for a connection, a pool or zongji's DSN.
 * Values come back lossless: DATETIME(6) as strings (no Date rounding to ms), BIGINT and DECIMAL as
 * strings when they don't fit a double. Throws ConfigError when the CA file can't be read.
 */
export function sourcePoolOptions(opts: SourceOptions): PoolOptions {
  const options: PoolOptions = {
    host: opts.host,
    port: opts.port,
    user: opts.user,
    password: opts.password,
    connectTimeout: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    multipleStatements: false,
    charset: 'utf8mb4',
    // shows up in the server's processlist/performance_schema, so a DBA can tell who is connected
    connectAttributes: { program_name: 'mysql-archiver' },
  };
  if (opts.socketPath) options.socketPath = opts.socketPath;
  if (opts.tls) {
    options.ssl = sslOptions(opts);
    const serverName = opts.tls.serverName;
    if (serverName && serverName !== opts.host && !opts.socketPath) {
      // mysql2 checks the certificate against `host` and has no servername option: give it the
      // certificate's name as host and open the TCP socket to the real address ourselves
      options.host = serverName;
      options.stream = () => {
        const socket = netConnect(opts.port, opts.host);
        socket.setNoDelay(true);
        return socket;
      };
    }
  }
  return options;
}

function sslOptions(opts: SourceOptions): SslOptions {
  const tls = opts.tls ?? {};
  const verify = tls.rejectUnauthorized !== false;
  const ssl: SslOptions = { rejectUnauthorized: verify, verifyIdentity: verify };
  if (tls.caFile) {
    try {
      ssl.ca = readFileSync(tls.caFile);
    } catch (error) {
      throw new ConfigError(`cannot read the tls ca file ${tls.caFile}: ${describeError(error)}`, {
        cause: error,
        hint: 'Point tls.caFile at a readable PEM bundle of the CA that signed the server certificate (for Amazon RDS, the global bundle).',
      });
    }
  }
  return ssl;
}

/** Opens one connection to the source; failures become a SourceConnectionError with a hint. */
export async function connectSource(opts: SourceOptions): Promise<Connection> {
  const options = sourcePoolOptions(opts);
  try {
    return await mysql.createConnection(options);
  } catch (error) {
    throw sourceConnectionError(opts, error);
  }
}

interface DriverError {
  code?: string;
  errno?: number;
  message?: string;
}

/**
 * Turns a driver or socket error met while connecting into a SourceConnectionError naming
 * host:port and user. Exported for the pool and the binlog client, which connect on their own.
 */
export function sourceConnectionError(opts: SourceOptions, error: unknown): SourceConnectionError {
  const where = describeSource(opts);
  const who = `user '${opts.user}'`;
  const { code = '', errno } = (error ?? {}) as DriverError;
  const reason = redact(describeError(error), opts.password);
  const fail = (problem: string, hint: string) =>
    new SourceConnectionError(`cannot connect to ${where} as ${who}: ${problem}`, { cause: error, hint });

  if (code === 'ER_ACCESS_DENIED_ERROR' || errno === 1045 || errno === 1698) {
    const using = /using password: (yes|no)/i.exec(reason)?.[1]?.toLowerCase();
    return fail(
      `access denied${using ? ` (using password: ${using})` : ''}`,
      'Check the user name and the password (set through its environment variable or password file), and that the account exists for the host the archiver connects from.',
    );
  }
  if (code === 'ER_HOST_NOT_PRIVILEGED' || errno === 1130) {
    return fail(
      'the server does not accept this user from this host',
      `Create the account for the host the archiver runs on, e.g. CREATE USER '${opts.user}'@'<archiver host>' and grant it the privileges \`mysql-archiver check\` lists.`,
    );
  }
  if (code === 'ECONNREFUSED') {
    return fail('connection refused', 'Check that the server is running and that the host and port are right.');
  }
  if (code === 'ENOENT' && opts.socketPath) {
    return fail('no socket at that path', 'Check that the server is running and that socketPath names its socket.');
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return fail(`cannot resolve host ${opts.host}`, 'Check the host name and that DNS works from this machine.');
  }
  if (code === 'ETIMEDOUT') {
    return fail(
      `timed out after ${opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS} ms`,
      'Check that the server is reachable from this machine (firewall, security group) and that the host and port are right.',
    );
  }
  if (code === 'HANDSHAKE_NO_SSL_SUPPORT') {
    return fail('the server does not support tls', 'Enable TLS on the server, or remove the tls section for this source.');
  }
  if (/CERT|SSL|TLS|SIGNATURE|ISSUER/.test(code)) {
    return fail(
      `tls certificate check failed: ${reason}`,
      'Set tls.caFile to the CA bundle that signed the server certificate (for Amazon RDS, the global bundle) and, when connecting by IP address or through a tunnel, tls.serverName to the name in the certificate.',
    );
  }
  if (/insecure transport/i.test(reason)) {
    return fail('the server requires tls', 'Add a tls section for this source (with tls.caFile for a private CA).');
  }
  if (code === 'ER_CON_COUNT_ERROR' || errno === 1040) {
    return fail('too many connections', 'Raise max_connections on the server or lower the parallelism of dumps.');
  }
  return fail(reason, 'Check the source settings (host, port, user, password, tls) and that the server is up.');
}

function redact(text: string, secret: string | undefined): string {
  // drivers don't echo passwords, but a message must never carry one even if one day they do
  return secret && secret.length >= 3 ? text.split(secret).join('***') : text;
}
