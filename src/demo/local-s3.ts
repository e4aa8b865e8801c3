import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { ArchiverError } from '../errors.js';

/**
 * A local S3 (s3rver) inside this process: objects are plain files under `dir`, so what the demo
 * wrote can be looked at, and served again later by starting another one on the same dir.
 * Paginated listings need `--openssl-legacy-provider` in NODE_OPTIONS (s3rver's continuation
 * tokens use DES); scripts/demo.sh sets it.
 */

/** The part of s3rver 3.7's (untyped) API used here. */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

/** Access key id and secret s3rver accepts (it checks signatures against these). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface LocalS3Options {
  /** where objects are kept; created if missing */
  dir: string;
  /** created at start (an existing one is kept with its objects) */
  bucket: string;
}

export interface LocalS3 {
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  readonly dir: string;
  /** stops listening and drops open connections; safe to call more than once */
  close(): Promise<void>;
}

export async function startLocalS3(opts: LocalS3Options): Promise<LocalS3> {
  await mkdir(opts.dir, { recursive: true });
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
  // port 0: the kernel picks a free one at bind time, so no race with other processes
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory: opts.dir, silent: true, configureBuckets: [{ name: opts.bucket }] });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (error) {
    throw new ArchiverError(`cannot start the local s3 (s3rver) in ${opts.dir}: ${(error as Error).message}`, {
      cause: error,
      hint: 'Check that the directory is writable.',
    });
  }
  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    port: address.port,
    bucket: opts.bucket,
    dir: opts.dir,
    close() {
      closed ??= (async () => {
        const http = server.httpServer;
        const done = server.close();
        // keep-alive sockets of SDK clients would otherwise hold close() open
        http?.closeAllConnections();
        await done;
      })();
      return closed;
    },
  };
}
