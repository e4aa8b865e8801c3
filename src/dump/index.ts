export { runDump, dumpPrefix, DEFAULT_CHUNK_BYTES, DEFAULT_STATEMENT_BYTES, type RunDumpOptions } from './dump-writer.js';
export { loadDump, readDumpManifest, checksumTable, type LoadDumpOptions, type LoadReport, type LoadedTable, type TableSelector } from './loader.js';
export { listDumps, type DumpSummary } from './list-dumps.js';
export { openSnapshot, type Snapshot, type SnapshotOptions } from './snapshot.js';
export type { DumpConnectionOptions } from './connection.js';
export { CHECKSUM_ALGORITHM, RowChecksum, type ChecksumAlgorithm } from './checksum.js';
export { hasZstd } from './codec.js';
export * from './types.js';
