export { rdsCleanup, type LeftoverInstance, type RdsCleanupOptions, type RdsCleanupResult } from './cleanup.js';
export {
  isRestoreInstance,
  restoredTableName,
  restoreTags,
  tempInstanceName,
  PURPOSE_TAG,
  TOOL_TAG,
} from './names.js';
export { deleteInstanceAndWait, formatDuration, type RdsStateEvent, type RdsWaitOptions } from './rds-ops.js';
export {
  restoreTableFromRds,
  type DbLogin,
  type RdsRestoreConfig,
  type RdsRestoreConnect,
  type RdsRestorePlan,
  type RdsRestoreProgress,
  type RdsRestoreResult,
  type RestoreTableFromRdsOptions,
} from './restore-table.js';
