import type { Config } from '../config/schema.js';
import type { Logger } from './logger.js';

/**
 * PLACEHOLDER written by the config/CLI helper so that `check` is wired end to end; the lead
 * replaces it with the real preflight (server settings, privileges, storage reachability).
 */
export async function runCheck(_config: Config, _opts: { logger: Logger; signal?: AbortSignal }): Promise<{ ok: boolean }> {
  return { ok: true };
}
