/**
 * Applies a binlog file to a server the standard way: `mariadb-binlog FILE | mariadb`. The
 * server decodes the row events itself (BINLOG statements), so every type comes back exactly as
 * it was written; a decoder of our own would be a second implementation to get wrong. The
 * password travels in the environment (MYSQL_PWD), never in argv, and the session writes nothing
 * to the target's own binlog.
 */
import { spawn } from 'node:child_process';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import type { DbLogin } from '../rds/restore-table.js';
import { OperationAbortedError, RestoreError } from '../../errors.js';
import { redactText as redact } from '../../ops/redact.js';

export interface ApplyOptions {
  readonly login: DbLogin;
  /** the session's default database */
  readonly database?: string;
  /** only events of this database (mariadb-binlog --database) */
  readonly onlyDatabase?: string;
  /** row events of this database go to another one */
  readonly rewriteDb?: { readonly from: string; readonly to: string };
  /** one transaction for the whole file (row events only: they carry no transaction boundaries) */
  readonly singleTransaction?: boolean;
  readonly signal?: AbortSignal;
}

export async function applyBinlogFile(file: string, opts: ApplyOptions): Promise<{ durationMs: number }> {
  return applyBinlog({ file }, opts);
}

/**
 * Applies what `feed` writes (a binlog stream: magic, format description, events) while it is
 * written: mariadb-binlog reads it from stdin. A feed that fails stops both programs, and in
 * single-transaction mode nothing is committed.
 */
export async function applyBinlog(input: { file: string } | { feed: (out: import('node:stream').Writable) => Promise<unknown> }, opts: ApplyOptions): Promise<{ durationMs: number }> {
  const started = Date.now();
  const login = opts.login;
  const clientArgs = ['--no-defaults', '--binary-mode', `--user=${login.user}`];
  if (login.socketPath) clientArgs.push(`--socket=${login.socketPath}`);
  else clientArgs.push(`--host=${login.host ?? '127.0.0.1'}`, `--port=${login.port ?? 3306}`, '--protocol=TCP');
  if (login.tls) {
    clientArgs.push('--ssl');
    if (login.tls.caFile) clientArgs.push(`--ssl-ca=${login.tls.caFile}`);
    if (login.tls.rejectUnauthorized !== false) clientArgs.push('--ssl-verify-server-cert');
  }
  if (opts.database) clientArgs.push(`--database=${opts.database}`);
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...(login.password !== undefined ? { MYSQL_PWD: login.password } : {}) };
  const binlogArgs = ['--no-defaults', ...(opts.onlyDatabase ? [`--database=${opts.onlyDatabase}`] : []), ...(opts.rewriteDb ? [`--rewrite-db=${opts.rewriteDb.from}->${opts.rewriteDb.to}`] : []), 'file' in input ? input.file : '-'];

  const decoder = spawn('mariadb-binlog', binlogArgs, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: env['PATH'] } });
  if ('file' in input) decoder.stdin.end();
  const client = spawn('mariadb', clientArgs, { stdio: ['pipe', 'ignore', 'pipe'], env });
  const stderr = { decoder: '', client: '' };
  decoder.stderr.on('data', (d: Buffer) => (stderr.decoder = (stderr.decoder + d.toString()).slice(-4000)));
  client.stderr.on('data', (d: Buffer) => (stderr.client = (stderr.client + d.toString()).slice(-4000)));
  const onAbort = () => {
    decoder.kill('SIGTERM');
    client.kill('SIGTERM');
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const decoderExit = once(decoder, 'close') as Promise<[number | null]>;
  const clientExit = once(client, 'close') as Promise<[number | null]>;
  try {
    client.stdin.on('error', () => undefined); // a client that died early is reported by its exit code
    client.stdin.write(`SET SESSION sql_log_bin = 0;\n${opts.singleTransaction ? 'SET SESSION autocommit = 0;\n' : ''}`);
    // stdin ends only after the last byte (the transform's COMMIT included) went in
    const fed = (opts.singleTransaction ? pipeline(decoder.stdout, commitAtEnd(), client.stdin) : pipeline(decoder.stdout, client.stdin)).catch(() => undefined);
    if ('feed' in input) {
      const stdin = decoder.stdin;
      stdin.on('error', () => undefined); // a decoder that died early is reported by its exit code
      try {
        await input.feed(stdin);
        stdin.end();
      } catch (error) {
        onAbort();
        await Promise.allSettled([decoderExit, clientExit]);
        throw error;
      }
    }
    const [decoderCode] = await decoderExit;
    await fed;
    const [clientCode] = await clientExit;
    if (opts.signal?.aborted) throw new OperationAbortedError('replay aborted');
    if (decoderCode !== 0) throw new RestoreError(`mariadb-binlog failed (exit ${decoderCode}): ${redact(stderr.decoder.trim())}`, { hint: 'The replay file was built from verified segments; check that mariadb-binlog (mariadb-client) matches the server version.' });
    if (clientCode !== 0) {
      throw new RestoreError(`replaying the archived binlog failed (mariadb exit ${clientCode}): ${redact(stderr.client.trim().split('\n').slice(-3).join(' '))}`, {
        hint: 'The target login needs BINLOG ADMIN (or SUPER) for sql_log_bin and BINLOG REPLAY for row events; a schema change between the dump and the target moment also stops it.',
      });
    }
    return { durationMs: Date.now() - started };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (decoder.exitCode === null) decoder.kill('SIGKILL');
    if (client.exitCode === null) client.kill('SIGKILL');
  }
}

/**
 * mariadb-binlog ends its output with a ROLLBACK of any open transaction; with the row events of
 * one table (no transaction boundaries of their own) in one transaction, that is where it commits.
 */
const TRAILER = Buffer.from('ROLLBACK /* added by mysqlbinlog */;');
const COMMIT = Buffer.from('COMMIT /* mysql-archiver: one transaction for the whole replay */;');
function commitAtEnd(): Transform {
  let carry = Buffer.alloc(0);
  let replaced = false;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (replaced) return done(null, chunk);
      const all = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      const at = all.indexOf(TRAILER);
      if (at >= 0) {
        replaced = true;
        carry = Buffer.alloc(0);
        return done(null, Buffer.concat([all.subarray(0, at), COMMIT, all.subarray(at + TRAILER.length)]));
      }
      const keep = Math.min(all.length, TRAILER.length - 1);
      carry = Buffer.from(all.subarray(all.length - keep));
      done(null, all.subarray(0, all.length - keep));
    },
    flush(done) {
      // no trailer (an older mariadb-binlog): commit explicitly
      done(null, replaced ? carry : Buffer.concat([carry, Buffer.from('\n'), COMMIT, Buffer.from('\n')]));
    },
  });
}
