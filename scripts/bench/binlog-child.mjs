// @ts-check
/**
 * The archiver as the benchmark runs it (the built dist/, as the service runs it), in a process of its own so its peak RSS is measured from
 * outside like the standard tools'. Settings in BENCH_ARCHIVER (JSON), password in BENCH_PASSWORD.
 * mode 'catch-up': archive from `start` until the archive reaches `until`, then exit.
 * mode 'lag': archive until SIGTERM, put every sealed segment into a local storage (verified), and
 *   print one JSON line per segment: how long its oldest event waited from commit to verified storage.
 */
import { mkdir, rename } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { BinlogArchiver } from '../../dist/binlog/archiver.js';
import { createLogger } from '../../dist/ops/logger.js';
import { createLocalStorage } from '../../dist/storage/local/local-storage.js';

/** @type {{ mode: 'catch-up' | 'lag', host: string, port: number, user: string, stateDir: string, outDir: string, maxSeconds: number, maxBytes: number, until?: { file: string, position: number } }} */
const s = JSON.parse(process.env['BENCH_ARCHIVER'] ?? '{}');
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort());
const storage = createLocalStorage({ path: s.outDir });

const archiver = new BinlogArchiver({
  source: { host: s.host, port: s.port, user: s.user, password: process.env['BENCH_PASSWORD'] ?? '', serverId: 7777 },
  stateDir: s.stateDir,
  maxSeconds: s.maxSeconds,
  maxBytes: s.maxBytes,
  heartbeatMs: 1000,
  logger: createLogger({ level: 'warn', format: 'json', stream: process.stderr }),
  signal: controller.signal,
  async sink(segment) {
    if (s.mode === 'catch-up') {
      // like `mariadb-binlog --raw`: the files end up on local disk, durable
      const target = join(s.outDir, segment.name);
      await mkdir(dirname(target), { recursive: true });
      await rename(segment.path, target);
    } else {
      await storage.put(segment.name, () => createReadStream(segment.path), { expected: { size: segment.size, sha256: segment.sha256 } });
      // event timestamps have second resolution: count the oldest event as committed at the start of its second
      process.stdout.write(`${JSON.stringify({ lagMs: Date.now() - segment.firstEventTime, bytes: segment.size })}\n`);
    }
    const until = s.until;
    const next = archiver.checkpoint?.next;
    if (until && next && (next.file > until.file || (next.file === until.file && next.position >= until.position))) controller.abort();
  },
  async onGap(gap) {
    process.stderr.write(`gap: ${JSON.stringify(gap)}\n`);
  },
});
await archiver.run();
