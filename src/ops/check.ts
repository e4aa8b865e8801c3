import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import { connectSource } from '../db/connect.js';
import { sourceOptionsFromConfig } from '../db/source-from-config.js';
import { checkServer, type PreflightReport } from '../binlog/preflight.js';
import { chooseCompression } from '../dump/codec.js';
import { ArchiverError, PreflightError, describeError } from '../errors.js';
import { hashStream } from '../storage/byte-counter.js';
import { openStorage, type OpenStorageDeps } from '../storage/registry.js';
import type { Storage } from '../storage/storage.js';
import type { Logger } from './logger.js';

export interface CheckDeps extends OpenStorageDeps {
  logger: Logger;
  signal?: AbortSignal;
  env: NodeJS.ProcessEnv;
  /** where the report lines go */
  out: (line: string) => void;
  /** whether the zstd program is installed (tests pass their answer) */
  hasZstd?: () => boolean;
}

export interface StorageProbe {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

export interface CheckResult {
  ok: boolean;
  storages: StorageProbe[];
  server?: PreflightReport;
  serverError?: string;
}

/**
 * `mysql-archiver check`: the config is already valid when this runs. Probes every storage with a
 * put/get/delete round trip and asks the source for every setting that would block archiving.
 * Everything is checked before anything is reported, so one run lists every problem.
 * Bad server settings throw PreflightError (exit 2); an unreachable storage or server returns ok=false (exit 1).
 */
export async function runCheck(config: Config, deps: CheckDeps): Promise<CheckResult> {
  const codec = chooseCompression(config.dump.compression, deps.hasZstd);
  deps.out(codec.warning ? `warn  dump.compression auto: ${codec.warning}` : `ok    dump codec: ${codec.compression}`);
  const storages = await Promise.all(
    Object.entries(config.storages).map(([name, storageConfig]) => probeStorage(name, () => openStorage(name, storageConfig, deps), deps)),
  );
  for (const probe of storages) {
    deps.out(`${probe.ok ? 'ok  ' : 'FAIL'}  storage ${probe.name}: ${probe.detail}`);
    if (probe.hint) deps.out(`      hint: ${probe.hint}`);
  }

  const result: CheckResult = { ok: storages.every((s) => s.ok), storages };
  try {
    const conn = await connectSource(await sourceOptionsFromConfig(config.source, deps.env));
    try {
      result.server = await checkServer(conn, { serverId: config.source.serverId, role: 'archiver' });
    } finally {
      await conn.end().catch(() => undefined);
    }
  } catch (error) {
    if (error instanceof ArchiverError && error.exitCode === 2) throw error;
    result.ok = false;
    result.serverError = describeError(error);
    deps.out(`FAIL  source ${config.source.host}:${config.source.port}: ${result.serverError}`);
    const hint = error instanceof ArchiverError ? error.hint : undefined;
    if (hint) deps.out(`      hint: ${hint}`);
    return result;
  }

  const { server, findings } = result.server;
  const errors = findings.filter((f) => f.severity === 'error');
  deps.out(
    `${errors.length ? 'FAIL' : 'ok  '}  source ${config.source.host}:${config.source.port}: ${server.version}, server_id ${server.serverId}, binlog ${server.logBin ? `${server.binlogFormat}/${server.binlogRowImage}` : 'off'}, row metadata ${server.binlogRowMetadata}${server.isReplica ? ', replica' : ''}`,
  );
  for (const f of findings) deps.out(`${f.severity === 'error' ? 'FAIL' : 'warn'}  ${f.setting}: ${f.problem}\n      fix: ${f.fix}`);
  if (errors.length) {
    throw new PreflightError(`the source is not ready: ${errors.map((f) => `${f.setting}: ${f.problem}`).join('; ')}`, {
      hint: errors.map((f) => f.fix).join(' '),
    });
  }
  return result;
}

async function probeStorage(name: string, open: () => Promise<Storage>, deps: CheckDeps): Promise<StorageProbe> {
  const started = Date.now();
  let storage: Storage | undefined;
  // one fixed key per host and storage: repeated checks overwrite it instead of piling up probes,
  // and two storages sharing a bucket and prefix do not delete each other's probe mid-check
  const safe = (text: string) => text.replace(/[^A-Za-z0-9._-]/g, '_');
  const key = `.mysql-archiver-probe/${safe(hostname())}-${safe(name)}`;
  const payload = randomBytes(1024);
  try {
    storage = await open();
    const put = await storage.put(key, () => Readable.from([payload]), { signal: deps.signal });
    const back = await hashStream(await storage.get(key, { signal: deps.signal }));
    if (back.sha256 !== put.sha256 || back.size !== payload.length) {
      return { name, ok: false, detail: `${storage.name}: the probe read back differs from what was written` };
    }
    let note = '';
    try {
      await storage.delete(key, { signal: deps.signal });
    } catch (error) {
      // least privilege: the archiver's credentials may rightly lack delete permission
      note = `; probe left at ${key} (delete refused: ${describeError(error)})`;
    }
    return { name, ok: true, detail: `${storage.name}: put/get/delete probe in ${Date.now() - started} ms${note}` };
  } catch (error) {
    deps.logger.debug('storage probe failed', { storage: name, error });
    return {
      name,
      ok: false,
      detail: describeError(error),
      ...(error instanceof ArchiverError && error.hint ? { hint: error.hint } : {}),
    };
  } finally {
    await storage?.close?.().catch(() => undefined);
  }
}
