import { VerificationError } from '../errors.js';
import type { PutOptions, PutResult } from './storage.js';

/** Compares what a driver streamed with what the caller expected; throws before the object is kept. */
export function checkExpected(storage: string, key: string, got: { size: number; sha256: string }, options?: PutOptions): void {
  const want = options?.expected;
  if (!want) return;
  if (want.size !== undefined && want.size !== got.size) {
    throw new VerificationError(`${storage}: ${key}: source gave ${got.size} bytes, expected ${want.size}`, {
      retryable: false,
      hint: 'The file changed while it was being uploaded; it stays in the spool for inspection.',
    });
  }
  if (want.sha256 !== undefined && want.sha256 !== got.sha256) {
    throw new VerificationError(`${storage}: ${key}: source sha256 ${got.sha256} differs from expected ${want.sha256}`, {
      retryable: false,
      hint: 'The file changed while it was being uploaded; it stays in the spool for inspection.',
    });
  }
}

/** Compares what the service reports as stored with what was streamed. */
export function checkLanded(storage: string, key: string, sent: PutResult, landed: { size: number; sha256?: string }): void {
  if (landed.size !== sent.size || (landed.sha256 !== undefined && landed.sha256 !== sent.sha256)) {
    throw new VerificationError(
      `${storage}: ${key}: stored object (${landed.size} bytes${landed.sha256 ? `, sha256 ${landed.sha256}` : ''}) differs from what was sent (${sent.size} bytes, sha256 ${sent.sha256})`,
    );
  }
}
