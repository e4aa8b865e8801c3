export {
  checkCopyTarget,
  copyTable,
  describeTarget,
  isGeneratedColumn,
  qualified,
  quoteId,
  rewriteCreateTable,
  type CopyProgress,
  type CopyTableOptions,
  type CopyTableResult,
  type CopyTarget,
  type TableRef,
} from './table-copy.js';
