/**
 * An in-process s3rver for tests: real HTTP, real S3 wire protocol, files on disk.
 *
 * NEEDS `NODE_OPTIONS=--openssl-legacy-provider` in the process that runs it (`npm test` sets it):
 * s3rver 3.7.1 encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only offers
 * through the legacy provider; without it every truncated (paginated) listing answers
 * 500 InternalError (ERR_OSSL_EVP_UNSUPPORTED). See notes/dependency-findings.md §2.
 *
 * Clients must use `requestChecksumCalculation: 'WHEN_REQUIRED'` (as `createS3Client` does):
 * s3rver does not decode the SDK's default aws-chunked framing and would store it verbatim.
 */
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { freePort } from './free-port.js';

export interface StartS3rverOptions {
  /** created before the server answers (default `backups`; S3 needs 3-63 characters) */
  bucket?: string;
  /** default: a free port on 127.0.0.1 */
  port?: number;
  /** default: a fresh temp directory, removed by stop(remove)/stopAllS3rver */
  directory?: string;
}

export interface S3rverHandle {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  readonly directory: string;
  /** s3rver's fixed credentials */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** a new client configured the way the driver needs it; the caller destroys it */
  client(): S3Client;
  /** closes the server and cuts open connections (mid-request too); the data stays for restart() */
  stop(): Promise<void>;
  /** starts again on the same port and directory: the same objects are back */
  restart(): Promise<void>;
  /** stops (if running) and removes the directory */
  destroy(): Promise<void>;
  /** the file where s3rver keeps the bytes of `objectKey` (the full key in the bucket, prefix included) */
  objectPath(objectKey: string): string;
  /** the directory holding unfinished multipart uploads of the bucket */
  readonly uploadsDir: string;
}

// s3rver ships no types; this is the part of its API the harness uses
interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverCtor = new (options: {
  port: number;
  address: string;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
}) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;

/** s3rver accepts these and only these unless told otherwise */
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

const running = new Set<S3rverHandle>();
const dirs = new Set<string>();
let exitHookInstalled = false;

export async function startS3rver(options: StartS3rverOptions = {}): Promise<S3rverHandle> {
  installExitHook();
  const bucket = options.bucket ?? 'backups';
  const ownDir = options.directory === undefined;
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 's3rver-test-')));
  if (ownDir) dirs.add(directory);

  let port = options.port ?? 0;
  let server: S3rverInstance | undefined;
  const launch = async (): Promise<void> => {
    const instance = new S3rver({ port, address: '127.0.0.1', directory, silent: true, configureBuckets: [{ name: bucket }] });
    await instance.run();
    server = instance;
  };
  // another process may take a "free" port before we bind it: try a couple of others
  for (let attempt = 1; ; attempt++) {
    if (options.port === undefined) port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      if (attempt >= 3 || options.port !== undefined || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
        if (ownDir) await removeDir(directory);
        throw error;
      }
    }
  }

  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    const current = server;
    server = undefined;
    if (!current) return;
    const closed = current.close();
    // close() alone waits for open keep-alive and in-flight connections
    current.httpServer?.closeAllConnections();
    await closed;
  };
  const handle: S3rverHandle = {
    endpoint,
    port,
    bucket,
    directory,
    credentials: CREDENTIALS,
    client: () =>
      new S3Client({
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        credentials: CREDENTIALS,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: 1,
      }),
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    destroy: async () => {
      await stop();
      running.delete(handle);
      if (ownDir) await removeDir(directory);
    },
    objectPath: (objectKey) => s3rverObjectPath(directory, bucket, objectKey),
    uploadsDir: join(directory, bucket, '._S3rver_uploads'),
  };
  running.add(handle);
  return handle;
}

/**
 * s3rver's on-disk layout (lib/stores/filesystem.js): the key's '/'-separated parts are
 * directories, and the last part becomes `<name>._S3rver_object` next to `<name>._S3rver_object.md5`
 * (the cached ETag) and `<name>._S3rver_metadata.json`. Altering the object file leaves the cached
 * md5 stale, just like bit rot behind a real store's back.
 */
export function s3rverObjectPath(directory: string, bucket: string, objectKey: string): string {
  const parts = objectKey.split('/');
  const last = parts.pop() ?? '';
  return join(directory, bucket, ...parts, `${last}._S3rver_object`);
}

/** Stops every server this process started and removes their directories (for afterAll). */
export async function stopAllS3rver(): Promise<void> {
  await Promise.all([...running].map((h) => h.destroy()));
}

async function removeDir(dir: string): Promise<void> {
  dirs.delete(dir);
  await rm(dir, { recursive: true, force: true });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // servers die with the process; only their directories need a synchronous sweep
  process.once('exit', () => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}
