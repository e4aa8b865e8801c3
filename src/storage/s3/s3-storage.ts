import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type HeadObjectCommandOutput,
  type ObjectLockMode,
  type S3Client,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { VerificationError, throwIfAborted } from '../../errors.js';
import type { S3StorageConfig } from '../../config/schema.js';
import { ByteCounter, hashStream } from '../byte-counter.js';
import { assertValidKey, type ByteSource, type ObjectInfo, type OpOptions, type PutOptions, type PutResult, type Storage } from '../storage.js';
import { checkExpected, checkLanded } from '../verify-expected.js';
import { uploadMultipart } from './multipart.js';
import { describeEndpoint, type S3ClientLike } from './s3-client.js';
import { toStorageError, type S3Operation } from './s3-errors.js';

export { createS3Client, type S3ClientLike } from './s3-client.js';

const MiB = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface S3StorageOptions {
  bucket: string;
  /** '' or 'some/prefix/'; a missing trailing '/' is added */
  prefix?: string;
  /** the storage owns it: close() destroys it */
  client: S3ClientLike | S3Client;
  storageClass?: StorageClass | `${StorageClass}`;
  objectLock?: { mode: ObjectLockMode | `${ObjectLockMode}`; days: number };
  /** objects known to be smaller go up in one PutObject (default 64 MiB) */
  multipartThreshold?: number;
  /** multipart part size (default 16 MiB, S3 minimum 5 MiB) */
  partSize?: number;
  /** parts in flight; memory is about partSize × (queueSize + 1) (default 2) */
  queueSize?: number;
  /** 'etag' compares S3's ETag with our md5 and reads back only when it cannot; 'readback' always reads back */
  verify?: 'etag' | 'readback';
  /** keys per ListObjectsV2 page (default 1000, the S3 maximum) */
  pageSize?: number;
  /** for Object Lock retain-until dates and Retry-After dates */
  clock?: () => Date;
  maxConcurrency?: number;
}

/** The driver options a validated storage config implies (everything but the client). */
export function s3StorageOptions(config: S3StorageConfig): Omit<S3StorageOptions, 'client'> {
  return {
    bucket: config.bucket,
    prefix: config.prefix,
    ...(config.storageClass ? { storageClass: config.storageClass } : {}),
    ...(config.objectLock ? { objectLock: config.objectLock } : {}),
    ...(config.multipartThreshold ? { multipartThreshold: config.multipartThreshold } : {}),
    ...(config.partSize ? { partSize: config.partSize } : {}),
    ...(config.verify ? { verify: config.verify } : {}),
  };
}

interface Sent {
  result: PutResult;
  /** hex md5 of the whole object: S3's ETag of a single-part upload (and s3rver's of any upload) */
  md5: string;
  /** S3's ETag of the multipart upload, when one was made */
  multipartEtag?: string;
}

/**
 * Objects live under `prefix` in one bucket. A put streams through a hashing counter; objects
 * known to be small are buffered (so a broken source never reaches S3 and the request carries a
 * Content-MD5), everything else goes up as a multipart upload that is aborted on failure, so a key
 * is never left partial. What landed is verified by size and ETag (our md5 or multipart md5), or by
 * reading it back when the ETag cannot tell (SSE-KMS, a store with other ETags, verify: readback).
 */
export function createS3Storage(options: S3StorageOptions): Storage {
  const { bucket } = options;
  const client = options.client as S3Client;
  const prefix = options.prefix && !options.prefix.endsWith('/') ? `${options.prefix}/` : (options.prefix ?? '');
  const name = `s3:${bucket}${prefix ? `/${prefix.slice(0, -1)}` : ''}`;
  const threshold = options.multipartThreshold ?? 64 * MiB;
  const partSize = options.partSize ?? 16 * MiB;
  const queueSize = options.queueSize ?? 2;
  const verifyMode = options.verify ?? 'etag';
  const pageSize = options.pageSize ?? 1000;
  const clock = options.clock ?? (() => new Date());
  let endpoint: Promise<string> | undefined;

  const objectKeyOf = (key: string): string => {
    assertValidKey(key);
    return prefix + key;
  };

  async function fail(error: unknown, operation: S3Operation, key: string | undefined, objectKey: string): Promise<unknown> {
    endpoint ??= describeEndpoint(client);
    return toStorageError(error, {
      storage: name,
      operation,
      bucket,
      ...(key !== undefined ? { key } : {}),
      objectKey,
      endpoint: await endpoint,
      now: () => clock().getTime(),
    });
  }

  function lockParams() {
    if (!options.objectLock) return {};
    return {
      ObjectLockMode: options.objectLock.mode as ObjectLockMode,
      ObjectLockRetainUntilDate: new Date(clock().getTime() + options.objectLock.days * DAY_MS),
    };
  }

  async function put(key: string, source: ByteSource, opts: PutOptions = {}): Promise<PutResult> {
    const objectKey = objectKeyOf(key);
    throwIfAborted(opts.signal);
    try {
      const sent = await upload(key, objectKey, source, opts);
      await verifyLanded(key, objectKey, sent, opts.signal);
      return sent.result;
    } catch (error) {
      throw await fail(error, 'put', key, objectKey);
    }
  }

  async function upload(key: string, objectKey: string, source: ByteSource, opts: PutOptions): Promise<Sent> {
    const counter = new ByteCounter(['md5']);
    const input = await source();
    const flow = pipeline(input, counter, ...(opts.signal ? [{ signal: opts.signal }] : []));
    // a broken source surfaces through the iterator below; this only keeps the rejection handled
    flow.catch(() => undefined);
    const chunks = counter[Symbol.asyncIterator]() as AsyncIterator<Buffer>;

    // known-small objects are buffered up to the threshold; unknown sizes up to one part, which is
    // what lib-storage would buffer anyway; a hint that was wrong spills over into multipart
    const hint = opts.sizeHint;
    const limit = hint === undefined ? Math.min(threshold, partSize) : hint < threshold ? threshold : 0;
    const head: Buffer[] = [];
    let buffered = 0;
    let ended = limit === 0 ? false : undefined;
    while (ended === undefined) {
      const next = await chunks.next();
      if (next.done) ended = true;
      else {
        head.push(next.value);
        buffered += next.value.length;
        if (buffered > limit) ended = false;
      }
    }

    if (ended) {
      await flow;
      const result: PutResult = { key, size: counter.size, sha256: counter.sha256 };
      checkExpected(name, key, result, opts);
      const md5 = counter.digest('md5');
      const body = Buffer.concat(head);
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: objectKey,
          Body: body,
          ContentLength: body.length,
          // S3 checks the bytes in transit, and Object Lock puts require it
          ContentMD5: Buffer.from(md5, 'hex').toString('base64'),
          Metadata: { sha256: result.sha256 },
          ...(options.storageClass ? { StorageClass: options.storageClass as StorageClass } : {}),
          ...lockParams(),
        }),
        { abortSignal: opts.signal },
      );
      return { result, md5 };
    }
    return multipart(key, objectKey, head, chunks, counter, flow, opts);
  }

  async function multipart(
    key: string,
    objectKey: string,
    head: Buffer[],
    chunks: AsyncIterator<Buffer>,
    counter: ByteCounter,
    flow: Promise<void>,
    opts: PutOptions,
  ): Promise<Sent> {
    async function* feed(): AsyncGenerator<Buffer> {
      yield* head.splice(0);
      for (;;) {
        const next = await chunks.next();
        if (next.done) break;
        yield next.value;
      }
      await flow;
      // failing here, before the last part is sent, means the upload is aborted, never completed
      checkExpected(name, key, { size: counter.size, sha256: counter.sha256 }, opts);
    }
    const expectedSha = opts.expected?.sha256;
    const { etag } = await uploadMultipart({
      client,
      create: {
        Bucket: bucket,
        Key: objectKey,
        ...(expectedSha ? { Metadata: { sha256: expectedSha } } : {}),
        ...(options.storageClass ? { StorageClass: options.storageClass as StorageClass } : {}),
        ...lockParams(),
        // Object Lock needs an integrity header on every part; a CRC32 computed on the part buffer
        // (no chunked framing) serves where a per-part Content-MD5 would too
        ...(options.objectLock ? { ChecksumAlgorithm: 'CRC32' as const } : {}),
      },
      chunks: feed(),
      partSize,
      queueSize,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { result: { key, size: counter.size, sha256: counter.sha256 }, md5: counter.digest('md5'), multipartEtag: etag };
  }

  async function verifyLanded(key: string, objectKey: string, sent: Sent, signal: AbortSignal | undefined): Promise<void> {
    const info = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: signal });
    let landed: { size: number; sha256?: string } = { size: info.ContentLength ?? -1 };
    if (landed.size === sent.result.size && !(verifyMode === 'etag' && etagMatches(info, sent))) {
      // the ETag could not vouch for the bytes: either it is no md5 (SSE-KMS, some S3-compatible
      // stores) or the bytes differ; reading back tells which
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: signal });
      landed = await hashStream(res.Body as Readable);
    }
    try {
      checkLanded(name, key, sent.result, landed);
    } catch (error) {
      // the bad object must not pass for a good one; a retry puts it again
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey })).catch(() => undefined);
      throw error instanceof VerificationError
        ? new VerificationError(error.message, {
            hint: 'The stored object differed from the bytes sent and was deleted; if this repeats with an S3-compatible store whose ETags are not MD5 digests, set verify: readback.',
          })
        : error;
    }
  }

  async function get(key: string, opts?: OpOptions): Promise<Readable> {
    const objectKey = objectKeyOf(key);
    throwIfAborted(opts?.signal);
    try {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: opts?.signal });
      if (!(res.Body instanceof Readable)) throw new Error('GetObject returned no Node.js stream body');
      return res.Body;
    } catch (error) {
      throw await fail(error, 'get', key, objectKey);
    }
  }

  async function head(key: string, opts?: OpOptions): Promise<ObjectInfo> {
    const objectKey = objectKeyOf(key);
    try {
      const res = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: opts?.signal });
      const sha256 = res.Metadata?.['sha256'];
      return {
        key,
        size: res.ContentLength ?? 0,
        ...(sha256 && /^[0-9a-f]{64}$/.test(sha256) ? { sha256 } : {}),
        ...(res.LastModified ? { modified: res.LastModified } : {}),
      };
    } catch (error) {
      throw await fail(error, 'head', key, objectKey);
    }
  }

  async function* list(keyPrefix: string, opts?: OpOptions): AsyncIterable<ObjectInfo> {
    const listPrefix = prefix + keyPrefix;
    let token: string | undefined;
    do {
      throwIfAborted(opts?.signal);
      let page;
      try {
        page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: listPrefix, MaxKeys: pageSize, ContinuationToken: token }),
          { abortSignal: opts?.signal },
        );
      } catch (error) {
        throw await fail(error, 'list', undefined, listPrefix);
      }
      // S3 returns keys in ascending UTF-8 byte order, page after page
      for (const object of page.Contents ?? []) {
        if (!object.Key?.startsWith(prefix)) continue;
        yield {
          key: object.Key.slice(prefix.length),
          size: object.Size ?? 0,
          ...(object.LastModified ? { modified: object.LastModified } : {}),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async function del(key: string, opts?: OpOptions): Promise<void> {
    const objectKey = objectKeyOf(key);
    try {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: opts?.signal });
    } catch (error) {
      const failure = await fail(error, 'delete', key, objectKey);
      // S3 answers 204 for a missing key; some compatible stores answer 404
      if ((failure as { code?: string }).code === 'E_STORAGE_NOT_FOUND') return;
      throw failure;
    }
  }

  async function close(): Promise<void> {
    client.destroy();
  }

  return {
    name,
    capabilities: { atomicReplace: true, maxConcurrency: options.maxConcurrency ?? 4, eventuallyConsistent: false },
    put,
    get,
    head,
    list,
    delete: del,
    close,
  };
}

function etagMatches(info: HeadObjectCommandOutput, sent: Sent): boolean {
  // with SSE-KMS or SSE-C the ETag is not an md5 of the content
  if (info.ServerSideEncryption?.startsWith('aws:kms') || info.SSECustomerAlgorithm) return false;
  const etag = info.ETag?.replaceAll('"', '').toLowerCase();
  return etag !== undefined && (etag === sent.md5 || etag === sent.multipartEtag);
}
