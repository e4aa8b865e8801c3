/**
 * `check` and the dump codec: `dump.compression: zstd` without the zstd program is bad input (exit 2,
 * before anything is contacted); `auto` without it is a warning naming the fix.
 */
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { ArchiverError } from '../../src/errors.js';
import { runCheck } from '../../src/ops/check.js';
import { createLogger } from '../../src/ops/logger.js';

const disk = mkdtempSync(join(tmpdir(), 'check-codec-'));
afterAll(() => rmSync(disk, { recursive: true, force: true }));

function config(compression: string) {
  // port 1 on localhost: nothing listens, so the source part fails fast and says so
  return parseConfig(
    `
source: { host: 127.0.0.1, port: 1, user: archiver, serverId: 7 }
archiver: { storage: disk }
storages: { disk: { type: local, path: ${disk} } }
dump: { compression: ${compression} }
`,
    '/etc/mysql-archiver/config.yaml',
  );
}

async function check(compression: string, zstd: boolean) {
  const lines: string[] = [];
  const run = runCheck(config(compression), { logger: createLogger({ level: 'error', format: 'json', stream: new Writable({ write: (_c, _e, cb) => cb() }) }), env: {}, out: (l) => lines.push(l), hasZstd: () => zstd });
  return { run, lines };
}

describe('check: the dump codec', () => {
  it('refuses dump.compression zstd without the program: exit 2, the fix named, nothing contacted', async () => {
    const { run, lines } = await check('zstd', false);
    const error = await run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArchiverError);
    expect((error as ArchiverError).exitCode).toBe(2);
    expect((error as Error).message).toContain('dump.compression is zstd');
    expect((error as ArchiverError).hint).toContain('apt-get install zstd');
    expect(lines).toEqual([]);
  });

  it('warns for auto without the program, and reports the codec otherwise', async () => {
    const auto = await check('auto', false);
    await auto.run;
    expect(auto.lines[0]).toMatch(/^warn {2}dump\.compression auto: the zstd program is not installed, so dumps use gzip/);
    expect(auto.lines[0]).toContain('fix: apt-get install zstd');
    const withZstd = await check('auto', true);
    await withZstd.run;
    expect(withZstd.lines[0]).toBe('ok    dump codec: zstd');
    const gzip = await check('gzip', false);
    await gzip.run;
    expect(gzip.lines[0]).toBe('ok    dump codec: gzip');
  });
});
