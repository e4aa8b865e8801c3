import { StorageError, StorageNotFoundError, isAbortError } from '../../errors.js';

export type S3Operation = 'put' | 'get' | 'head' | 'list' | 'delete';

/** What a failure means for the caller; a pure function of the error so it can be tested with a table. */
export type S3Failure =
  | { kind: 'not-found' }
  | { kind: 'retryable'; code: string; retryAfterMs?: number }
  | { kind: 'permanent'; code: string; hint?: string };

export interface S3ErrorContext {
  /** the storage's name, e.g. `s3:backups/prod` */
  storage: string;
  operation: S3Operation;
  bucket: string;
  /** the key as the caller knows it (without the storage prefix) */
  key?: string;
  /** the full object key or listing prefix in the bucket */
  objectKey?: string;
  /** scheme://host:port, never credentials or query strings */
  endpoint: string;
  now: () => number;
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

const RETRYABLE_CODES = new Set([
  'SlowDown',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'ServiceUnavailable',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'TimeoutError',
  // the SDK corrects its clock offset from this very response, so the next attempt is signed right
  'RequestTimeTooSkewed',
  // bytes were damaged in transit (Content-MD5 / checksum mismatch) or cut short: send them again
  'BadDigest',
  'XAmzContentSHA256Mismatch',
  'IncompleteBody',
  // the upload id vanished (aborted by a lifecycle rule or a concurrent abort): a fresh put starts over
  'NoSuchUpload',
]);

const CREDENTIAL_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired']);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
  $retryable?: unknown;
}

export function classifyS3Failure(error: unknown, operation: S3Operation, now: () => number = Date.now): S3Failure {
  const e = (error ?? {}) as SdkErrorShape;
  const code = e.Code ?? (e.name && e.name !== 'Error' && e.name !== 'S3ServiceException' ? e.name : undefined) ?? e.code ?? 'UnknownError';
  const status = e.$metadata?.httpStatusCode;

  if (code === 'NoSuchBucket') {
    return { kind: 'permanent', code, hint: noSuchBucketHint };
  }
  if (code === 'NoSuchKey' || code === 'NotFound' || (status === 404 && code !== 'NoSuchUpload')) return { kind: 'not-found' };

  const networkCode = typeof e.code === 'string' && NETWORK_CODES.has(e.code) ? e.code : undefined;
  if (networkCode || /socket hang up|ECONNRESET|ECONNREFUSED|EPIPE/.test(e.message ?? '') || e.name === 'TimeoutError') {
    return { kind: 'retryable', code: networkCode ?? e.name ?? 'NetworkError' };
  }
  if (RETRYABLE_CODES.has(code) || status === 429 || (status !== undefined && status >= 500) || e.$retryable) {
    const retryAfterMs = parseRetryAfter(e.$response?.headers?.['retry-after'], now);
    return retryAfterMs === undefined ? { kind: 'retryable', code } : { kind: 'retryable', code, retryAfterMs };
  }
  return { kind: 'permanent', code, hint: permanentHint(code, status, operation) };
}

/** Turns anything a driver call threw into the typed error the layers above expect. */
export function toStorageError(error: unknown, ctx: S3ErrorContext): unknown {
  if (error instanceof StorageError || isAbortError(error)) return error;
  const failure = classifyS3Failure(error, ctx.operation, ctx.now);
  const subject = ctx.key === undefined ? `${ctx.operation} ${JSON.stringify(ctx.objectKey ?? '')}` : `${ctx.operation} ${ctx.key}`;
  if (failure.kind === 'not-found') return new StorageNotFoundError(ctx.storage, ctx.key ?? ctx.objectKey ?? '', { cause: error });
  const detail = describe(error);
  const where = `bucket ${ctx.bucket}${ctx.objectKey !== undefined ? `, object ${ctx.objectKey}` : ''}`;
  if (failure.kind === 'retryable') {
    const network = !('$metadata' in (error as object) && (error as SdkErrorShape).$metadata?.httpStatusCode);
    const message = network
      ? `${ctx.storage}: ${subject}: cannot reach ${ctx.endpoint}: ${detail}`
      : `${ctx.storage}: ${subject}: ${detail} (${where} at ${ctx.endpoint})`;
    return new StorageError(message, {
      cause: error,
      retryable: true,
      ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
    });
  }
  const hint = failure.hint?.replaceAll('{bucket}', ctx.bucket).replaceAll('{endpoint}', ctx.endpoint);
  return new StorageError(`${ctx.storage}: ${subject}: ${detail} (${where} at ${ctx.endpoint})`, {
    cause: error,
    retryable: false,
    ...(hint ? { hint } : {}),
  });
}

const noSuchBucketHint =
  'Bucket {bucket} does not exist at {endpoint}: create it, or fix the bucket name and region in the storage configuration.';

function permanentHint(code: string, status: number | undefined, operation: S3Operation): string | undefined {
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || (status === 403 && !CREDENTIAL_CODES.has(code))) {
    switch (operation) {
      case 'delete':
        return "The archiver's credentials need no delete permission; run retention with its own credentials (retention.credentials in the config).";
      case 'list':
        return 'Grant s3:ListBucket on bucket {bucket} to these credentials (restricted to the storage prefix if you like).';
      case 'put':
        return 'Grant s3:PutObject (and s3:GetObject for verification) on bucket {bucket} under the storage prefix to these credentials; with Object Lock also s3:PutObjectRetention.';
      default:
        return 'Grant s3:GetObject on bucket {bucket} under the storage prefix to these credentials.';
    }
  }
  if (code === 'InvalidAccessKeyId') return 'The access key id is unknown to {endpoint}: check the credentials the storage configuration points at.';
  if (code === 'SignatureDoesNotMatch') {
    return 'The secret access key does not match the access key id: check the secret the storage configuration points at (it may have been rotated).';
  }
  if (code === 'ExpiredToken' || code === 'InvalidToken' || code === 'TokenRefreshRequired') {
    return 'The session token has expired: use long-lived credentials or the default provider chain, which refreshes role credentials by itself.';
  }
  if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || code === 'IllegalLocationConstraintException' || status === 301) {
    return 'Bucket {bucket} lives in another region: set region in the storage configuration to the bucket’s region.';
  }
  if (code === 'InvalidObjectState') return 'The object is archived (Glacier / Deep Archive): restore it in S3 first, then retry.';
  if (code === 'InvalidRequest' && operation === 'put') {
    return 'S3 refused the request; if Object Lock is configured, check that the bucket was created with Object Lock enabled.';
  }
  return undefined;
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now: () => number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now());
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const e = error as SdkErrorShape & Error;
  const code = e.Code ?? (e.name !== 'Error' ? e.name : e.code);
  // the SDK's "UnknownError" message carries nothing useful; the status code does
  const message = e.message && e.message !== 'UnknownError' ? e.message : `HTTP ${e.$metadata?.httpStatusCode ?? '?'}`;
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
