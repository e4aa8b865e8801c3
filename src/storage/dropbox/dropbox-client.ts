import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { PassThrough, type Readable } from 'node:stream';
import { Dropbox, DropboxAuth, DropboxResponseError } from 'dropbox';
import nodeFetch, { type RequestInit as NodeFetchInit, type Response as NodeFetchResponse } from 'node-fetch';
import type { DropboxStorageConfig, SecretRef } from '../../config/schema.js';
import { registerSecret } from '../../ops/redact.js';
import { isExpiredToken } from './dropbox-errors.js';

/** Dropbox file metadata, as far as the driver reads it */
export interface DropboxFileMetadata {
  '.tag'?: string;
  name: string;
  path_lower?: string;
  path_display?: string;
  size: number;
  content_hash?: string;
  server_modified?: string;
}
export type DropboxEntry = DropboxFileMetadata | { '.tag': 'folder' | 'deleted'; name: string; path_lower?: string; path_display?: string };

interface Res<T> {
  result: T;
}
type WriteMode = { '.tag': 'overwrite' } | { '.tag': 'add' };
interface UploadCursor {
  session_id: string;
  offset: number;
}
export interface ListFolderResult {
  entries: DropboxEntry[];
  cursor: string;
  has_more: boolean;
}

/**
 * The slice of the Dropbox SDK the driver uses, plus a streaming download the SDK lacks. Kept
 * structural so tests can put anything with this shape in front of the driver.
 */
export interface DropboxLike {
  filesUpload(arg: { path: string; mode: WriteMode; contents: Buffer; mute?: boolean; autorename?: boolean }): Promise<Res<DropboxFileMetadata>>;
  filesUploadSessionStart(arg: { contents: Buffer; close?: boolean }): Promise<Res<{ session_id: string }>>;
  filesUploadSessionAppendV2(arg: { cursor: UploadCursor; contents: Buffer; close?: boolean }): Promise<unknown>;
  filesUploadSessionFinish(arg: {
    cursor: UploadCursor;
    commit: { path: string; mode: WriteMode; mute?: boolean; autorename?: boolean };
    contents: Buffer;
  }): Promise<Res<DropboxFileMetadata>>;
  filesListFolder(arg: { path: string; recursive?: boolean; limit?: number }): Promise<Res<ListFolderResult>>;
  filesListFolderContinue(arg: { cursor: string }): Promise<Res<ListFolderResult>>;
  filesGetMetadata(arg: { path: string }): Promise<Res<DropboxEntry>>;
  filesDeleteV2(arg: { path: string }): Promise<unknown>;
  /**
   * POST /2/files/download, answering once the headers are in: the metadata from the
   * Dropbox-API-Result header and the body as a stream. A non-2xx answer rejects with the SDK's
   * DropboxResponseError, like the SDK calls.
   */
  download(arg: { path: string }, signal?: AbortSignal): Promise<{ result: DropboxFileMetadata; body: Readable }>;
}

export type FetchLike = (url: string, init?: NodeFetchInit) => Promise<NodeFetchResponse>;

const DROPBOX_HOST = /^https:\/\/(?:api|content|notify)\.dropboxapi\.com(?=\/)/;
const TOKEN_PATH = '/oauth2/token';

/** Thrown instead of node-fetch's FetchError, whose message carries the full URL. */
export class DropboxNetworkError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'DropboxNetworkError';
  }
}

/**
 * The fetch the SDK and our download go through. It is node-fetch v2 on purpose: the SDK's CJS
 * build calls `res.buffer()`, which Node's own fetch lacks. It (1) sends Dropbox's fixed https
 * hosts to `apiBaseUrl` when one is set (the tests' fake); (2) moves the refresh flow's
 * client_secret and refresh_token from the URL query (where the SDK puts them, and where proxies
 * and access logs keep them) into a form body, which /oauth2/token accepts equally; (3) replaces
 * network errors with ones that name only the endpoint path, never a URL with a query.
 */
export function createDropboxFetch(apiBaseUrl?: string, fetchImpl: FetchLike = nodeFetch as unknown as FetchLike): FetchLike {
  const base = apiBaseUrl?.replace(/\/+$/, '');
  return async (url, init = {}) => {
    let target = base ? url.replace(DROPBOX_HOST, base) : url;
    let options = init;
    const parsed = new URL(target);
    if (parsed.pathname === TOKEN_PATH && parsed.search !== '') {
      const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>).filter(([k]) => k.toLowerCase() !== 'content-type'));
      options = { ...init, method: 'POST', headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' }, body: parsed.searchParams.toString() };
      parsed.search = '';
      target = parsed.toString();
    }
    try {
      return await fetchImpl(target, options);
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw networkError(parsed.pathname, error);
    }
  };
}

/** A network failure that names only the endpoint path: node's and node-fetch's messages carry URLs with queries. */
function networkError(path: string, error: unknown): DropboxNetworkError {
  const code = (error as { code?: unknown }).code;
  const reason = String((error as Error).message ?? error).replace(/^.*reason: /s, '').replace(/https?:\/\/\S+/g, '<url>');
  return new DropboxNetworkError(`dropbox request ${path} failed: ${reason}`, typeof code === 'string' ? code : undefined);
}

/** The response stream, its errors rewritten so that none carries a URL. */
function relayErrors(body: Readable): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  body.on('error', (error) => out.destroy(error instanceof DropboxNetworkError ? error : networkError('/2/files/download', error)));
  out.on('close', () => {
    if (!body.destroyed) body.destroy();
  });
  body.pipe(out);
  return out;
}

export interface DropboxClientDeps {
  resolveSecret: (ref: SecretRef, env: NodeJS.ProcessEnv) => Promise<string>;
  env: NodeJS.ProcessEnv;
  /** overrides config.apiBaseUrl (tests) */
  apiBaseUrl?: string;
  /** tests inject a fetch to observe or break the transport */
  fetch?: FetchLike;
}

/** Resolves the configured secrets and builds the SDK behind a `DropboxLike`. */
export async function createDropboxClient(config: DropboxStorageConfig, deps: DropboxClientDeps): Promise<DropboxLike> {
  const secret = async (ref: SecretRef): Promise<string> => {
    const value = await deps.resolveSecret(ref, deps.env);
    registerSecret(value);
    return value;
  };
  const fetch = deps.fetch ?? createDropboxFetch(deps.apiBaseUrl ?? config.apiBaseUrl);
  const auth =
    'accessToken' in config.auth
      ? new DropboxAuth({ accessToken: await secret(config.auth.accessToken), fetch })
      : new DropboxAuth({
          refreshToken: await secret(config.auth.refreshToken),
          clientId: typeof config.auth.clientId === 'string' ? config.auth.clientId : await secret(config.auth.clientId),
          clientSecret: await secret(config.auth.clientSecret),
          fetch,
        });
  return wrapSdk(new Dropbox({ auth, fetch }), auth, (deps.apiBaseUrl ?? config.apiBaseUrl)?.replace(/\/+$/, ''));
}

/** The parts of DropboxAuth used here; its typings declare the promise-returning calls as void. */
interface AuthLike {
  getAccessToken(): string;
  getRefreshToken(): string;
  checkAndRefreshAccessToken(): unknown;
  refreshAccessToken(): unknown;
}

/**
 * The SDK only renews a token when its own clock says it is due; a token revoked or expired early
 * answers 401 expired_access_token. Then we refresh once (shared by concurrent calls) and repeat
 * the call. Arguments are copied per attempt because the SDK deletes `contents` from them.
 */
export function wrapSdk(dbx: Dropbox, auth: AuthLike, baseUrl?: string): DropboxLike {
  let refreshing: Promise<void> | undefined;
  const canRefresh = () => Boolean(auth.getRefreshToken());
  const noteToken = () => {
    const token = auth.getAccessToken();
    if (token) registerSecret(token);
  };
  const fresh = async (): Promise<void> => {
    await auth.checkAndRefreshAccessToken();
    noteToken();
  };
  const refresh = (): Promise<void> =>
    (refreshing ??= (async () => {
      try {
        await auth.refreshAccessToken();
        noteToken();
      } finally {
        refreshing = undefined;
      }
    })());

  async function call<A extends object, R>(fn: (arg: A) => Promise<R>, arg: A): Promise<R> {
    await fresh();
    try {
      return await fn({ ...arg });
    } catch (error) {
      if (!isExpiredToken(error) || !canRefresh()) throw error;
      await refresh();
      return fn({ ...arg });
    }
  }

  // Not the SDK's filesDownload: it buffers the whole file (res.buffer() → result.fileBinary), so
  // a 200 MiB restore would hold 200 MiB. Same endpoint and auth, but the body stays a stream, and
  // over node:http rather than node-fetch, whose body never ends or fails when the connection
  // drops mid-body (it pipes the response and loses its 'aborted' error): a cut download must fail.
  const download = (arg: { path: string }, signal?: AbortSignal): Promise<{ result: DropboxFileMetadata; body: Readable }> =>
    new Promise((resolve, reject) => {
      const url = new URL(baseUrl ? `${baseUrl}/2/files/download` : 'https://content.dropboxapi.com/2/files/download');
      const request = (url.protocol === 'http:' ? httpRequest : httpsRequest)(
        url,
        {
          method: 'POST',
          headers: { Authorization: `Bearer ${auth.getAccessToken()}`, 'Dropbox-API-Arg': headerSafeJson(arg) },
          ...(signal ? { signal } : {}),
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('error', (error) => reject(networkError('/2/files/download', error)));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let body: unknown = text;
              try {
                body = JSON.parse(text);
              } catch {
                // plain-text errors (400s) stay text
              }
              reject(new DropboxResponseError(status, res.headers as unknown as Headers, body));
            });
            return;
          }
          const result = JSON.parse(String(res.headers['dropbox-api-result'] ?? 'null')) as DropboxFileMetadata | null;
          if (result === null) {
            res.resume();
            reject(new Error('dropbox download answered without a Dropbox-API-Result header'));
            return;
          }
          res.on('close', () => {
            if (!res.complete && !res.destroyed) res.destroy(networkError('/2/files/download', Object.assign(new Error('connection closed mid-body'), { code: 'ECONNRESET' })));
          });
          const body = res as unknown as Readable;
          // errors on the body (a cut connection) become network errors that name no URL
          body.on('error', () => undefined);
          resolve({ result, body: relayErrors(body) });
        },
      );
      request.on('error', (error) => reject((error as Error).name === 'AbortError' ? error : networkError('/2/files/download', error)));
      request.end();
    });

  return {
    filesUpload: (arg) => call((a) => dbx.filesUpload(a), arg),
    filesUploadSessionStart: (arg) => call((a) => dbx.filesUploadSessionStart(a), arg),
    filesUploadSessionAppendV2: (arg) => call((a) => dbx.filesUploadSessionAppendV2(a), arg),
    filesUploadSessionFinish: (arg) => call((a) => dbx.filesUploadSessionFinish(a), arg),
    filesListFolder: (arg) => call((a) => dbx.filesListFolder(a), arg) as Promise<Res<ListFolderResult>>,
    filesListFolderContinue: (arg) => call((a) => dbx.filesListFolderContinue(a), arg) as Promise<Res<ListFolderResult>>,
    filesGetMetadata: (arg) => call((a) => dbx.filesGetMetadata(a), arg) as Promise<Res<DropboxEntry>>,
    filesDeleteV2: (arg) => call((a) => dbx.filesDeleteV2(a), arg),
    download: (arg, signal) => call((a) => download(a, signal), arg),
  };
}

/** JSON for the Dropbox-API-Arg header: HTTP headers carry ASCII, so the rest goes as \uXXXX (as the SDK does) */
export function headerSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
