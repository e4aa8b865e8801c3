import type { Config } from '../config/schema.js';
import type { Schedule } from '../config/schedules.js';
import type { Logger } from '../ops/logger.js';
import type { DemoLayout } from './demo-config.js';
import type { WorkloadResult } from './demo-workload.js';
import type { LocalS3 } from './local-s3.js';
import type { ThrowawayMariadb } from './throwaway-mariadb.js';

/** One object the demo archived, as the manifest records it. */
export interface ArchivedObject {
  /** the server bytes it holds: `file:start-end` */
  readonly source: string;
  readonly storage: string;
  readonly key: string;
  readonly size: number;
  readonly sha256: string;
}

/** What the demo's steps share: each step fills in what the next ones need. */
export interface DemoState {
  readonly layout: DemoLayout;
  /** the caller's environment plus the demo's secrets; passed down, never put in process.env */
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  db?: ThrowawayMariadb;
  serverVersion?: string;
  s3?: LocalS3;
  config?: Config;
  schedules?: Schedule[];
  checkLines: string[];
  workload?: WorkloadResult;
  archived: ArchivedObject[];
  /** dumps taken by the demo, one per tier and target */
  dumps: { tier: string; target: string; prefix: string }[];
  /** the simulated accident the demo restores from */
  accident?: { at: Date; rows: number; checksum: string };
  /** where the manifest lives, for the summary */
  manifestLocation?: string;
  /** records the manifest holds after the deep verification */
  verifiedRecords?: number;
  /** the archiver daemon while it runs */
  daemon?: { running: Promise<void>; stop(): Promise<void> };
  archiveStorage?: import('../storage/storage.js').Storage;
  /** run at teardown, newest first, whatever happened */
  readonly closers: { what: string; close: () => Promise<void> }[];
}
