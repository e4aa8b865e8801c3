/**
 * How to reach the source MySQL/MariaDB server (the one whose binlog is archived and which is dumped).
 * The config layer fills this in; `password` is already resolved from its env var or file and must
 * never be logged or put in an error message.
 */
export interface SourceOptions {
  host: string;
  port: number;
  /** a Unix socket instead of host:port (host and port are still used in messages) */
  socketPath?: string;
  user: string;
  password?: string;
  /** present = TLS on; the server certificate is verified unless rejectUnauthorized is false */
  tls?: SourceTlsOptions;
  /** the replication server id the archiver presents; must differ from every server and replica in the topology */
  serverId: number;
  /** default 10 000 ms */
  connectTimeoutMs?: number;
}

export interface SourceTlsOptions {
  /** PEM bundle of trusted CAs (e.g. the RDS global bundle); the system store when absent */
  caFile?: string;
  /** default true: refuse certificates that don't chain to a trusted CA or don't match the host name */
  rejectUnauthorized?: boolean;
  /** the name the certificate must carry when it differs from `host` (connecting by IP or through a tunnel) */
  serverName?: string;
}

/** "host:port" or "socket /path", for messages. */
export function describeSource(opts: Pick<SourceOptions, 'host' | 'port' | 'socketPath'>): string {
  return opts.socketPath ? `socket ${opts.socketPath}` : `${opts.host}:${opts.port}`;
}
