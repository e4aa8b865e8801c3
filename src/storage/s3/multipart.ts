import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type CompletedPart,
  type CreateMultipartUploadCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { PartDigests } from './part-digests.js';

export interface MultipartInput {
  client: S3Client;
  /** Bucket, Key and everything CreateMultipartUpload takes (metadata, storage class, Object Lock, ChecksumAlgorithm) */
  create: CreateMultipartUploadCommandInput & { Bucket: string; Key: string };
  /** the object's bytes in any chunking */
  chunks: AsyncIterable<Buffer>;
  partSize: number;
  /** parts in flight */
  queueSize: number;
  signal?: AbortSignal;
}

export interface MultipartResult {
  /** S3's multipart ETag as it will report it, md5(md5(part1) ‖ …)-N, computed from the parts we cut */
  etag: string;
}

/**
 * A multipart upload that holds at most `queueSize` parts in flight plus the one being filled, in
 * `queueSize + 1` part buffers reused from part to part, so memory stays flat however large the
 * object and whenever the garbage collector runs. (lib-storage concatenates a fresh buffer per part
 * and keeps the leftover's whole slab alive.) Any failure or an abort aborts the upload, so
 * nothing is committed under the key.
 */
export async function uploadMultipart(input: MultipartInput): Promise<MultipartResult> {
  const { client, create, partSize, queueSize, signal } = input;
  const { Bucket, Key } = create;
  const withChecksum = create.ChecksumAlgorithm !== undefined;
  const { UploadId } = await client.send(new CreateMultipartUploadCommand(create), { abortSignal: signal });
  if (!UploadId) throw new Error('CreateMultipartUpload returned no UploadId');

  const stop = new AbortController();
  const onAbort = (): void => stop.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const done: CompletedPart[] = [];
  const digests = new PartDigests(partSize);
  const inFlight = new Set<Promise<void>>();
  // a buffer comes back once S3 has answered for its part: the SDK reads a body only while sending it
  const spare: Buffer[] = [];
  let failure: { error: unknown } | undefined;

  const send = (PartNumber: number, Body: Buffer): void => {
    digests.update(Body);
    const sent = client
      .send(
        new UploadPartCommand({
          Bucket,
          Key,
          UploadId,
          PartNumber,
          Body,
          ContentLength: Body.length,
          ...(withChecksum ? { ChecksumAlgorithm: create.ChecksumAlgorithm } : {}),
        }),
        { abortSignal: stop.signal },
      )
      .then(
        (res) => {
          done[PartNumber - 1] = {
            PartNumber,
            ETag: res.ETag,
            ...(res.ChecksumCRC32 ? { ChecksumCRC32: res.ChecksumCRC32 } : {}),
            ...(res.ChecksumCRC32C ? { ChecksumCRC32C: res.ChecksumCRC32C } : {}),
            ...(res.ChecksumSHA1 ? { ChecksumSHA1: res.ChecksumSHA1 } : {}),
            ...(res.ChecksumSHA256 ? { ChecksumSHA256: res.ChecksumSHA256 } : {}),
          };
        },
        (error: unknown) => {
          failure ??= { error };
          stop.abort();
        },
      )
      .finally(() => {
        inFlight.delete(sent);
        if (Body.length === partSize) spare.push(Body);
      });
    inFlight.add(sent);
  };

  try {
    let part: Buffer = Buffer.allocUnsafeSlow(partSize);
    let filled = 0;
    let number = 0;
    for await (const chunk of input.chunks) {
      for (let at = 0; at < chunk.length; ) {
        const take = Math.min(chunk.length - at, partSize - filled);
        chunk.copy(part, filled, at, at + take);
        filled += take;
        at += take;
        if (filled === partSize) {
          while (inFlight.size >= queueSize) await Promise.race(inFlight);
          if (failure) throw failure.error;
          send(++number, part);
          part = spare.pop() ?? Buffer.allocUnsafeSlow(partSize);
          filled = 0;
        }
      }
    }
    // S3 needs at least one part; an empty tail is only sent when it is the only part
    if (filled > 0 || number === 0) send(++number, part.subarray(0, filled));
    await Promise.all(inFlight);
    if (failure) throw failure.error;
    signal?.throwIfAborted();
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: done } }),
      { abortSignal: signal },
    );
    return { etag: digests.etag() };
  } catch (error) {
    stop.abort();
    await Promise.allSettled(inFlight);
    await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
