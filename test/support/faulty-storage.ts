import type { Storage } from '../../src/storage/storage.js';

type Op = 'put' | 'get' | 'head' | 'list' | 'delete';

/**
 * Wraps a real storage and throws scripted errors before chosen calls: for faults no server
 * can be made to produce on demand (a retryable error on exactly the 2nd put, say).
 */
export function faultyStorage(inner: Storage) {
  const script: { op: Op; error: () => unknown; times: number }[] = [];
  const calls: { op: Op; key: string }[] = [];
  const take = (op: Op, key: string): void => {
    calls.push({ op, key });
    const step = script.find((s) => s.op === op && s.times > 0);
    if (step) {
      step.times--;
      throw step.error();
    }
  };
  const storage: Storage = {
    name: inner.name,
    capabilities: inner.capabilities,
    put: async (key, source, opts) => (take('put', key), inner.put(key, source, opts)),
    get: async (key, opts) => (take('get', key), inner.get(key, opts)),
    head: async (key, opts) => (take('head', key), inner.head(key, opts)),
    delete: async (key, opts) => (take('delete', key), inner.delete(key, opts)),
    async *list(prefix, opts) {
      take('list', prefix);
      yield* inner.list(prefix, opts);
    },
  };
  return {
    storage,
    calls,
    /** the next `times` calls of `op` throw what `error()` returns */
    fail(op: Op, times: number, error: () => unknown) {
      script.push({ op, error, times });
    },
  };
}
