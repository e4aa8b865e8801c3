import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalStorage } from '../../src/storage/local/local-storage.js';
import { describeStorageContract } from './contract.js';

let dir = '';
describeStorageContract('local', {
  create: async () => {
    dir = await mkdtemp(join(tmpdir(), 'ma-local-'));
    return createLocalStorage({ path: join(dir, 'root') });
  },
  cleanup: async () => {
    // a failed put must not leave temp files behind either
    const leftovers = await readdir(join(dir, 'root'), { recursive: true });
    if (leftovers.some((f) => String(f).includes('.tmp-'))) throw new Error(`temp files left: ${leftovers.join(', ')}`);
    await rm(dir, { recursive: true, force: true });
  },
});
