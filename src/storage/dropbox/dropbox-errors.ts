import { StorageError, StorageNotFoundError, isAbortError } from '../../errors.js';
import { redactText } from '../../ops/redact.js';

/** What the SDK throws for a non-2xx answer (`DropboxResponseError`), seen structurally. */
export interface DropboxHttpError {
  status: number;
  headers?: { get(name: string): string | null } | Record<string, unknown>;
  error?: unknown;
}

export type DropboxOperation = 'put' | 'get' | 'head' | 'list' | 'delete';

export interface ClassifyContext {
  storage: string;
  operation: DropboxOperation;
  key: string;
}

export function isDropboxHttpError(error: unknown): error is DropboxHttpError {
  return error instanceof Error && typeof (error as { status?: unknown }).status === 'number';
}

/** 'path/not_found/..' from the body's error_summary, or the OAuth error name; never more than a line */
export function errorSummary(error: DropboxHttpError): string {
  const body = error.error;
  if (body !== null && typeof body === 'object') {
    const b = body as { error_summary?: unknown; error?: unknown; error_description?: unknown };
    if (typeof b.error_summary === 'string') return b.error_summary.replace(/\/\.*$/, '').replace(/\/+$/, '');
    if (typeof b.error === 'string') return typeof b.error_description === 'string' ? `${b.error}: ${b.error_description}` : b.error;
  }
  if (typeof body === 'string') return body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
  return '';
}

/** The '.tag' path of the error union, e.g. ['path', 'not_found'] or ['too_many_requests'] */
export function errorTags(error: DropboxHttpError): string[] {
  const tags: string[] = [];
  let node: unknown = (error.error as { error?: unknown } | undefined)?.error;
  while (node !== null && typeof node === 'object') {
    const tag = (node as { '.tag'?: unknown })['.tag'];
    if (typeof tag !== 'string') {
      // a RateLimitError has no tag of its own: { reason: { '.tag': ... }, retry_after }
      node = (node as { reason?: unknown }).reason;
      continue;
    }
    tags.push(tag);
    node = (node as Record<string, unknown>)[tag];
  }
  return tags;
}

export function isNotFound(error: unknown): boolean {
  if (!isDropboxHttpError(error) || error.status !== 409) return false;
  const tags = errorTags(error);
  return tags[tags.length - 1] === 'not_found' && (tags[0] === 'path' || tags[0] === 'path_lookup');
}

export function isExpiredToken(error: unknown): boolean {
  return isDropboxHttpError(error) && error.status === 401 && errorTags(error)[0] === 'expired_access_token';
}

function header(error: DropboxHttpError, name: string): string | undefined {
  const h = error.headers;
  if (!h) return undefined;
  if (typeof (h as { get?: unknown }).get === 'function') return (h as { get(n: string): string | null }).get(name) ?? undefined;
  const found = Object.entries(h).find(([k]) => k.toLowerCase() === name.toLowerCase());
  return found === undefined ? undefined : String(found[1]);
}

/** Retry-After (seconds, or an HTTP date) or the body's retry_after, in milliseconds */
export function retryAfterMs(error: DropboxHttpError, now = Date.now()): number | undefined {
  const value = header(error, 'retry-after');
  if (value !== undefined) {
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
    const date = Date.parse(value);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  const body = (error.error as { error?: { retry_after?: unknown } } | undefined)?.error;
  return typeof body?.retry_after === 'number' ? body.retry_after * 1000 : undefined;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);

export function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const e = error as { code?: unknown; type?: unknown };
  return (
    (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) ||
    e.type === 'system' ||
    e.type === 'request-timeout' ||
    error.name === 'DropboxNetworkError' ||
    /socket hang up|premature close/i.test(error.message)
  );
}

const HINTS: Record<string, string> = {
  insufficient_space: 'The Dropbox account is full: free space in Dropbox or upgrade the plan.',
  no_write_permission: 'The Dropbox app may not write here: check the app\'s permissions (files.content.write) and the storage root.',
  malformed_path: 'The storage root or key is not a valid Dropbox path; check the root in the configuration.',
  disallowed_name: 'Dropbox refuses this file name; keys must avoid names Dropbox reserves.',
  conflict: 'Something else occupies this path in Dropbox (a folder, or a file where a folder is needed); move it out of the storage root.',
  too_many_write_operations: 'Too many writes reached the same Dropbox namespace at once; fewer concurrent uploads will help.',
};

/**
 * Maps anything a Dropbox call throws to our storage errors. Retryable: 429 (with the server's
 * delay), 5xx, network failures and upload-session bookkeeping errors (a fresh put starts a new
 * session). Permanent with a hint: auth failures, 400 (a bug or missing permission), other 409s.
 * Messages are built from status and error_summary only, and scrubbed, so no token reaches them.
 */
export function classifyDropboxError(error: unknown, ctx: ClassifyContext): unknown {
  if (error instanceof StorageError || isAbortError(error)) return error;
  const where = `${ctx.storage}: ${ctx.operation} ${ctx.key}`;
  if (isDropboxHttpError(error)) {
    const status = error.status;
    const summary = errorSummary(error);
    const tags = errorTags(error);
    const message = redactText(`${where}: dropbox answered ${status}${summary ? ` ${summary}` : ''}`);
    if (status === 409 && isNotFound(error) && ctx.operation !== 'put') return new StorageNotFoundError(ctx.storage, ctx.key, { cause: error });
    if (status === 429) {
      const after = retryAfterMs(error);
      return new StorageError(message, { cause: error, retryable: true, ...(after !== undefined ? { retryAfterMs: after } : {}), hint: HINTS['too_many_write_operations'] });
    }
    if (status >= 500) {
      const after = retryAfterMs(error);
      return new StorageError(message, { cause: error, retryable: true, ...(after !== undefined ? { retryAfterMs: after } : {}) });
    }
    if (status === 401) {
      const expired = tags[0] === 'expired_access_token';
      return new StorageError(message, {
        cause: error,
        hint: expired
          ? 'The Dropbox access token has expired: configure refreshToken, clientId and clientSecret so the tool can renew its access.'
          : 'Dropbox refused the access token: create a new one (or a new refresh token) for the app and update the secret.',
      });
    }
    if (status === 400 && /invalid_grant|invalid_client/.test(summary)) {
      return new StorageError(message, {
        cause: error,
        hint: 'Dropbox refused the app credentials: check clientId and clientSecret, and authorise the app again if the refresh token was revoked.',
      });
    }
    if (status === 403) {
      return new StorageError(message, { cause: error, hint: 'The Dropbox app lacks a permission (scope) this needs: enable files.content.write and files.content.read and authorise again.' });
    }
    if (status === 409) {
      // an upload session that vanished or lost track of its offset: a whole new put starts afresh
      const sessionTrouble = tags.some((t) => t === 'incorrect_offset' || t === 'closed' || t === 'lookup_failed') || (tags[0] === 'not_found' && ctx.operation === 'put');
      const hint = tags.map((t) => HINTS[t]).find((h) => h !== undefined);
      return new StorageError(message, { cause: error, retryable: sessionTrouble || tags.includes('too_many_write_operations'), ...(hint ? { hint } : {}) });
    }
    return new StorageError(message, {
      cause: error,
      hint: status === 400 ? 'Dropbox rejected the request as malformed; this is likely a bug, please report it with the log.' : undefined,
    });
  }
  if (isNetworkError(error)) {
    const code = (error as { code?: unknown }).code;
    return new StorageError(redactText(`${where}: network error talking to dropbox: ${(error as Error).message}${typeof code === 'string' && !(error as Error).message.includes(code) ? ` (${code})` : ''}`), {
      cause: error,
      retryable: true,
    });
  }
  return new StorageError(redactText(`${where}: ${error instanceof Error ? error.message : String(error)}`), { cause: error });
}
