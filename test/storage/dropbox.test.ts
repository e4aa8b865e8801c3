import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DropboxStorageConfig } from '../../src/config/schema.js';
import { resolveSecret } from '../../src/config/secrets.js';
import { StorageNotFoundError, VerificationError } from '../../src/errors.js';
import { hashStream } from '../../src/storage/byte-counter.js';
import { ContentHasher, contentHash } from '../../src/storage/dropbox/content-hash.js';
import { createDropboxClient, createDropboxStorage, type DropboxLike } from '../../src/storage/dropbox/dropbox-storage.js';
import type { ObjectInfo } from '../../src/storage/storage.js';
import { readAll, sha256 } from '../support/bytes.js';
import { startFakeDropbox, type FakeDropbox } from '../support/fake-dropbox.js';
import { describeStorageContract } from './contract.js';

const TOKEN = 'fake-access-token';
const APP = { clientId: 'app-key-1234', clientSecret: 'app-secret-s3cr3t-9876', refreshToken: 'refresh-token-abcdefgh-1234' };
const MiB = 1024 * 1024;

const configFor = (fake: FakeDropbox, auth: DropboxStorageConfig['auth'], root = '/mysql-archiver'): DropboxStorageConfig => ({
  type: 'dropbox',
  root,
  auth,
  apiBaseUrl: fake.baseUrl,
});
const accessTokenClient = (fake: FakeDropbox) =>
  createDropboxClient(configFor(fake, { accessToken: { env: 'DBX_TOKEN' } }), { resolveSecret, env: { DBX_TOKEN: TOKEN } });
const refreshClient = (fake: FakeDropbox) =>
  createDropboxClient(configFor(fake, { refreshToken: { env: 'DBX_REFRESH' }, clientId: APP.clientId, clientSecret: { env: 'DBX_SECRET' } }), {
    resolveSecret,
    env: { DBX_REFRESH: APP.refreshToken, DBX_SECRET: APP.clientSecret },
  });
const body = (data: Buffer | string) => () => Readable.from([Buffer.from(data)]);
const collect = async (it: AsyncIterable<ObjectInfo>) => {
  const out: ObjectInfo[] = [];
  for await (const o of it) out.push(o);
  return out;
};

let contractFake: FakeDropbox;
describeStorageContract('dropbox (fake api)', {
  create: async () => {
    contractFake = await startFakeDropbox({ accessTokens: [TOKEN], app: APP });
    return createDropboxStorage({ root: '/mysql-archiver', client: await accessTokenClient(contractFake), pageSize: 5 });
  },
  cleanup: async () => {
    // nothing half-uploaded may linger as a file; broken puts leave at most an abandoned session
    expect(contractFake.files.list().map((f) => f.path_lower).filter((p) => p.includes('/broken/') || p.includes('/abort/'))).toEqual([]);
    await contractFake.stop();
  },
});

/** the content_hash reference, written straight from Dropbox's description, for whole buffers */
function referenceContentHash(data: Buffer): string {
  const blocks: Buffer[] = [];
  for (let i = 0; i < data.length; i += 4 * MiB) blocks.push(createHash('sha256').update(data.subarray(i, i + 4 * MiB)).digest());
  return createHash('sha256').update(Buffer.concat(blocks)).digest('hex');
}

describe('dropbox content_hash', () => {
  it('matches known vectors', () => {
    // no blocks at all: the hash of nothing
    expect(contentHash(Buffer.alloc(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    // one block: sha256 of the block's raw sha256
    const abc = createHash('sha256').update(createHash('sha256').update('abc').digest()).digest('hex');
    expect(contentHash(Buffer.from('abc'))).toBe(abc);
    expect(abc).toBe('4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358');
  });

  it('is independent of how the bytes are chunked, across block boundaries', () => {
    for (const size of [4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 9 * MiB + 12345]) {
      const data = randomBytes(size);
      const hasher = new ContentHasher();
      for (let i = 0; i < data.length; i += 1_000_003) hasher.update(data.subarray(i, i + 1_000_003));
      expect(hasher.digest()).toBe(referenceContentHash(data));
      expect(contentHash(data)).toBe(referenceContentHash(data));
    }
  });
});

describe('dropbox driver against the fake', () => {
  let fake: FakeDropbox;
  let client: DropboxLike;
  beforeAll(async () => {
    fake = await startFakeDropbox({ accessTokens: [TOKEN], app: APP });
    client = await accessTokenClient(fake);
  });
  afterAll(async () => {
    await fake.stop();
  });

  it('uploads through a session when the source is longer than one chunk, and agrees with dropbox on content_hash', async () => {
    const storage = createDropboxStorage({ root: '/s', client, chunkSize: 4 * MiB });
    const from = fake.requests.length;
    for (const size of [10 * MiB + 7, 8 * MiB, 4 * MiB - 1]) {
      const data = randomBytes(size);
      const put = await storage.put(`sess/${size}`, body(data));
      expect(put).toEqual({ key: `sess/${size}`, size, sha256: sha256(data) });
      expect(fake.files.get(`/s/sess/${size}`)?.content_hash).toBe(referenceContentHash(data));
      // hashes, not buffers: a deep equality over megabytes takes vitest tens of seconds
      expect(await hashStream(await storage.get(`sess/${size}`))).toEqual({ size, sha256: put.sha256 });
    }
    const calls = fake.requests.slice(from).map((r) => r.path).filter((p) => p.startsWith('/2/files/upload'));
    expect(calls).toEqual([
      // 10 MiB + 7: two full chunks, the short rest carried by finish
      '/2/files/upload_session/start',
      '/2/files/upload_session/append_v2',
      '/2/files/upload_session/finish',
      // exactly two chunks: finish carries the empty tail
      '/2/files/upload_session/start',
      '/2/files/upload_session/append_v2',
      '/2/files/upload_session/finish',
      // less than a chunk: one plain upload
      '/2/files/upload',
    ]);
    expect(fake.files.openSessions()).toBe(0);
  });

  it('maps keys back case-preserved, and finds them case-insensitively as dropbox does', async () => {
    const storage = createDropboxStorage({ root: '/Case-Root', client });
    await storage.put('Daily/Dump-01.SQL', body('x'));
    expect((await collect(storage.list('Daily/'))).map((o) => o.key)).toEqual(['Daily/Dump-01.SQL']);
    expect((await storage.head('daily/dump-01.sql')).size).toBe(1);
    expect(fake.files.get('/case-root/daily/dump-01.sql')?.path_display).toBe('/Case-Root/Daily/Dump-01.SQL');
  });

  it('lists under the app folder root too', async () => {
    const storage = createDropboxStorage({ root: '', client, pageSize: 3 });
    await storage.put('top-level-a', body('a'));
    await storage.put('top-level-b/c', body('bc'));
    expect((await collect(storage.list('top-level-'))).map((o) => [o.key, o.size])).toEqual([
      ['top-level-a', 1],
      ['top-level-b/c', 2],
    ]);
  });

  it('head reports a folder as not found', async () => {
    const storage = createDropboxStorage({ root: '/f', client });
    await storage.put('dir/file', body('x'));
    await expect(storage.head('dir')).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(storage.get('dir')).rejects.toThrow(/path\/not_file/);
  });

  it('replacement behind the tool\'s back shows up as a sha256 different from the put result', async () => {
    const storage = createDropboxStorage({ root: '/t', client });
    const put = await storage.put('seg/1', body('original bytes'));
    await fake.files.replace('/t/seg/1', Buffer.from('someone else wrote this'));
    const back = await hashStream(await storage.get('seg/1'));
    expect(back.sha256).not.toBe(put.sha256);
  });

  it('bytes rotting under dropbox\'s own content_hash fail the download stream', async () => {
    const storage = createDropboxStorage({ root: '/t', client });
    const data = randomBytes(5 * MiB);
    await storage.put('seg/2', body(data));
    await fake.files.corrupt('/t/seg/2', 4 * MiB + 3);
    await expect(readAll(await storage.get('seg/2'))).rejects.toBeInstanceOf(VerificationError);
  });

  it.each([
    ['files/upload', '/2/files/upload', 3 * MiB],
    ['upload_session/finish', '/2/files/upload_session/finish', 9 * MiB],
  ])('a put whose file dropbox stored differs from the bytes sent (%s) throws VerificationError and keeps nothing', async (_what, endpoint, size) => {
    const storage = createDropboxStorage({ root: '/v', client, chunkSize: 4 * MiB });
    const data = randomBytes(size);
    fake.faults.tamper(endpoint, size - 10);
    const error = await storage.put(`tampered/${size}`, body(data)).catch((e: unknown) => e);
    expect(fake.faults.pending()).toBe(0);
    expect(error).toBeInstanceOf(VerificationError);
    expect((error as Error).message).toContain(`tampered/${size}`);
    expect(fake.files.get(`/v/tampered/${size}`)).toBeUndefined();
    // and the same bytes go through untouched on the next attempt
    expect((await storage.put(`tampered/${size}`, body(data))).sha256).toBe(sha256(data));
    expect(fake.files.get(`/v/tampered/${size}`)?.content_hash).toBe(referenceContentHash(data));
  });

  it('deletes a file dropbox reports with the wrong content_hash and refuses it', async () => {
    const lying: DropboxLike = {
      ...client,
      filesUpload: async (arg) => {
        const res = await client.filesUpload(arg);
        return { result: { ...res.result, content_hash: '0'.repeat(64) } };
      },
    };
    const storage = createDropboxStorage({ root: '/v', client: lying });
    await expect(storage.put('bad', body('payload'))).rejects.toBeInstanceOf(VerificationError);
    expect(fake.files.get('/v/bad')).toBeUndefined();
  });

  it('rejects chunk sizes that are not multiples of 4 MiB', () => {
    expect(() => createDropboxStorage({ root: '/x', client, chunkSize: 5 * MiB })).toThrow(/multiple of 4 MiB/);
  });
});

describe('dropbox refresh-token auth', () => {
  let fake: FakeDropbox;
  beforeAll(async () => {
    fake = await startFakeDropbox({ accessTokens: [], app: APP });
  });
  afterAll(async () => {
    await fake.stop();
  });

  it('works end to end, and the app secrets go only to /oauth2/token, in the body', async () => {
    const storage = createDropboxStorage({ root: '/r', client: await refreshClient(fake), chunkSize: 4 * MiB });
    const data = randomBytes(9 * MiB);
    const put = await storage.put('a/b', body(data));
    expect(await hashStream(await storage.get('a/b'))).toEqual({ size: data.length, sha256: put.sha256 });
    expect((await collect(storage.list('a/'))).map((o) => o.key)).toEqual(['a/b']);
    await storage.delete('a/b');

    const tokenCalls = fake.requests.filter((r) => r.path === '/oauth2/token');
    expect(tokenCalls).toHaveLength(1);
    expect(fake.requests[0]?.path).toBe('/oauth2/token');
    for (const request of fake.requests) {
      const visible = JSON.stringify({ url: request.url, headers: request.headers });
      for (const secret of [APP.clientSecret, APP.refreshToken]) expect(visible).not.toContain(secret);
      if (request.path !== '/oauth2/token') {
        expect(request.body ?? '').not.toContain(APP.clientSecret);
        expect(request.body ?? '').not.toContain(APP.refreshToken);
        expect(request.headers.authorization).toMatch(/^Bearer sl\.fake-/);
      }
    }
    const form = new URLSearchParams(tokenCalls[0]!.body);
    expect(form.get('refresh_token')).toBe(APP.refreshToken);
    expect(form.get('client_secret')).toBe(APP.clientSecret);
    expect(tokenCalls[0]!.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });
});
