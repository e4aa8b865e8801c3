import { Writable } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { reassemble } from '../binlog/reassemble.js';
import { runDaemon } from '../daemon/run-daemon.js';
import { VerificationError, throwIfAborted } from '../errors.js';
import { createManifest, type ManifestRecord } from '../manifest/manifest.js';
import { withMinimumLevel } from '../ops/logger.js';
import { openSpool } from '../spool/spool.js';
import { openStorage } from '../storage/registry.js';
import type { Storage } from '../storage/storage.js';
import type { DemoState } from './demo-state.js';

/**
 * The demo's archiving steps: the real daemon (`run`) against the throwaway server, then proof
 * from the outside: the manifest in the local S3 covers every byte the server wrote, every object
 * re-reads to its sha256, and the segments of each closed binlog rebuild the server's file exactly.
 */

const CATCH_UP_TIMEOUT_MS = 60_000;

export async function startArchiver(s: DemoState): Promise<string[]> {
  const config = s.config!;
  const controller = new AbortController();
  const stopOnAbort = () => controller.abort();
  s.signal.addEventListener('abort', stopOnAbort, { once: true });
  // its routine lines (sealed, uploaded) would interleave with the steps; warnings still show
  const running = runDaemon(config, { logger: withMinimumLevel(s.logger, 'warn'), signal: controller.signal, env: s.env });
  // a daemon that dies early must fail the step that waits on it, not hang the demo
  running.catch(() => undefined);
  s.daemon = { running, stop: async () => (controller.abort(), s.signal.removeEventListener('abort', stopOnAbort), await running) };
  s.closers.push({ what: 'stopped the archiver', close: async () => void (await s.daemon?.stop().catch(() => undefined)) });
  return [`archiver running: binlog → segments (sealed every ${config.archiver.segment.maxSeconds} s or at rotation) → spool ${config.archiver.spoolDir} → ${config.archiver.storage}`];
}

export async function waitForArchive(s: DemoState): Promise<string[]> {
  const storage = await archiveStorage(s);
  const [row] = await s.db!.query<{ File: string; Position: string | number }[]>('SHOW MASTER STATUS');
  const target = { file: row!.File, position: Number(row!.Position) };
  const started = Date.now();
  for (;;) {
    throwIfAborted(s.signal);
    const records = await segmentRecords(storage);
    if (records.some((r) => r['serverFile'] === target.file && Number(r['endPos']) >= target.position)) {
      s.archived = records.map((r) => ({ source: `${String(r['serverFile'])}:${String(r['startPos'])}-${String(r['endPos'])}`, storage: s.config!.archiver.storage, key: r.key!, size: r.size!, sha256: r.sha256! }));
      return [`${records.length} segment(s) in ${s.config!.archiver.storage}, the last ending at ${target.file}:${target.position}, ${((Date.now() - started) / 1000).toFixed(1)} s after the workload`];
    }
    if (Date.now() - started > CATCH_UP_TIMEOUT_MS) throw new Error(`the archive did not reach ${target.file}:${target.position} within ${CATCH_UP_TIMEOUT_MS / 1000} s`);
    await Promise.race([delay(200), s.daemon!.running]);
  }
}

export async function stopArchiver(s: DemoState): Promise<string[]> {
  await s.daemon!.stop();
  const checkpoint = JSON.parse(await readFile(join(s.config!.archiver.stateDir, 'checkpoint.json'), 'utf8')) as { next: { file: string; position: number } };
  return [`stopped cleanly; checkpoint ${checkpoint.next.file}:${checkpoint.next.position} (a restart resumes there)`];
}

export async function verifyArchive(s: DemoState): Promise<string[]> {
  const storage = await archiveStorage(s);
  const report = await createManifest(storage).verify({ deep: true, signal: s.signal });
  if (report.missing.length || report.altered.length) {
    throw new VerificationError(`the archive does not match its manifest: missing ${report.missing.map((r) => r.key).join(', ') || 'none'}; altered ${report.altered.map((a) => a.record.key).join(', ') || 'none'}`, { retryable: false });
  }
  s.verifiedRecords = report.checked;
  s.manifestLocation = `${storage.name}/manifest/`;
  const records = await segmentRecords(storage);
  const closed = [...new Set(records.filter((r) => r['fileComplete'] === true).map((r) => String(r['serverFile'])))];
  for (const file of closed) {
    const segs = records.filter((r) => r['serverFile'] === file).sort((a, b) => Number(a['startPos']) - Number(b['startPos']));
    const chunks: Buffer[] = [];
    await reassemble(
      segs.map((r) => ({ startPos: Number(r['startPos']), endPos: Number(r['endPos']), serverFile: file, open: () => storage.get(r.key!) })),
      new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }),
    );
    const server = await readFile(join(s.db!.binlogDir, file));
    if (!Buffer.concat(chunks).equals(server)) throw new VerificationError(`the segments of ${file} do not rebuild the server's file`, { retryable: false });
  }
  // read-only: a look at what the stopped daemon left, without a recovery pass
  const spool = await openSpool({ dir: s.config!.archiver.spoolDir, maxBytes: s.config!.archiver.spoolMaxBytes, logger: s.logger, readOnly: true });
  const waiting = await spool.stats();
  if (waiting.damaged) throw new VerificationError(`the spool ${s.config!.archiver.spoolDir} holds ${waiting.damaged} damaged item(s)`, { retryable: false });
  return [
    `${report.checked} object(s) re-read, sha256 as recorded`,
    `spool: ${waiting.items} item(s), ${waiting.bytes} bytes waiting for the next start`,
    `${closed.length} closed binlog file(s) rebuilt from their segments: byte-identical to the server's (${closed.join(', ')})`];
}

async function archiveStorage(s: DemoState): Promise<Storage> {
  if (s.archiveStorage) return s.archiveStorage;
  const config = s.config!;
  const name = config.archiver.storage;
  const storage = await openStorage(name, config.storages[name]!, { env: s.env });
  s.archiveStorage = storage;
  s.closers.push({ what: `closed storage ${name}`, close: async () => storage.close?.() });
  return storage;
}

async function segmentRecords(storage: Storage): Promise<ManifestRecord[]> {
  const out: ManifestRecord[] = [];
  for await (const r of createManifest(storage).records('segments/')) if (r.kind === 'binlog-segment') out.push(r);
  return out;
}
