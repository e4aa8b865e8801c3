import { createMemoryStorage } from '../../src/storage/memory/memory-storage.js';
import { describeStorageContract } from './contract.js';

describeStorageContract('memory', { create: async () => createMemoryStorage(), largeBytes: 32 << 20 });
