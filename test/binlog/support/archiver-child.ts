/**
 * The archiver in a process of its own, so a test can SIGKILL it. Settings come as JSON in
 * ARCHIVER_CHILD (the password in ARCHIVER_CHILD_PASSWORD, never argv). Sealed segments are moved
 * into `outDir/<object name>` with a `.json` sidecar, a stand-in for the spool; one JSON line per
 * event goes to stdout. SIGTERM stops it gracefully.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BinlogArchiver } from '../../../src/binlog/archiver.js';
import { createLogger } from '../../../src/ops/logger.js';

interface ChildSettings {
  host: string;
  port: number;
  user: string;
  serverId: number;
  stateDir: string;
  outDir: string;
  maxSeconds: number;
  maxBytes: number;
}

const settings = JSON.parse(process.env['ARCHIVER_CHILD'] ?? '{}') as ChildSettings;
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
const say = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

const archiver = new BinlogArchiver({
  source: { host: settings.host, port: settings.port, user: settings.user, password: process.env['ARCHIVER_CHILD_PASSWORD'] ?? '', serverId: settings.serverId },
  stateDir: settings.stateDir,
  maxSeconds: settings.maxSeconds,
  maxBytes: settings.maxBytes,
  heartbeatMs: 500,
  backoff: { minMs: 100, maxMs: 1000 },
  logger: createLogger({ level: 'warn', format: 'json', stream: process.stderr }),
  signal: controller.signal,
  async sink(segment) {
    const target = join(settings.outDir, segment.name);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(`${target}.json`, JSON.stringify({ ...segment, path: target }));
    await rename(segment.path, target);
    say({ sealed: segment.name, next: archiver.checkpoint?.next });
  },
  async onGap(gap) {
    say({ gap });
  },
});
say({ started: true });
const status = setInterval(() => say({ received: archiver.status.received, connected: archiver.status.connected }), 100);
archiver
  .run()
  .then(() => {
    clearInterval(status);
    say({ stopped: true, next: archiver.checkpoint?.next });
  })
  .catch((error: unknown) => {
    clearInterval(status);
    say({ fatal: String(error) });
    process.exitCode = 1;
  });
