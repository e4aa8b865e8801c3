import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { DropboxResponseError } from 'dropbox';
import { Headers } from 'node-fetch';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DropboxStorageConfig } from '../../src/config/schema.js';
import { resolveSecret } from '../../src/config/secrets.js';
import { StorageError, StorageNotFoundError } from '../../src/errors.js';
import { hashStream } from '../../src/storage/byte-counter.js';
import { classifyDropboxError } from '../../src/storage/dropbox/dropbox-errors.js';
import { createDropboxClient, createDropboxStorage } from '../../src/storage/dropbox/dropbox-storage.js';
import { withRetry, type RetryInfo } from '../../src/storage/retrying-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { readAll } from '../support/bytes.js';
import { startFakeDropbox, type FakeDropbox } from '../support/fake-dropbox.js';

const TOKEN = 'sl.static-access-token-0123456789';
const APP = { clientId: 'app-key-fault', clientSecret: 'client-secret-zyxwvut-42', refreshToken: 'refresh-token-qwertyuiop-77' };
const SECRETS = [TOKEN, APP.clientSecret, APP.refreshToken];
const MiB = 1024 * 1024;
const body = (data: Buffer | string) => () => Readable.from([Buffer.from(data)]);

const config = (fake: FakeDropbox, auth: DropboxStorageConfig['auth']): DropboxStorageConfig => ({ type: 'dropbox', root: '/f', auth, apiBaseUrl: fake.baseUrl });
const withToken = async (fake: FakeDropbox, token = TOKEN, chunkSize = 4 * MiB): Promise<Storage> =>
  createDropboxStorage({
    root: '/f',
    chunkSize,
    client: await createDropboxClient(config(fake, { accessToken: { env: 'T' } }), { resolveSecret, env: { T: token } }),
  });
const withRefresh = async (fake: FakeDropbox, app = APP): Promise<Storage> =>
  createDropboxStorage({
    root: '/f',
    chunkSize: 4 * MiB,
    client: await createDropboxClient(config(fake, { refreshToken: { env: 'R' }, clientId: app.clientId, clientSecret: { env: 'S' } }), {
      resolveSecret,
      env: { R: app.refreshToken, S: app.clientSecret },
    }),
  });

async function failure(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

/** message, stack, JSON and the full inspected form (causes and all properties) of an error */
function everythingIn(error: unknown): string {
  const e = error as Error;
  return [e.message, e.stack, JSON.stringify(e), inspect(e, { depth: 20, showHidden: true })].join('\n');
}

describe('dropbox faults', () => {
  let fake: FakeDropbox;
  beforeAll(async () => {
    fake = await startFakeDropbox({ accessTokens: [TOKEN], app: APP });
  });
  afterEach(() => {
    fake.faults.clear();
  });
  afterAll(async () => {
    await fake.stop();
  });

  it('a 429 with Retry-After: 1 is retryable after 1000 ms', async () => {
    const storage = await withToken(fake);
    fake.faults.rateLimit('/2/files/upload', 1);
    const error = await failure(storage.put('rl/a', body('x')));
    expect(error.retryable).toBe(true);
    expect(error.retryAfterMs).toBe(1000);
    expect(error.message).toMatch(/429 too_many_requests/);
  });

  it('503 on any call is retryable', async () => {
    const storage = await withToken(fake);
    fake.faults.status('/2/files/get_metadata', 503);
    expect((await failure(storage.head('x'))).retryable).toBe(true);
    fake.faults.status('/2/files/list_folder', 500);
    expect((await failure(storage.list('x/')[Symbol.asyncIterator]().next())).retryable).toBe(true);
    fake.faults.status('/2/files/upload_session/finish', 502);
    expect((await failure(storage.put('five', body(randomBytes(5 * MiB))))).retryable).toBe(true);
    expect(fake.files.get('/f/five')).toBeUndefined();
  });

  it('an access token that expires between calls is refreshed once, transparently', async () => {
    const storage = await withRefresh(fake);
    const from = fake.requests.length;
    await storage.put('exp/a', body('first'));
    fake.tokens.expireAll();
    await storage.put('exp/b', body(randomBytes(9 * MiB)));
    expect((await readAll(await storage.get('exp/a'))).toString()).toBe('first');
    const seen = fake.requests.slice(from).map((r) => r.path);
    // the first refresh is the SDK's own (no token yet); the second follows the 401
    expect(seen.filter((p) => p === '/oauth2/token')).toHaveLength(2);
    expect(seen.slice(0, 4)).toEqual(['/oauth2/token', '/2/files/upload', '/2/files/upload_session/start', '/oauth2/token']);
  });

  it('an expired access token without a refresh token is permanent, with a hint', async () => {
    const token = fake.tokens.issue();
    const storage = await withToken(fake, token);
    fake.tokens.expireAll();
    const error = await failure(storage.head('anything'));
    expect(error.retryable).toBe(false);
    expect(error.hint).toMatch(/refreshToken/);
  });

  it('a connection broken mid-upload-session rejects retryable and leaves no file', async () => {
    // a token of its own: an earlier test expired every token issued before it
    const storage = await withToken(fake, fake.tokens.issue());
    fake.faults.drop('/2/files/upload_session/append_v2', 'request', 1 * MiB);
    const from = fake.requests.length;
    const error = await failure(storage.put('cut/a', body(randomBytes(13 * MiB))));
    expect(error.retryable).toBe(true);
    expect(fake.files.get('/f/cut/a')).toBeUndefined();
    expect(fake.requests.slice(from).map((r) => r.path)).not.toContain('/2/files/upload_session/finish');
    await expect(storage.head('cut/a')).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('a connection broken mid-download fails the stream retryable instead of ending it short', async () => {
    const storage = await withToken(fake, fake.tokens.issue());
    const put = await storage.put('dl/a', body(randomBytes(6 * MiB)));
    fake.faults.drop('/2/files/download', 'response', 2 * MiB);
    const error = await failure(hashStream(await storage.get('dl/a')));
    expect(error.retryable).toBe(true);
    expect(await hashStream(await storage.get('dl/a'))).toEqual({ size: put.size, sha256: put.sha256 });
  });

  it('no secret appears in any error, whatever fails', async () => {
    const errors: unknown[] = [];
    const grab = (p: Promise<unknown>) => p.then(() => expect.fail('expected a failure'), (e: unknown) => void errors.push(e));

    // refused refresh token, refused client secret
    await grab(withRefresh(fake, { ...APP, refreshToken: 'refresh-token-revoked-000' }).then((s) => s.head('a')));
    await grab(withRefresh(fake, { ...APP, clientSecret: 'client-secret-wrong-111' }).then((s) => s.head('a')));
    // the token endpoint cutting the connection (node-fetch puts the URL in such messages)
    fake.faults.drop('/oauth2/token', 'request', 0);
    await grab(withRefresh(fake).then((s) => s.put('a', body('x'))));
    // an unknown access token, rate limiting, a broken upload and a broken download
    await grab(withToken(fake, 'sl.unknown-token-555555').then((s) => s.head('a')));
    const storage = await withRefresh(fake);
    fake.faults.rateLimit('/2/files/upload', 3);
    await grab(storage.put('a', body('x')));
    fake.faults.drop('/2/files/upload_session/start', 'request', 64 * 1024);
    await grab(storage.put('b', body(randomBytes(5 * MiB))));
    await storage.put('c', body(randomBytes(5 * MiB)));
    fake.faults.drop('/2/files/download', 'response', 1024);
    await grab(storage.get('c').then(hashStream));

    expect(errors).toHaveLength(7);
    for (const error of errors) {
      expect(error).toBeInstanceOf(StorageError);
      const text = everythingIn(error);
      for (const secret of [...SECRETS, 'refresh-token-revoked-000', 'client-secret-wrong-111', 'sl.unknown-token-555555']) {
        expect(text).not.toContain(secret);
      }
      expect(text).not.toMatch(/oauth2\/token\?/);
    }
    expect(everythingIn(errors[0])).toMatch(/invalid_grant/);
    expect((errors[0] as StorageError).hint).toMatch(/authorise the app again/);
  });
});

describe('classifyDropboxError', () => {
  const ctx = { storage: 'dropbox:/f', operation: 'get' as const, key: 'k' };
  const response = (status: number, error: unknown, headers: Record<string, string> = {}) => new DropboxResponseError(status, new Headers(headers), error);
  const tagged = (summary: string, error: unknown) => ({ error_summary: summary, error });
  const cases: { name: string; error: unknown; op?: 'put' | 'get' | 'delete'; retryable: boolean; retryAfterMs?: number; notFound?: boolean; hint?: RegExp }[] = [
    { name: '429 Retry-After header', error: response(429, tagged('too_many_requests/..', { reason: { '.tag': 'too_many_requests' }, retry_after: 1 }), { 'Retry-After': '2' }), retryable: true, retryAfterMs: 2000 },
    { name: '429 body retry_after only', error: response(429, tagged('too_many_write_operations/', { reason: { '.tag': 'too_many_write_operations' }, retry_after: 3 })), retryable: true, retryAfterMs: 3000 },
    { name: '429 flat tag', error: response(429, tagged('too_many_requests/', { '.tag': 'too_many_requests', retry_after: 1 })), retryable: true, retryAfterMs: 1000 },
    { name: '500 html', error: response(500, '<html>oops</html>'), retryable: true },
    { name: '503 with Retry-After', error: response(503, '', { 'Retry-After': '5' }), retryable: true, retryAfterMs: 5000 },
    { name: '401 expired', error: response(401, tagged('expired_access_token/', { '.tag': 'expired_access_token' })), retryable: false, hint: /refreshToken/ },
    { name: '401 invalid', error: response(401, tagged('invalid_access_token/', { '.tag': 'invalid_access_token' })), retryable: false, hint: /new one/ },
    { name: '400 invalid_grant', error: response(400, { error: 'invalid_grant', error_description: 'refresh token is malformed' }), retryable: false, hint: /authorise the app again/ },
    { name: '400 text', error: response(400, 'Error in call to API function "files/upload": bad arg'), retryable: false, hint: /bug/ },
    { name: '403', error: response(403, tagged('missing_scope/', { '.tag': 'missing_scope' })), retryable: false, hint: /scope/ },
    { name: '409 not_found on get', error: response(409, tagged('path/not_found/..', { '.tag': 'path', path: { '.tag': 'not_found' } })), retryable: false, notFound: true },
    { name: '409 not_found on put', op: 'put', error: response(409, tagged('path/not_found/..', { '.tag': 'path', path: { '.tag': 'not_found' } })), retryable: false },
    { name: '409 insufficient_space', op: 'put', error: response(409, tagged('path/insufficient_space/..', { '.tag': 'path', path: { '.tag': 'insufficient_space' } })), retryable: false, hint: /full/ },
    { name: '409 conflict', op: 'put', error: response(409, tagged('path/conflict/folder/', { '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } })), retryable: false, hint: /occupies/ },
    { name: '409 incorrect_offset', op: 'put', error: response(409, tagged('incorrect_offset/..', { '.tag': 'incorrect_offset', correct_offset: 4 })), retryable: true },
    { name: '409 finish lookup_failed', op: 'put', error: response(409, tagged('lookup_failed/not_found/', { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'not_found' } })), retryable: true },
    { name: 'ECONNRESET', error: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), retryable: true },
    { name: 'programming error', error: new TypeError('x is not a function'), retryable: false },
  ];
  it.each(cases)('$name', ({ error, op, retryable, retryAfterMs, notFound, hint }) => {
    const got = classifyDropboxError(error, { ...ctx, operation: op ?? ctx.operation }) as StorageError;
    expect(got).toBeInstanceOf(StorageError);
    expect(got.retryable).toBe(retryable);
    expect(got.retryAfterMs).toBe(retryAfterMs);
    expect(got instanceof StorageNotFoundError).toBe(notFound ?? false);
    if (hint) expect(got.hint).toMatch(hint);
    expect(got.message).toMatch(/^dropbox:\/f: /);
  });
});

describe('dropbox behind withRetry (real SDK, fake server)', () => {
  let fake: FakeDropbox;
  beforeAll(async () => {
    fake = await startFakeDropbox({ accessTokens: [TOKEN], app: APP });
  });
  afterEach(() => {
    expect(fake.faults.pending()).toBe(0);
    fake.faults.clear();
  });
  afterAll(async () => {
    await fake.stop();
  });
  const retrying = (storage: Storage, retries: RetryInfo[]) =>
    withRetry(storage, { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 50, onRetry: (info) => void retries.push(info) });
  const since = (from: number, path: string) => fake.requests.slice(from).filter((r) => r.path === path);

  it('waits out a 429 Retry-After: 1 for real and then puts once', async () => {
    const retries: RetryInfo[] = [];
    const storage = retrying(await withToken(fake, fake.tokens.issue()), retries);
    fake.faults.rateLimit('/2/files/upload', 1);
    const from = fake.requests.length;
    const put = await storage.put('retry/a', body('after the wait'));
    expect(put.size).toBe(14);
    expect(retries.map((r) => r.delayMs)).toEqual([1000]);
    const uploads = since(from, '/2/files/upload');
    expect(uploads).toHaveLength(2);
    expect(uploads[1]!.atMs - uploads[0]!.atMs).toBeGreaterThanOrEqual(1000);
    expect(fake.files.get('/f/retry/a')?.size).toBe(14);
  });

  it('retries 5xx answers until the put lands, reopening the source for a fresh upload session', async () => {
    const retries: RetryInfo[] = [];
    const storage = retrying(await withToken(fake, fake.tokens.issue()), retries);
    fake.faults.status('/2/files/upload', 503, 2);
    const from = fake.requests.length;
    expect((await storage.put('five/small', body('x'))).size).toBe(1);
    expect(since(from, '/2/files/upload')).toHaveLength(3);

    const data = randomBytes(9 * MiB);
    let opened = 0;
    fake.faults.status('/2/files/upload_session/finish', 502);
    const mid = fake.requests.length;
    const put = await storage.put('five/large', () => (opened++, Readable.from([data])));
    expect(opened).toBe(2);
    expect(since(mid, '/2/files/upload_session/start')).toHaveLength(2);
    expect(await hashStream(await storage.get('five/large'))).toEqual({ size: data.length, sha256: put.sha256 });
    expect(retries.map((r) => (r.error as StorageError).message)).toEqual([
      expect.stringMatching(/503/),
      expect.stringMatching(/503/),
      expect.stringMatching(/502/),
    ]);
  });

  it('a 401 for an expired token is answered by one refresh inside the call, not by a retry', async () => {
    const retries: RetryInfo[] = [];
    const storage = retrying(await withRefresh(fake), retries);
    await storage.put('auth/a', body('first'));
    fake.tokens.expireAll();
    const from = fake.requests.length;
    await storage.put('auth/b', body('second'));
    expect((await readAll(await storage.get('auth/b'))).toString()).toBe('second');
    expect(retries).toEqual([]);
    expect(fake.requests.slice(from).map((r) => r.path)).toEqual(['/2/files/upload', '/oauth2/token', '/2/files/upload', '/2/files/download']);
  });

  it('an expired token that cannot be refreshed is permanent: one attempt, no retries', async () => {
    const retries: RetryInfo[] = [];
    const storage = retrying(await withToken(fake, fake.tokens.issue()), retries);
    fake.tokens.expireAll();
    const from = fake.requests.length;
    const error = await failure(storage.put('auth/c', body('x')));
    expect(error.retryable).toBe(false);
    expect(retries).toEqual([]);
    expect(since(from, '/2/files/upload')).toHaveLength(1);
  });
});
