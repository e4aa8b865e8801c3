export {
  checkCopyTarget,
  copyTable,
  describeTarget,
  qualified,
  quoteId,
  rewriteCreateTable,
  type CopyProgress,
  type CopyTableOptions,
  type CopyTableResult,
  type CopyTarget,
  type TableRef,
} from './table-copy.js';
