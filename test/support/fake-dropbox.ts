import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/**
 * A local Dropbox API v2 server speaking the real wire protocol (content endpoints with the
 * Dropbox-API-Arg / Dropbox-API-Result headers, JSON RPC endpoints, OAuth2 refresh), so the real
 * SDK and our own streaming download run against it unchanged. Files live on disk, streamed, so
 * a 200 MiB upload costs no memory. Faults are scripted per endpoint; every request is logged.
 */
export interface FakeDropboxOptions {
  /** access tokens valid from the start (default one: `fake-access-token`) */
  accessTokens?: string[];
  /** the app credentials /oauth2/token accepts for grant_type=refresh_token */
  app?: { clientId: string; clientSecret: string; refreshToken: string };
  /** expires_in of issued tokens (default 14400, as Dropbox) */
  tokenLifetimeSeconds?: number;
}

export interface FakeFileInfo {
  '.tag': 'file';
  name: string;
  path_lower: string;
  path_display: string;
  id: string;
  size: number;
  content_hash: string;
  server_modified: string;
  client_modified: string;
  rev: string;
  is_downloadable: boolean;
}

export interface LoggedRequest {
  method: string;
  path: string;
  /** as sent, query string included */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** the body of RPC and OAuth calls (small JSON or form data); content bodies are not kept */
  body?: string;
  /** when the request arrived, in ms on a monotonic clock (performance.now) */
  atMs: number;
}

export type FaultReply =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  /** 'request': read `afterBytes` of the request body, then cut the connection; 'response': send headers and `afterBytes` of the body, then cut */
  | { drop: 'request' | 'response'; afterBytes?: number }
  /** upload or upload_session/finish: receive everything, then flip the byte at `offset` of the stored file before it is hashed and committed */
  | { tamper: 'stored'; offset: number };

type Matcher = string | RegExp | ((request: LoggedRequest) => boolean);
interface Fault {
  match: Matcher;
  left: number;
  reply: FaultReply;
}

export interface FakeDropbox {
  baseUrl: string;
  port: number;
  /** every request received, in order */
  requests: LoggedRequest[];
  files: {
    list(): FakeFileInfo[];
    get(path: string): FakeFileInfo | undefined;
    read(path: string): Promise<Buffer>;
    /** flips one byte on disk and leaves the metadata (content_hash) alone: bit rot behind Dropbox's back */
    corrupt(path: string, offset?: number): Promise<void>;
    /** new bytes and new metadata, as if another client had uploaded them */
    replace(path: string, data: Buffer): Promise<void>;
    /** upload sessions started and neither finished nor abandoned */
    openSessions(): number;
  };
  tokens: {
    /** a new valid access token */
    issue(): string;
    /** every token issued so far answers 401 expired_access_token from now on */
    expireAll(): void;
  };
  faults: {
    add(match: Matcher, reply: FaultReply, times?: number): void;
    rateLimit(match: Matcher, retryAfterSeconds: number, times?: number): void;
    status(match: Matcher, status: number, times?: number): void;
    drop(match: Matcher, phase: 'request' | 'response', afterBytes: number, times?: number): void;
    /** the next upload or finish matching stores other bytes than it received: the byte at `offset` flipped */
    tamper(match: Matcher, offset: number, times?: number): void;
    /** faults not yet used up */
    pending(): number;
    clear(): void;
  };
  stop(): Promise<void>;
}

const BLOCK = 4 * 1024 * 1024;
const MAX_SINGLE_UPLOAD = 150 * 1024 * 1024;

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
  }
}

/** 409 with the nested union tags Dropbox uses, e.g. tagged('path', 'not_found') */
const conflict = (summary: string, error: Record<string, unknown>): ApiError =>
  new ApiError(409, { error_summary: `${summary}/..`, error });
const pathError = (outer: string, inner: string, extra: Record<string, unknown> = {}): ApiError =>
  conflict(`${outer}/${inner}`, { '.tag': outer, [outer]: { '.tag': inner, ...extra } });

/** ASCII-only JSON, as Dropbox sends in headers (non-ASCII escaped as \uXXXX) */
const headerJson = (value: unknown): string => JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

export async function startFakeDropbox(opts: FakeDropboxOptions = {}): Promise<FakeDropbox> {
  const dir = await mkdtemp(join(tmpdir(), 'ma-fake-dropbox-'));
  await mkdir(join(dir, 'blobs'));
  await mkdir(join(dir, 'tmp'));
  const lifetime = opts.tokenLifetimeSeconds ?? 14_400;
  const tokens = new Map<string, 'valid' | 'expired'>((opts.accessTokens ?? ['fake-access-token']).map((t) => [t, 'valid']));
  const files = new Map<string, FakeFileInfo & { blob: string }>();
  /** path_lower → path_display; folders persist after their files are deleted, as on Dropbox */
  const folders = new Map<string, string>();
  const sessions = new Map<string, { file: string; offset: number; closed: boolean }>();
  const cursors = new Map<string, unknown[]>();
  const requests: LoggedRequest[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  let counter = 0;
  const nextId = () => (++counter).toString(36).padStart(6, '0');

  const issue = (): string => {
    const token = `sl.fake-${randomBytes(12).toString('hex')}`;
    tokens.set(token, 'valid');
    return token;
  };

  const takeFault = (request: LoggedRequest): FaultReply | undefined => {
    const fault = faults.find((f) =>
      typeof f.match === 'string' ? f.match === request.path : f.match instanceof RegExp ? f.match.test(request.path) : f.match(request),
    );
    if (!fault) return undefined;
    if (--fault.left <= 0) faults.splice(faults.indexOf(fault), 1);
    return fault.reply;
  };

  // --- paths -------------------------------------------------------------------------------------

  const checkPath = (path: unknown, allowRoot = false): string => {
    if (typeof path !== 'string') throw new ApiError(400, 'Error in call to API function: request body: path: missing');
    if (path === '/' && allowRoot) throw new ApiError(400, 'Error in call to API function: request body: path: Specify the root folder as an empty string rather than as "/".');
    if (path === '' && allowRoot) return '';
    if (!path.startsWith('/') || path.endsWith('/') || path.includes('//')) throw pathError('path', 'malformed_path');
    return path;
  };
  const parentsOf = (lower: string): string[] => {
    const parts = lower.split('/');
    return parts.slice(1, -1).map((_, i) => parts.slice(0, i + 2).join('/'));
  };

  const folderMeta = (lower: string) => ({
    '.tag': 'folder',
    name: folders.get(lower)!.split('/').pop()!,
    path_lower: lower,
    path_display: folders.get(lower)!,
    id: `id:folder-${createHash('sha1').update(lower).digest('hex').slice(0, 12)}`,
  });
  const publicMeta = (f: FakeFileInfo & { blob: string }): FakeFileInfo => {
    const { blob: _blob, ...meta } = f;
    return meta;
  };

  /** Makes `tmpFile` the content of `path`, as upload and upload_session/finish do. */
  const commit = async (path: string, mode: unknown, tmpFile: string): Promise<FakeFileInfo> => {
    const lower = path.toLowerCase();
    const modeTag = typeof mode === 'string' ? mode : ((mode as { '.tag'?: string } | undefined)?.['.tag'] ?? 'add');
    if (folders.has(lower)) throw pathError('path', 'conflict', { conflict: { '.tag': 'folder' } });
    for (const parent of parentsOf(lower)) {
      if (files.has(parent)) throw pathError('path', 'conflict', { conflict: { '.tag': 'file' } });
    }
    const existing = files.get(lower);
    if (existing && modeTag === 'add') throw pathError('path', 'conflict', { conflict: { '.tag': 'file' } });
    // the display path keeps the casing of folders that already exist, as Dropbox does
    const parts = path.split('/');
    let display = '';
    for (let i = 1; i < parts.length - 1; i++) {
      const parentLower = parts.slice(0, i + 1).join('/').toLowerCase();
      display = folders.get(parentLower) ?? `${display}/${parts[i]}`;
      folders.set(parentLower, display);
    }
    display = `${display}/${parts[parts.length - 1]}`;
    const { size, hash } = await hashFile(tmpFile);
    const blob = join(dir, 'blobs', nextId());
    await rename(tmpFile, blob);
    const now = new Date();
    now.setMilliseconds(0);
    const meta = {
      '.tag': 'file' as const,
      name: display.split('/').pop()!,
      path_lower: lower,
      path_display: display,
      id: existing?.id ?? `id:${randomBytes(8).toString('base64url')}`,
      size,
      content_hash: hash,
      server_modified: now.toISOString().replace('.000Z', 'Z'),
      client_modified: now.toISOString().replace('.000Z', 'Z'),
      rev: randomBytes(9).toString('hex'),
      is_downloadable: true,
      blob,
    };
    files.set(lower, meta);
    if (existing) await rm(existing.blob, { force: true });
    return publicMeta(meta);
  };

  // --- endpoints ---------------------------------------------------------------------------------

  const upload = async (req: IncomingMessage, arg: Record<string, unknown>, fault?: FaultReply): Promise<FakeFileInfo> => {
    const path = checkPath(arg['path']);
    const tmp = join(dir, 'tmp', nextId());
    const size = await receive(req, tmp, 0, 'w');
    if (size > MAX_SINGLE_UPLOAD) {
      await rm(tmp, { force: true });
      throw new ApiError(400, 'Error in call to API function "files/upload": Request body is too large; use upload sessions');
    }
    if (fault && 'tamper' in fault) await flipByte(tmp, fault.offset);
    return commit(path, arg['mode'], tmp);
  };

  const lookupSession = (cursor: unknown, finishing: boolean) => {
    const { session_id: id, offset } = (cursor ?? {}) as { session_id?: string; offset?: number };
    const session = id === undefined ? undefined : sessions.get(id);
    const fail = (inner: string, extra: Record<string, unknown> = {}): ApiError =>
      finishing ? pathError('lookup_failed', inner, extra) : conflict(inner, { '.tag': inner, ...extra });
    if (!session) throw fail('not_found');
    if (offset !== session.offset) throw fail('incorrect_offset', { correct_offset: session.offset });
    if (session.closed && !finishing) throw fail('closed');
    return { id: id!, session };
  };

  const contentCall = async (req: IncomingMessage, res: ServerResponse, endpoint: string, arg: Record<string, unknown>, fault?: FaultReply) => {
    switch (endpoint) {
      case '/2/files/upload':
        return sendJson(res, 200, await upload(req, arg, fault));
      case '/2/files/upload_session/start': {
        const id = `session-${nextId()}`;
        const file = join(dir, 'tmp', id);
        const size = await receive(req, file, 0, 'w');
        sessions.set(id, { file, offset: size, closed: arg['close'] === true });
        return sendJson(res, 200, { session_id: id });
      }
      case '/2/files/upload_session/append_v2': {
        const { session } = lookupSession(arg['cursor'], false);
        session.offset += await receive(req, session.file, session.offset, 'r+');
        if (arg['close'] === true) session.closed = true;
        return sendJson(res, 200, null);
      }
      case '/2/files/upload_session/finish': {
        const { id, session } = lookupSession(arg['cursor'], true);
        const commitArg = (arg['commit'] ?? {}) as Record<string, unknown>;
        const path = checkPath(commitArg['path']);
        session.offset += await receive(req, session.file, session.offset, 'r+');
        if (fault && 'tamper' in fault) await flipByte(session.file, fault.offset);
        const meta = await commit(path, commitArg['mode'], session.file);
        sessions.delete(id);
        return sendJson(res, 200, meta);
      }
      case '/2/files/download': {
        await drain(req);
        const path = checkPath(arg['path']);
        const lower = path.toLowerCase();
        if (folders.has(lower)) throw pathError('path', 'not_file');
        const file = files.get(lower);
        if (!file) throw pathError('path', 'not_found');
        res.writeHead(200, {
          'Content-Type': 'application/octet-stream',
          'Content-Length': String(file.size),
          'Dropbox-API-Result': headerJson(publicMeta(file)),
        });
        const limit = fault && 'drop' in fault ? (fault.afterBytes ?? 0) : undefined;
        if (limit === undefined) return pipeline(createReadStream(file.blob, { highWaterMark: 1 << 20 }), res);
        const head = limit > 0 ? createReadStream(file.blob, { start: 0, end: limit - 1 }) : undefined;
        if (head) for await (const chunk of head) res.write(chunk);
        await new Promise((resolve) => setTimeout(resolve, 20));
        res.socket?.destroy();
        return;
      }
      default:
        await drain(req);
        throw new ApiError(404, 'Unknown API function');
    }
  };

  const rpcCall = (endpoint: string, body: Record<string, unknown>): unknown => {
    switch (endpoint) {
      case '/2/files/get_metadata': {
        const path = checkPath(body['path']);
        const lower = path.toLowerCase();
        const file = files.get(lower);
        if (file) return publicMeta(file);
        if (folders.has(lower)) return folderMeta(lower);
        throw pathError('path', 'not_found');
      }
      case '/2/files/delete_v2': {
        const path = checkPath(body['path']);
        const lower = path.toLowerCase();
        const file = files.get(lower);
        if (file) {
          files.delete(lower);
          void rm(file.blob, { force: true });
          return { metadata: publicMeta(file) };
        }
        if (!folders.has(lower)) throw pathError('path_lookup', 'not_found');
        const meta = folderMeta(lower);
        for (const [key, f] of files) {
          if (key.startsWith(`${lower}/`)) {
            files.delete(key);
            void rm(f.blob, { force: true });
          }
        }
        for (const key of folders.keys()) if (key === lower || key.startsWith(`${lower}/`)) folders.delete(key);
        return { metadata: meta };
      }
      case '/2/files/list_folder': {
        const path = checkPath(body['path'], true);
        const lower = path.toLowerCase();
        if (lower !== '' && files.has(lower)) throw pathError('path', 'not_folder');
        if (lower !== '' && !folders.has(lower)) throw pathError('path', 'not_found');
        const recursive = body['recursive'] === true;
        const under = (key: string) => key.startsWith(`${lower}/`) && (recursive || !key.slice(lower.length + 1).includes('/'));
        const entries: unknown[] = [
          ...(recursive && lower !== '' ? [folderMeta(lower)] : []),
          ...[...folders.keys()].filter(under).map(folderMeta),
          ...[...files.entries()].filter(([key]) => under(key)).map(([, f]) => publicMeta(f)),
        ];
        // Dropbox promises no order: hand entries out in a scrambled but stable one so callers must sort
        const scramble = (e: unknown) => createHash('sha1').update((e as { path_lower: string }).path_lower).digest('hex');
        entries.sort((a, b) => (scramble(a) < scramble(b) ? -1 : 1));
        const limit = typeof body['limit'] === 'number' ? body['limit'] : 2000;
        if (limit < 1 || limit > 2000) throw new ApiError(400, 'Error in call to API function "files/list_folder": request body: limit: out of range');
        return page(entries, limit);
      }
      case '/2/files/list_folder/continue': {
        const cursor = String(body['cursor'] ?? '');
        const rest = cursors.get(cursor);
        if (!rest) throw conflict('reset', { '.tag': 'reset' });
        cursors.delete(cursor);
        return page(rest, Number(cursor.split(':')[1]));
      }
      default:
        throw new ApiError(404, 'Unknown API function');
    }
  };

  const page = (entries: unknown[], limit: number) => {
    const cursor = `cursor-${nextId()}:${limit}`;
    const rest = entries.slice(limit);
    cursors.set(cursor, rest);
    return { entries: entries.slice(0, limit), cursor, has_more: rest.length > 0 };
  };

  const oauthToken = (url: URL, body: string, contentType: string | undefined): unknown => {
    const params = new URLSearchParams(url.search);
    if (contentType?.startsWith('application/x-www-form-urlencoded')) for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
    const app = opts.app;
    if (params.get('grant_type') !== 'refresh_token') throw new ApiError(400, { error: 'unsupported_grant_type' });
    if (!app || params.get('client_id') !== app.clientId || params.get('client_secret') !== app.clientSecret) {
      throw new ApiError(400, { error: 'invalid_client: Invalid client_id or client_secret' });
    }
    if (params.get('refresh_token') !== app.refreshToken) {
      throw new ApiError(400, { error: 'invalid_grant', error_description: 'refresh token is malformed' });
    }
    return { access_token: issue(), expires_in: lifetime, token_type: 'bearer' };
  };

  // --- transport ---------------------------------------------------------------------------------

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const endpoint = url.pathname;
    const isContent = endpoint === '/2/files/download' || endpoint.startsWith('/2/files/upload');
    const entry: LoggedRequest = { method: req.method ?? '', path: endpoint, url: req.url ?? '', headers: { ...req.headers }, atMs: performance.now() };
    requests.push(entry);
    try {
      if (!isContent) entry.body = await readText(req);
      const fault = takeFault(entry);
      if (fault && 'status' in fault) {
        if (isContent) await drain(req);
        return sendJson(res, fault.status, fault.body ?? defaultFaultBody(fault.status), fault.headers);
      }
      if (fault && 'drop' in fault && fault.drop === 'request') {
        // held before reading: ending the body iterator early detaches req.socket (null afterwards)
        const socket = req.socket;
        await consume(req, fault.afterBytes ?? 0);
        socket.destroy();
        return;
      }
      if (req.method !== 'POST') throw new ApiError(405, 'Method not allowed');
      if (endpoint === '/oauth2/token') return sendJson(res, 200, oauthToken(url, entry.body ?? '', req.headers['content-type']));
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const state = token === undefined ? undefined : tokens.get(token);
      if (state !== 'valid') {
        if (isContent) await drain(req);
        const tag = state === 'expired' ? 'expired_access_token' : 'invalid_access_token';
        throw new ApiError(401, { error_summary: `${tag}/`, error: { '.tag': tag } });
      }
      if (isContent) {
        let arg: Record<string, unknown>;
        try {
          arg = JSON.parse(String(req.headers['dropbox-api-arg'] ?? '')) as Record<string, unknown>;
        } catch {
          await drain(req);
          throw new ApiError(400, 'Error in call to API function: could not decode input as JSON');
        }
        return await contentCall(req, res, endpoint, arg, fault);
      }
      let body: Record<string, unknown>;
      try {
        body = entry.body ? (JSON.parse(entry.body) as Record<string, unknown>) : {};
      } catch {
        throw new ApiError(400, 'Error in call to API function: request body: could not decode input as JSON');
      }
      return sendJson(res, 200, rpcCall(endpoint, body));
    } catch (error) {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      if (error instanceof ApiError) {
        if (isContent && !req.complete) await drain(req).catch(() => undefined);
        return sendJson(res, error.status, error.body, error.headers);
      }
      // the client went away mid-body (a cut connection): nothing to answer
      if (req.destroyed || !req.complete) return;
      sendJson(res, 500, { error_summary: 'internal_error/', error: { '.tag': 'other' } });
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  // longer than the client's idle-socket timeout (5 s on Node's global agent), as on real servers,
  // so the client never reuses a connection the server is just closing
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const fileAt = (path: string) => {
    const file = files.get(path.toLowerCase());
    if (!file) throw new Error(`fake dropbox: no file at ${path}`);
    return file;
  };

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    requests,
    files: {
      list: () => [...files.values()].map(publicMeta),
      get: (path) => {
        const file = files.get(path.toLowerCase());
        return file && publicMeta(file);
      },
      read: (path) => readFile(fileAt(path).blob),
      corrupt: (path, offset = 0) => flipByte(fileAt(path).blob, offset),
      replace: async (path, data) => {
        const tmp = join(dir, 'tmp', nextId());
        await writeFile(tmp, data);
        await commit(path, 'overwrite', tmp);
      },
      openSessions: () => sessions.size,
    },
    tokens: {
      issue,
      expireAll: () => {
        for (const token of tokens.keys()) tokens.set(token, 'expired');
      },
    },
    faults: {
      add: (match, reply, times = 1) => void faults.push({ match, reply, left: times }),
      rateLimit: (match, retryAfterSeconds, times = 1) =>
        void faults.push({
          match,
          left: times,
          reply: {
            status: 429,
            headers: { 'Retry-After': String(retryAfterSeconds) },
            body: { error_summary: 'too_many_requests/..', error: { reason: { '.tag': 'too_many_requests' }, retry_after: retryAfterSeconds } },
          },
        }),
      status: (match, status, times = 1) => void faults.push({ match, left: times, reply: { status } }),
      drop: (match, phase, afterBytes, times = 1) => void faults.push({ match, left: times, reply: { drop: phase, afterBytes } }),
      tamper: (match, offset, times = 1) => void faults.push({ match, left: times, reply: { tamper: 'stored', offset } }),
      pending: () => faults.reduce((n, f) => n + f.left, 0),
      clear: () => void faults.splice(0),
    },
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function defaultFaultBody(status: number): unknown {
  if (status === 401) return { error_summary: 'invalid_access_token/', error: { '.tag': 'invalid_access_token' } };
  if (status >= 500) return `<html><body><h1>${status}</h1>Dropbox is having trouble</body></html>`;
  return { error_summary: 'other/', error: { '.tag': 'other' } };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'Content-Length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function drain(req: IncomingMessage): Promise<void> {
  if (req.complete) return;
  for await (const _ of req);
}

async function consume(req: IncomingMessage, bytes: number): Promise<void> {
  let seen = 0;
  if (bytes <= 0) return;
  for await (const chunk of req) {
    seen += (chunk as Buffer).length;
    if (seen >= bytes) return;
  }
}

/** Streams the request body into `file` at `offset`; a body cut short leaves the file as it was. */
async function receive(req: IncomingMessage, file: string, offset: number, flags: 'w' | 'r+'): Promise<number> {
  let size = 0;
  try {
    await pipeline(
      req,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(file, { flags, start: offset }),
    );
  } catch (error) {
    if (flags === 'w') await rm(file, { force: true });
    else await truncate(file, offset).catch(() => undefined);
    throw error;
  }
  if (!req.complete) {
    await truncate(file, offset).catch(() => undefined);
    throw new Error('request body cut short');
  }
  return size;
}

async function flipByte(file: string, offset: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    const { bytesRead } = await handle.read(byte, 0, 1, offset);
    if (bytesRead !== 1) throw new Error(`fake dropbox: no byte at offset ${offset} of ${file}`);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
}

/** Dropbox's content_hash, computed independently of the driver's streaming hasher: read back in 4 MiB blocks. */
async function hashFile(file: string): Promise<{ size: number; hash: string }> {
  const { size } = await stat(file);
  const overall = createHash('sha256');
  const handle = await open(file, 'r');
  try {
    const block = Buffer.alloc(BLOCK);
    for (let pos = 0; pos < size; pos += BLOCK) {
      const { bytesRead } = await handle.read(block, 0, Math.min(BLOCK, size - pos), pos);
      overall.update(createHash('sha256').update(block.subarray(0, bytesRead)).digest());
    }
  } finally {
    await handle.close();
  }
  return { size, hash: overall.digest('hex') };
}
