/**
 * Typed errors. Every error the tool raises on purpose carries a stable `code`, an optional `hint`
 * (a full sentence telling the user what to do) and the exit code the CLI maps it to.
 * Messages are lowercase, without a final period, and never contain secrets.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  /** bad usage, configuration or server settings: nothing was changed */
  usage: 2,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ArchiverErrorOptions {
  hint?: string;
  cause?: unknown;
}

export class ArchiverError extends Error {
  readonly code: string = 'E_ARCHIVER';
  readonly exitCode: ExitCode = ExitCode.failure;
  readonly hint: string | undefined;

  constructor(message: string, options: ArchiverErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** Bad configuration file or schedule: exit 2, nothing changed. */
export class ConfigError extends ArchiverError {
  override readonly code = 'E_CONFIG';
  override readonly exitCode = ExitCode.usage;
}

/** Bad command-line arguments: exit 2, nothing changed. */
export class UsageError extends ArchiverError {
  override readonly code = 'E_USAGE';
  override readonly exitCode = ExitCode.usage;
}

/** A server setting or privilege that makes the job impossible: exit 2, nothing changed. */
export class PreflightError extends ArchiverError {
  override readonly code = 'E_PREFLIGHT';
  override readonly exitCode = ExitCode.usage;
}

/** Another running mysql-archiver holds the state or spool directory: exit 2, nothing changed. */
export class InstanceLockedError extends ArchiverError {
  override readonly code = 'E_LOCKED';
  override readonly exitCode = ExitCode.usage;
}

/** Base of every storage failure. `retryable` tells the retry wrapper whether another attempt may help. */
export class StorageError extends ArchiverError {
  override readonly code: string = 'E_STORAGE';
  readonly retryable: boolean;
  /** server-requested delay before the next attempt (Retry-After), in milliseconds */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    options: ArchiverErrorOptions & { retryable?: boolean; retryAfterMs?: number } = {},
  ) {
    super(message, options);
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The key does not exist. Never retried. */
export class StorageNotFoundError extends StorageError {
  override readonly code = 'E_STORAGE_NOT_FOUND';
  constructor(readonly storage: string, readonly key: string, options: ArchiverErrorOptions = {}) {
    super(`${storage}: object not found: ${key}`, { ...options, retryable: false });
  }
}

/** What landed differs from what was sent, or an object differs from its manifest record. */
export class VerificationError extends StorageError {
  override readonly code = 'E_VERIFY';
  constructor(message: string, options: ArchiverErrorOptions & { retryable?: boolean } = {}) {
    // a mismatch right after an upload is worth one more upload; callers checking old objects pass false
    super(message, { retryable: options.retryable ?? true, ...options });
  }
}

/** All attempts of a retried operation failed; the message lists every attempt. */
export class RetryExhaustedError extends StorageError {
  override readonly code = 'E_RETRY_EXHAUSTED';
  constructor(
    readonly operation: string,
    readonly attempts: readonly { error: unknown; atMs: number }[],
  ) {
    const lines = attempts.map((a, i) => `  attempt ${i + 1}: ${describeError(a.error)}`);
    const last = attempts[attempts.length - 1]?.error;
    super(`${operation} failed after ${attempts.length} attempt(s):\n${lines.join('\n')}`, {
      cause: last,
      retryable: false,
    });
  }
}

/** The local spool reached its size cap: nothing is dropped, but an operator must act. */
export class SpoolFullError extends ArchiverError {
  override readonly code = 'E_SPOOL_FULL';
}

export class ManifestError extends ArchiverError {
  override readonly code = 'E_MANIFEST';
}

export class OperationAbortedError extends ArchiverError {
  override readonly code = 'E_ABORTED';
  override readonly exitCode = ExitCode.interrupted;
  constructor(message = 'operation aborted') {
    super(message);
  }
}

export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}

export function isAbortError(error: unknown): boolean {
  return (
    error instanceof OperationAbortedError ||
    (error instanceof Error && (error.name === 'AbortError' || (error as { code?: unknown }).code === 'ABORT_ERR'))
  );
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new OperationAbortedError();
}

/** The source database cannot be reached or refused the login. The message names host:port and user, never the password. */
export class SourceConnectionError extends ArchiverError {
  override readonly code = 'E_SOURCE_CONNECT';
}

/** The binlog stream failed: a server error (purged file, server_id clash), a protocol surprise, or a consumer that gave up. */
export class BinlogStreamError extends ArchiverError {
  override readonly code: string = 'E_BINLOG_STREAM';
  /** whether restarting the stream from the last checkpoint may help */
  readonly retryable: boolean;
  /** the server's error number, when the server sent the error */
  readonly errno: number | undefined;

  constructor(message: string, options: ArchiverErrorOptions & { retryable?: boolean; errno?: number } = {}) {
    super(message, options);
    this.retryable = options.retryable ?? false;
    this.errno = options.errno;
  }
}

/** Another replica or archiver uses our server id: the server keeps only one of us connected. */
export class BinlogServerIdClashError extends BinlogStreamError {
  override readonly code = 'E_BINLOG_SERVER_ID_CLASH';
  constructor(message: string, options: ArchiverErrorOptions & { errno?: number } = {}) {
    super(message, { ...options, retryable: true });
  }
}

/** The replication connection dropped; restart the stream from the last checkpoint. */
export class BinlogDisconnectedError extends BinlogStreamError {
  override readonly code = 'E_BINLOG_DISCONNECTED';
  constructor(message: string, options: ArchiverErrorOptions = {}) {
    super(message, { ...options, retryable: true });
  }
}

/**
 * Archived bytes would not be the server's bytes: positions don't join, a checksum fails, a rotation
 * doesn't chain. Nothing is written past this point; `from`/`to` name the byte range concerned.
 */
export class BinlogContinuityError extends ArchiverError {
  override readonly code = 'E_BINLOG_CONTINUITY';
  readonly serverFile: string | undefined;
  readonly from: number | undefined;
  readonly to: number | undefined;

  constructor(
    message: string,
    options: ArchiverErrorOptions & { serverFile?: string; from?: number; to?: number } = {},
  ) {
    super(message, options);
    this.serverFile = options.serverFile;
    this.from = options.from;
    this.to = options.to;
  }
}

/** A dump or a load failed (snapshot, server error, bad manifest). */
export class DumpError extends ArchiverError {
  override readonly code: string = 'E_DUMP';
}

/** The consistent snapshot could not be taken, or its connections disagree on the binlog position. */
export class DumpSnapshotError extends DumpError {
  override readonly code = 'E_DUMP_SNAPSHOT';
}

/** A dump file differs from what dump.json recorded (size, sha256) or cannot be decompressed; `key` names it. */
export class DumpIntegrityError extends DumpError {
  override readonly code = 'E_DUMP_INTEGRITY';
  constructor(readonly key: string, message: string, options: ArchiverErrorOptions = {}) {
    super(message, options);
  }
}

/** Loaded tables differ from the dump's record (row count or content checksum). */
export class DumpMismatchError extends DumpError {
  override readonly code = 'E_DUMP_MISMATCH';
  constructor(
    message: string,
    readonly mismatches: readonly { db: string; table: string; expected: { rows: number; checksum: string }; actual: { rows: number; checksum: string } }[],
  ) {
    super(message);
  }
}

/** A single-table copy failed (source read, target write) or its row counts disagree. */
export class TableCopyError extends ArchiverError {
  override readonly code: string = 'E_TABLE_COPY';
}

/** The copy finished but the rows written differ from the rows the source holds. */
export class TableCopyMismatchError extends TableCopyError {
  override readonly code = 'E_TABLE_COPY_MISMATCH';
  constructor(message: string, readonly expected: number, readonly actual: number, options: ArchiverErrorOptions = {}) {
    super(message, options);
  }
}

/** The restore's destination (a table or a file) already exists or cannot be used: exit 2, nothing changed. */
export class RestoreTargetError extends ArchiverError {
  override readonly code = 'E_RESTORE_TARGET';
  override readonly exitCode = ExitCode.usage;
}

/** An Amazon RDS call or state failed during a table restore from RDS. */
export class RdsError extends ArchiverError {
  override readonly code: string = 'E_RDS';
}

/** The requested time is outside the source's restorable window (or it has none): exit 2, nothing created. */
export class RdsRestoreWindowError extends ArchiverError {
  override readonly code = 'E_RDS_RESTORE_WINDOW';
  override readonly exitCode = ExitCode.usage;
}

/** The temporary instance's name is taken: exit 2, nothing created. */
export class RdsInstanceExistsError extends ArchiverError {
  override readonly code = 'E_RDS_INSTANCE_EXISTS';
  override readonly exitCode = ExitCode.usage;
  constructor(readonly instance: string, message: string, options: ArchiverErrorOptions = {}) {
    super(message, options);
  }
}

/** The temporary instance reached a state it cannot leave (failed, incompatible-restore, ...). */
export class RdsInstanceFailedError extends RdsError {
  override readonly code = 'E_RDS_INSTANCE_FAILED';
  constructor(readonly instance: string, readonly state: string, message: string, options: ArchiverErrorOptions = {}) {
    super(message, options);
  }
}

/**
 * A temporary RDS instance could not be deleted and is still running (and billing). The message
 * names every such instance; `mysql-archiver rds cleanup` removes them. `cause` is the deletion
 * error; `restoreError` the failure that came first, if any.
 */
export class RdsCleanupError extends RdsError {
  override readonly code = 'E_RDS_CLEANUP';
  readonly restoreError: unknown;
  constructor(
    readonly instances: readonly string[],
    message: string,
    options: ArchiverErrorOptions & { restoreError?: unknown } = {},
  ) {
    super(message, options);
    this.restoreError = options.restoreError;
  }
}

/** A restore from the archive cannot be done as asked (no dump covers the moment, DDL in the way, replay failed). */
export class RestoreError extends ArchiverError {
  override readonly code: string = 'E_RESTORE';
}
