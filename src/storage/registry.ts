import type { StorageConfig } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import { createLocalStorage } from './local/local-storage.js';
import { withRetry, type RetryOptions } from './retrying-storage.js';
import type { Storage } from './storage.js';

export interface OpenStorageDeps {
  env: NodeJS.ProcessEnv;
  retry?: RetryOptions;
}

/**
 * The only list of drivers: turns a validated storage config into a ready Storage, wrapped in
 * retries. Drivers are loaded on demand so a local-only setup never loads the AWS or Dropbox SDKs.
 */
export async function openStorage(name: string, config: StorageConfig, deps: OpenStorageDeps): Promise<Storage> {
  return withRetry(await openDriver(name, config, deps), deps.retry);
}

async function openDriver(name: string, config: StorageConfig, deps: OpenStorageDeps): Promise<Storage> {
  const secrets = { env: deps.env, resolveSecret };
  switch (config.type) {
    case 'local':
      return createLocalStorage({ path: config.path });
    case 's3': {
      const { createS3Client, createS3Storage, s3StorageOptions } = await import('./s3/s3-storage.js');
      return createS3Storage({ ...s3StorageOptions(config), client: await createS3Client(config, secrets) });
    }
    case 'dropbox': {
      const { createDropboxClient, createDropboxStorage } = await import('./dropbox/dropbox-storage.js');
      return createDropboxStorage({ root: config.root, client: await createDropboxClient(config, secrets), ...(config.chunkSize ? { chunkSize: config.chunkSize } : {}) });
    }
  }
}
