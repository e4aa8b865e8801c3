import type { Readable } from 'node:stream';
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
      const code = (error as { code?: unknown }).code;
      const reason = String((error as Error).message ?? error).replace(/^.*reason: /s, '').replace(/https?:\/\/\S+/g, '<url>');
      throw new DropboxNetworkError(`dropbox request ${parsed.pathname} failed: ${reason}`, typeof code === 'string' ? code : undefined);
    }
  };
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
  return wrapSdk(new Dropbox({ auth, fetch }), auth, fetch);
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
export function wrapSdk(dbx: Dropbox, auth: AuthLike, fetch: FetchLike): DropboxLike {
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
  // a 200 MiB restore would hold 200 MiB. Same endpoint, same auth, but the body stays a stream.
  const download = async (arg: { path: string }, signal?: AbortSignal): Promise<{ result: DropboxFileMetadata; body: Readable }> => {
    const res = await fetch('https://content.dropboxapi.com/2/files/download', {
      method: 'POST',
      headers: { Authorization: `Bearer ${auth.getAccessToken()}`, 'Dropbox-API-Arg': headerSafeJson(arg) },
      ...(signal ? { signal: signal as NodeFetchInit['signal'] } : {}),
    });
    if (!res.ok) {
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // plain-text errors (400s) stay text
      }
      throw new DropboxResponseError(res.status, res.headers, body);
    }
    const result = JSON.parse(res.headers.get('dropbox-api-result') ?? 'null') as DropboxFileMetadata | null;
    if (result === null) {
      res.body.resume();
      throw new Error('dropbox download answered without a Dropbox-API-Result header');
    }
    return { result, body: res.body as unknown as Readable };
  };

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
