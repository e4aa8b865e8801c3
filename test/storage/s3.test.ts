import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSecret } from '../../src/config/secrets.js';
import type { S3StorageConfig } from '../../src/config/schema.js';
import { StorageError, StorageNotFoundError, VerificationError } from '../../src/errors.js';
import { PartDigests } from '../../src/storage/s3/part-digests.js';
import { createS3Client, createS3Storage, type S3StorageOptions } from '../../src/storage/s3/s3-storage.js';
import type { ObjectInfo, Storage } from '../../src/storage/storage.js';
import { expectSameBytes, readAll, sha256 } from '../support/bytes.js';
import { startS3rver, stopAllS3rver, type S3rverHandle } from '../support/s3rver.js';
import { describeStorageContract } from './contract.js';

const MiB = 1024 * 1024;
/** small enough that the 200 MiB contract object goes multipart in 40 parts and small ones go single */
const SMALL_PARTS = { multipartThreshold: 8 * MiB, partSize: 5 * MiB, pageSize: 10 } as const;

let server: S3rverHandle;
const started = startS3rver({ bucket: 'archive-test' }).then((s) => (server = s));
beforeAll(() => started);
afterAll(() => stopAllS3rver());

const timings: { op: string; bytes: number; ms: number }[] = [];

/** measures the contract's large put and get (until the last byte is read) without changing them */
function timed(inner: Storage): Storage {
  return {
    ...inner,
    async put(key, source, opts) {
      const t0 = performance.now();
      const result = await inner.put(key, source, opts);
      if (key === 'large/blob') timings.push({ op: 'put', bytes: result.size, ms: performance.now() - t0 });
      return result;
    },
    async get(key, opts) {
      const t0 = performance.now();
      const stream = await inner.get(key, opts);
      if (key === 'large/blob') {
        let bytes = 0;
        stream.on('data', (c: Buffer) => (bytes += c.length));
        stream.once('end', () => timings.push({ op: 'get', bytes, ms: performance.now() - t0 }));
      }
      return stream;
    },
  };
}

describeStorageContract('s3', {
  create: async () => {
    await started;
    return timed(createS3Storage({ bucket: server.bucket, prefix: 'contract/', client: server.client(), ...SMALL_PARTS }));
  },
  cleanup: async () => {
    for (const t of timings) {
      console.info(`s3rver ${t.op} of ${t.bytes / MiB} MiB: ${t.ms.toFixed(0)} ms, ${(t.bytes / MiB / (t.ms / 1000)).toFixed(0)} MiB/s`);
    }
  },
});

// ---------------------------------------------------------------------------------------------

type Seen = { command: string; input: Record<string, unknown>; headers: Record<string, string> };

/**
 * A real client with a middleware that records every request and may alter a body on its way:
 * corruption in transit or an odd ETag are faults s3rver cannot be asked to produce.
 */
function instrumentedClient(opts: {
  corrupt?: (command: string, input: Record<string, unknown>) => boolean;
  rewriteEtag?: (etag: string) => string;
} = {}): { client: S3Client; seen: Seen[] } {
  const client = server.client();
  const seen: Seen[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      if (opts.corrupt?.(context.commandName ?? '', input) && Buffer.isBuffer(input['Body']) && (input['Body'] as Buffer).length > 0) {
        const body = Buffer.from(input['Body'] as Buffer);
        body[body.length >> 1]! ^= 0xff;
        input['Body'] = body;
      }
      return next(args);
    },
    { step: 'initialize', name: 'testCorrupt' },
  );
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers: Record<string, string> };
      seen.push({ command: context.commandName ?? '', input: args.input as Record<string, unknown>, headers: { ...request.headers } });
      const out = await next(args);
      const output = out.output as { ETag?: string };
      if (opts.rewriteEtag && context.commandName === 'HeadObjectCommand' && output.ETag) output.ETag = opts.rewriteEtag(output.ETag);
      return out;
    },
    { step: 'finalizeRequest', name: 'testRecord' },
  );
  return { client, seen };
}

const count = (seen: Seen[], command: string) => seen.filter((s) => s.command === command).length;
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');
const collect = async (it: AsyncIterable<ObjectInfo>) => {
  const out: ObjectInfo[] = [];
  for await (const o of it) out.push(o);
  return out;
};
const bytes = (data: Buffer) => () => Readable.from([data]);
/** a stream of `data` in 1 MiB chunks, so a put cannot learn its size from the body */
const chunked = (data: Buffer) => () => Readable.from((function* () {
  for (let i = 0; i < data.length; i += MiB) yield data.subarray(i, i + MiB);
})());

describe('s3 driver against s3rver', () => {
  const storages: Storage[] = [];
  const make = (prefix: string, extra: Partial<S3StorageOptions> = {}, client: S3Client = server.client()) => {
    const storage = createS3Storage({ bucket: server.bucket, prefix, client, ...SMALL_PARTS, ...extra });
    storages.push(storage);
    return storage;
  };
  let raw: S3Client;
  beforeAll(async () => {
    await started;
    raw = server.client();
  });
  afterAll(async () => {
    raw?.destroy();
    await Promise.all(storages.map((s) => s.close?.()));
  });

  it('avoids the aws-chunked trap: the bytes on disk are exactly the bytes sent, single and multipart', async () => {
    const storage = make('framing');
    const small = randomBytes(300 * 1024);
    const large = randomBytes(12 * MiB + 123);
    await storage.put('small.bin', chunked(small));
    await storage.put('large.bin', chunked(large), { sizeHint: large.length });
    expectSameBytes(await readFile(server.objectPath('framing/small.bin')), small);
    expectSameBytes(await readFile(server.objectPath('framing/large.bin')), large);

    // and a raw streamed PutObject through the client createS3Client builds is not framed either
    const config = {
      type: 's3',
      bucket: server.bucket,
      prefix: '',
      region: 'us-east-1',
      endpoint: server.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: { env: 'T_KEY' }, secretAccessKey: { env: 'T_SECRET' } },
    } satisfies S3StorageConfig;
    const client = await createS3Client(config, {
      resolveSecret,
      env: { T_KEY: server.credentials.accessKeyId, T_SECRET: server.credentials.secretAccessKey },
    });
    try {
      await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: 'framing/raw', Body: Readable.from([small]), ContentLength: small.length }));
      expectSameBytes(await readFile(server.objectPath('framing/raw')), small);
    } finally {
      client.destroy();
    }
  });

  it('stores objects under the prefix and lists only its own keys, without the prefix', async () => {
    const a = make('tenant-a/');
    const b = make('tenant-b');
    await a.put('x/1', bytes(Buffer.from('a1')));
    await b.put('x/1', bytes(Buffer.from('b1')));
    const listed = await raw.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'tenant-' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['tenant-a/x/1', 'tenant-b/x/1']);
    expect(await collect(a.list(''))).toMatchObject([{ key: 'x/1', size: 2 }]);
    expect((await readAll(await b.get('x/1'))).toString()).toBe('b1');
    expect(a.name).toBe('s3:archive-test/tenant-a');
  });

  it('puts small objects in one request with Content-MD5 and a sha256 the head reports', async () => {
    const { client, seen } = instrumentedClient();
    const storage = make('single', {}, client);
    const data = randomBytes(100_000);
    const put = await storage.put('obj', bytes(data), { sizeHint: data.length });
    expect(put).toEqual({ key: 'obj', size: data.length, sha256: sha256(data) });
    expect(seen.map((s) => s.command)).toEqual(['PutObjectCommand', 'HeadObjectCommand']);
    const request = seen[0]!.headers;
    expect(request['content-md5']).toBe(Buffer.from(md5(data), 'hex').toString('base64'));
    expect(request['content-encoding']).toBeUndefined();
    expect(await storage.head('obj')).toMatchObject({ key: 'obj', size: data.length, sha256: sha256(data) });
  });

  it('verifies a multipart upload by its ETag, without reading it back', async () => {
    const { client, seen } = instrumentedClient();
    const storage = make('multi', {}, client);
    const data = randomBytes(12 * MiB + 7);
    const put = await storage.put('obj', chunked(data), { sizeHint: data.length, expected: { sha256: sha256(data) } });
    expect(put.sha256).toBe(sha256(data));
    expect(count(seen, 'CreateMultipartUploadCommand')).toBe(1);
    expect(count(seen, 'UploadPartCommand')).toBe(3);
    expect(count(seen, 'GetObjectCommand')).toBe(0);
    // the sha256 the caller vouched for travels as metadata
    expect((await storage.head('obj')).sha256).toBe(sha256(data));
    expectSameBytes(await readAll(await storage.get('obj')), data);
  });

  it('aborts the multipart upload when the source breaks after parts went up, and completes nothing', async () => {
    const { client, seen } = instrumentedClient();
    const storage = make('broken-multi', {}, client);
    const source = () => Readable.from((async function* () {
      for (let i = 0; i < 12; i++) yield randomBytes(MiB);
      throw new Error('source broke after 12 MiB');
    })());
    await expect(storage.put('obj', source, { sizeHint: 64 * MiB })).rejects.toThrow(/source broke/);
    expect(count(seen, 'UploadPartCommand')).toBeGreaterThanOrEqual(2);
    // s3rver 3.7.1 answers DELETE ?uploadId with 405 (no AbortMultipartUpload in lib/routes.js), so
    // its parts stay on its disk whatever we do; what we can check is that the abort was asked for
    expect(count(seen, 'AbortMultipartUploadCommand')).toBe(1);
    expect(count(seen, 'CompleteMultipartUploadCommand')).toBe(0);
    await expect(storage.head('obj')).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('accepts the AWS multipart ETag form md5(part md5s)-N', async () => {
    const data = randomBytes(11 * MiB);
    const parts = [data.subarray(0, 5 * MiB), data.subarray(5 * MiB, 10 * MiB), data.subarray(10 * MiB)];
    const awsEtag = `${createHash('md5').update(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()))).digest('hex')}-3`;
    const digests = new PartDigests(5 * MiB);
    for (let i = 0; i < data.length; i += 3 * MiB + 11) digests.update(data.subarray(i, i + 3 * MiB + 11));
    expect(digests.etag()).toBe(awsEtag);

    // s3rver reports a whole-object md5 for multipart uploads; make it answer as S3 does
    const { client, seen } = instrumentedClient({ rewriteEtag: () => `"${awsEtag}"` });
    const storage = make('awsetag', {}, client);
    await storage.put('obj', chunked(data), { sizeHint: data.length });
    expect(count(seen, 'GetObjectCommand')).toBe(0);
  });

  it('falls back to reading back when the ETag is not an md5 of the bytes (SSE-KMS, other stores)', async () => {
    const { client, seen } = instrumentedClient({ rewriteEtag: () => '"0123456789abcdef0123456789abcdef"' });
    const storage = make('oddetag', {}, client);
    const data = randomBytes(64 * 1024);
    expect((await storage.put('obj', bytes(data))).sha256).toBe(sha256(data));
    expect(count(seen, 'GetObjectCommand')).toBe(1);
  });

  it("verify: 'readback' reads every put back", async () => {
    const { client, seen } = instrumentedClient();
    const storage = make('readback', { verify: 'readback' }, client);
    const small = randomBytes(1000);
    const large = randomBytes(11 * MiB);
    await storage.put('small', bytes(small));
    await storage.put('large', chunked(large), { sizeHint: large.length });
    expect(count(seen, 'GetObjectCommand')).toBe(2);
    expectSameBytes(await readAll(await storage.get('large')), large);
  });

  it.each([
    ['single-part', 'PutObjectCommand', 200 * 1024],
    ['multipart', 'UploadPartCommand', 12 * MiB],
  ])('detects a %s object corrupted on its way and leaves no object', async (_what, command, size) => {
    let hits = 0;
    const { client } = instrumentedClient({ corrupt: (name) => name === command && ++hits === (command === 'UploadPartCommand' ? 2 : 1) });
    const storage = make(`corrupt-${command}`, {}, client);
    const data = randomBytes(size);
    const error = await storage.put('obj', chunked(data), { sizeHint: size }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerificationError);
    expect((error as VerificationError).retryable).toBe(true);
    expect((error as Error).message).toContain('obj');
    await expect(storage.head('obj')).rejects.toBeInstanceOf(StorageNotFoundError);
    // the next attempt goes through untouched
    expect((await storage.put('obj', chunked(data), { sizeHint: size })).sha256).toBe(sha256(data));
  });

  it('sees bytes altered behind its back (the harness locates the on-disk object)', async () => {
    const storage = make('rot');
    const data = Buffer.from('original bytes');
    await storage.put('obj', bytes(data));
    const file = server.objectPath('rot/obj');
    await writeFile(file, Buffer.from('0riginal bytes'));
    expect((await readAll(await storage.get('obj'))).toString()).toBe('0riginal bytes');
    // head still reports the sha256 recorded at put time, so a verify pass can spot the difference
    expect((await storage.head('obj')).sha256).toBe(sha256(data));
  });

  /**
   * A client that, once S3 has answered a PutObject or CompleteMultipartUpload, changes the stored
   * bytes on s3rver's disk before the driver's verification runs: what landed is not what was sent.
   * The middleware only times the change; the bytes are altered where the server keeps them.
   */
  function alteringClient(alter: (objectKey: string) => Promise<void>): S3Client {
    const client = server.client();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'PutObjectCommand' || context.commandName === 'CompleteMultipartUploadCommand') {
          await alter((args.input as { Key: string }).Key);
        }
        return out;
      },
      { step: 'initialize', name: 'testAlterLanded' },
    );
    return client;
  }
  const flipByte = async (file: string, offset: number) => {
    const handle = await open(file, 'r+');
    try {
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, offset);
      byte[0] = byte[0]! ^ 0x01;
      await handle.write(byte, 0, 1, offset);
    } finally {
      await handle.close();
    }
  };

  it.each([
    ['single-part', 200 * 1024],
    ['multipart', 12 * MiB],
  ])('a %s put whose stored bytes differ from the sent ones throws VerificationError and keeps nothing', async (_what, size) => {
    let altered = 0;
    // s3rver caches each object's md5 next to it; dropping the cache makes its ETag describe the
    // bytes it now holds, as a store's own digest of what it stored would
    const storage = make(`landed-${size}`, {}, alteringClient(async (objectKey) => {
      const file = server.objectPath(objectKey);
      await flipByte(file, size - 5);
      await rm(`${file}.md5`);
      altered++;
    }));
    const data = randomBytes(size);
    const error = await storage.put('obj', chunked(data), { sizeHint: size }).catch((e: unknown) => e);
    expect(altered).toBe(1);
    expect(error).toBeInstanceOf(VerificationError);
    expect((error as Error).message).toContain(sha256(data));
    await expect(storage.head('obj')).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('a put whose stored object lost bytes throws VerificationError on the size alone', async () => {
    const size = 11 * MiB;
    const storage = make('landed-short', {}, alteringClient((objectKey) => truncate(server.objectPath(objectKey), size - 1)));
    const error = await storage.put('obj', chunked(randomBytes(size)), { sizeHint: size }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerificationError);
    expect((error as Error).message).toMatch(new RegExp(`stored object \\(${size - 1} bytes`));
    await expect(storage.head('obj')).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it("verify: 'readback' catches altered bytes even when the store's ETag still matches what was sent", async () => {
    const storage = make('landed-readback', { verify: 'readback' }, alteringClient((objectKey) => flipByte(server.objectPath(objectKey), 7)));
    const data = randomBytes(64 * 1024);
    const error = await storage.put('obj', bytes(data)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VerificationError);
    await expect(storage.head('obj')).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('sends Object Lock retention from the clock, the storage class, and an integrity header on every request', async () => {
    const now = new Date('2030-01-02T03:04:05.000Z');
    const { client, seen } = instrumentedClient();
    const storage = make('locked', { objectLock: { mode: 'COMPLIANCE', days: 30 }, storageClass: 'STANDARD_IA', clock: () => now }, client);
    await storage.put('small', bytes(Buffer.from('locked')));
    const large = randomBytes(11 * MiB);
    await storage.put('large', chunked(large), { sizeHint: large.length });
    const until = new Date(now.getTime() + 30 * 86_400_000).toISOString().replace('.000Z', 'Z');
    const single = seen.find((s) => s.command === 'PutObjectCommand')!.headers;
    expect(single).toMatchObject({
      'x-amz-object-lock-mode': 'COMPLIANCE',
      'x-amz-storage-class': 'STANDARD_IA',
      'content-md5': expect.any(String),
    });
    expect(single['x-amz-object-lock-retain-until-date']).toBe(until);
    const create = seen.find((s) => s.command === 'CreateMultipartUploadCommand')!.headers;
    expect(create).toMatchObject({ 'x-amz-object-lock-mode': 'COMPLIANCE', 'x-amz-object-lock-retain-until-date': until });
    const parts = seen.filter((s) => s.command === 'UploadPartCommand');
    expect(parts).toHaveLength(3);
    for (const part of parts) {
      expect(part.headers['x-amz-checksum-crc32']).toEqual(expect.any(String));
      expect(part.headers['content-encoding']).toBeUndefined();
    }
    expectSameBytes(await readAll(await storage.get('large')), large);
  });

  it('names the bucket and gives a hint when the bucket does not exist', async () => {
    const storage = createS3Storage({ bucket: 'no-such-bucket', prefix: '', client: server.client() });
    storages.push(storage);
    const error = (await storage.put('k', bytes(Buffer.from('x'))).catch((e: unknown) => e)) as StorageError;
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(StorageNotFoundError);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('no-such-bucket');
    expect(error.hint).toMatch(/create it|bucket name/);
  });

  const credentialsConfig = {
    type: 's3',
    bucket: 'archive-test',
    prefix: '',
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: { env: 'K' }, secretAccessKey: { env: 'S' } },
  } as const;
  const clientWith = (accessKeyId: string, secretAccessKey: string) =>
    createS3Client({ ...credentialsConfig, endpoint: server.endpoint }, { resolveSecret, env: { K: accessKeyId, S: secretAccessKey } });

  it('refuses an unknown access key id as permanent, with a hint and without the secret (s3rver checks the key id)', async () => {
    const secret = 'secret-for-an-unknown-key-0815';
    const storage = createS3Storage({ bucket: server.bucket, prefix: 'creds/', client: await clientWith('AKIAUNKNOWN0000', secret) });
    storages.push(storage);
    for (const attempt of [storage.get('k'), storage.put('k', bytes(Buffer.from('x')))]) {
      const error = (await attempt.catch((e: unknown) => e)) as StorageError;
      expect(error).toBeInstanceOf(StorageError);
      expect(error).not.toBeInstanceOf(StorageNotFoundError);
      expect(error.retryable).toBe(false);
      expect(error.message).toMatch(/InvalidAccessKeyId/);
      expect(error.hint).toMatch(/access key id is unknown/);
      expect(`${error.message} ${error.hint} ${error.stack}`).not.toContain(secret);
    }
    await expect(readFile(server.objectPath('creds/k'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a wrong secret key as permanent, without the secret in the error', async () => {
    const secret = 'wrong-secret-value-4711';
    // s3rver 3.7.1 does not compute SigV4 signatures (lib/middleware/authentication.js: "unimplemented")
    // and accepts any secret for a known key id; prove that here, so this test notices the day it
    // starts checking and the played-back refusal below can give way to the real one
    const lax = await clientWith(server.credentials.accessKeyId, secret);
    await lax.send(new PutObjectCommand({ Bucket: server.bucket, Key: 'creds/lax', Body: Buffer.from('accepted') }));
    lax.destroy();
    expect((await readFile(server.objectPath('creds/lax'))).toString()).toBe('accepted');

    // so S3's answer to a wrong secret is played back to the real SDK (its deserializer and error
    // mapping run as against AWS): a fault no local server produces
    const client = await clientWith(server.credentials.accessKeyId, secret);
    client.middlewareStack.add(
      () => async () => ({
        response: {
          statusCode: 403,
          headers: { 'content-type': 'application/xml', 'x-amz-request-id': 'REQ1' },
          body: Readable.from([
            Buffer.from(
              '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message><RequestId>REQ1</RequestId></Error>',
            ),
          ]),
        },
        output: undefined as never,
      }),
      // innermost: it stands in for the HTTP call, under the SDK's deserializer
      { step: 'deserialize', name: 'playBackS3Refusal', priority: 'low' },
    );
    const storage = createS3Storage({ bucket: server.bucket, prefix: 'creds/', client });
    storages.push(storage);
    const error = (await storage.get('k').catch((e: unknown) => e)) as StorageError;
    expect(error).toBeInstanceOf(StorageError);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/SignatureDoesNotMatch/);
    expect(error.hint).toMatch(/secret access key/);
    expect(`${error.message} ${error.hint} ${error.stack}`).not.toContain(secret);
  });
});
