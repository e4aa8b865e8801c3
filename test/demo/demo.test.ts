import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_BUCKET, DEMO_PASSWORD_ENV, demoLayout } from '../../src/demo/demo-config.js';
import { portIsOpen } from '../../src/demo/free-port.js';
import { runDemo, type DemoResult } from '../../src/demo/run-demo.js';
import { startThrowawayMariadb, type ThrowawayMariadb } from '../../src/demo/throwaway-mariadb.js';
import { UsageError } from '../../src/errors.js';
import { createLogger } from '../../src/ops/logger.js';
import { hashStream } from '../../src/storage/byte-counter.js';
import { createS3Storage } from '../../src/storage/s3/s3-storage.js';
import { startS3rver, stopAllS3rver } from '../support/s3rver.js';
import { waitFor } from '../support/wait.js';
import { readDemoManifest } from './manifest-reader.js';

async function readAllStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const T = { timeout: 120_000 };
const dirs: string[] = [];

afterAll(async () => {
  await stopAllS3rver();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}, 60_000);

async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  dirs.push(dir);
  return dir;
}

function newPassword(): string {
  return `pw-${randomBytes(12).toString('hex')}`;
}

/** A logger writing JSON lines into `lines`, as the CLI's does to stderr. */
function capturingLogger(lines: string[]) {
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return createLogger({ level: 'debug', format: 'json', stream });
}

/** Command lines of every process on this machine (Linux /proc), NUL separators turned into spaces. */
async function allCommandLines(): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline) out.push(cmdline.replaceAll('\0', ' '));
  }
  return out;
}

/** `[n/N] name ... ok (1.2 s)` for each of N steps, in order. */
function expectAllStepsOk(out: string[]): void {
  const steps = out.filter((l) => /^\[\d+\/\d+\] /.test(l));
  expect(steps.length).toBeGreaterThanOrEqual(7);
  steps.forEach((line, i) => expect(line).toMatch(new RegExp(`^\\[${i + 1}/${steps.length}\\] .+ \\.\\.\\. ok \\(\\d+\\.\\d s\\)$`)));
}

describe('runDemo (in process)', () => {
  it('archives the workload binlog to the local S3, verified and in the manifest, and tears everything down', T, async () => {
    const workDir = join(await scratchDir(), 'work');
    const password = newPassword();
    const out: string[] = [];
    const logLines: string[] = [];
    let server: ThrowawayMariadb | undefined;
    let serverCmdline = '';
    const result: DemoResult = await runDemo({
      workDir,
      keep: true,
      out: (line) => out.push(line),
      logger: capturingLogger(logLines),
      signal: new AbortController().signal,
      env: { ...process.env, [DEMO_PASSWORD_ENV]: password },
      startMariadb: async (opts, signal) => {
        server = await startThrowawayMariadb(opts, signal);
        serverCmdline = (await readFile(`/proc/${server.pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
        return server;
      },
    });
    expectAllStepsOk(out);
    expect(result.workDir).toBe(workDir);
    expect(result.objects.length).toBeGreaterThanOrEqual(1);

    // the summary names every object with its size and sha256
    const text = out.join('\n');
    for (const o of result.objects) {
      expect(text).toMatch(new RegExp(`${o.storage}:${o.key.replace(/[.]/g, '\\.')}\\s+${o.size} bytes\\s+sha256 ${o.sha256}`));
    }

    // the spool was looked at after the stop: nothing damaged, what waits is named
    expect(text).toMatch(/spool: \d+ item\(s\), \d+ bytes waiting for the next start/);
    expect(await readdir(join(demoLayout(workDir).spoolDir, 'damaged'))).toEqual([]);

    // nothing is left running: mariadbd gone, its port and the local S3's port closed
    expect(server?.running).toBe(false);
    expect(existsSync(`/proc/${server?.pid}`)).toBe(false);
    expect(await portIsOpen(server!.port)).toBe(false);
    const s3Port = Number(/local S3 \(s3rver\) at http:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
    expect(s3Port).toBeGreaterThan(0);
    expect(await portIsOpen(s3Port)).toBe(false);

    // the objects are in the bucket with the printed sha256; the segments of each closed binlog
    // rebuild the server's file byte for byte; one manifest record per object
    const layout = demoLayout(workDir);
    const s3 = await startS3rver({ directory: layout.s3Dir, bucket: DEMO_BUCKET });
    const storage = createS3Storage({ bucket: DEMO_BUCKET, prefix: 'demo/', client: s3.client() });
    try {
      for (const o of result.objects) {
        expect(await hashStream(await storage.get(o.key))).toEqual({ size: o.size, sha256: o.sha256 });
      }
      const records = await readDemoManifest(storage);
      const segments = records.filter((r) => r.kind === 'binlog-segment');
      expect(segments.map((r) => r.key).sort()).toEqual(result.objects.map((o) => o.key).sort());
      for (const o of result.objects) expect(segments.find((r) => r.key === o.key)).toMatchObject({ size: o.size, sha256: o.sha256 });
      const closed = [...new Set(segments.filter((r) => r['fileComplete'] === true).map((r) => String(r['serverFile'])))];
      expect(closed.length).toBeGreaterThanOrEqual(1);
      for (const file of closed) {
        const parts = segments.filter((r) => r['serverFile'] === file).sort((a, b) => Number(a['startPos']) - Number(b['startPos']));
        const rebuilt = Buffer.concat(await Promise.all(parts.map(async (r, i) => {
          const bytes = await readAllStream(await storage.get(r.key!));
          // a segment after the first carries the magic and the file's FDE before its bytes
          return i === 0 ? bytes : bytes.subarray(bytes.length - (Number(r['endPos']) - Number(r['startPos'])));
        })));
        expect(rebuilt.equals(await readFile(join(server!.binlogDir, file))), file).toBe(true);
      }
    } finally {
      await storage.close?.();
      await s3.stop();
    }

    // the password is used but never shown: not in output, logs, mariadbd's argv or the config file
    expect(server!.archiver.password).toBe(password);
    expect(text).not.toContain(password);
    expect(logLines.join('')).not.toContain(password);
    expect(serverCmdline).toContain('mariadbd');
    expect(serverCmdline).not.toContain(password);
    expect(await readFile(layout.configFile, 'utf8')).not.toContain(password);
  });

  it('stops the server and removes the work dir when a step fails', T, async () => {
    const workDir = join(await scratchDir(), 'work');
    const out: string[] = [];
    let server: ThrowawayMariadb | undefined;
    const run = runDemo({
      workDir,
      out: (line) => out.push(line),
      logger: capturingLogger([]),
      signal: new AbortController().signal,
      env: process.env,
      startMariadb: async (opts, signal) => (server = await startThrowawayMariadb(opts, signal)),
      startS3: async () => {
        throw new Error('no local s3 today');
      },
    });
    await expect(run).rejects.toThrow('no local s3 today');
    expect(out).toContain(out.find((l) => /^\[2\/\d+\] start a local S3 \(s3rver\) \.\.\. FAILED/.test(l)));
    expect(out.at(-1)).toMatch(/^cleanup: stopped MariaDB, removed .* \(after a failure\)$/);
    expect(server?.running).toBe(false);
    expect(await portIsOpen(server!.port)).toBe(false);
    expect(existsSync(workDir)).toBe(false);
  });

  it('refuses a work dir that is not empty and leaves it alone', T, async () => {
    const workDir = await scratchDir();
    await writeFile(join(workDir, 'precious.txt'), 'keep me');
    const run = runDemo({ workDir, out: () => undefined, logger: capturingLogger([]), signal: new AbortController().signal, env: process.env });
    await expect(run).rejects.toBeInstanceOf(UsageError);
    expect(await readdir(workDir)).toEqual(['precious.txt']);
  });
});

interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** command lines of every process seen while the child ran that contain `watch` */
  seen: string[];
}

/** Runs the real CLI as a child process; `onStdout` may signal it. Polls /proc while it runs. */
async function runCli(args: string[], env: NodeJS.ProcessEnv, watch: string, onStdout?: (text: string, pid: number) => void): Promise<ChildRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: join(import.meta.dirname, '..', '..'),
    env: { ...env, NODE_OPTIONS: '--openssl-legacy-provider' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    onStdout?.(stdout, child.pid!);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  const seen = new Set<string>();
  let running = true;
  const poll = (async () => {
    while (running) {
      for (const line of await allCommandLines()) if (line.includes(watch)) seen.add(line);
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const code = await exited;
  running = false;
  await poll;
  return { code, stdout, stderr, seen: [...seen] };
}

describe('mysql-archiver demo (the real CLI)', () => {
  it('exits 0 with a summary, leaves nothing behind and never shows the password', T, async () => {
    const workDir = join(await scratchDir(), 'cli-work');
    const password = newPassword();
    const run = await runCli(['demo', '--work-dir', workDir], { ...process.env, [DEMO_PASSWORD_ENV]: password }, password);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expectAllStepsOk(lines);
    expect(run.stdout).toMatch(/objects \(\d+\)\n\s+s3-local:segments\/server-1\/mysql-bin\.000001\/\S+\.binlog\s+\d+ bytes\s+sha256 [0-9a-f]{64}/);
    expect(run.stdout).toContain('next steps');
    // the main job includes the dumps: one per tier and target, verified
    expect(run.stdout).toMatch(/daily → local-disk: dumps\/daily\/\S+ \(\d+ tables, \d+ rows, \d+ files, \d+ bytes, snapshot at mysql-bin\.\d+:\d+\), every file verified/);
    expect(run.stdout).toMatch(/weekly → s3-local: dumps\/weekly\/\S+ \(/);
    // ...and ends with a restore drill and an on-call single-table restore, checked
    expect(run.stdout).toMatch(/passed: dump \S+ restored, binlog replayed to dump \S+, all \d+ tables equal to its checksums/);
    expect(run.stdout).toMatch(/\d+ rows back in demo\.orders__restored_\d{8}_\d{6}, CHECKSUM TABLE equal to demo\.orders just before the DELETE/);
    // no process (mariadbd included) ever carried the password in its argv, and it was never printed
    expect(run.seen).toEqual([]);
    expect(run.stdout + run.stderr).not.toContain(password);
    // everything stopped and removed
    expect(existsSync(workDir)).toBe(false);
    const dbPort = Number(/on 127\.0\.0\.1:(\d+)/.exec(run.stdout)?.[1]);
    const s3Port = Number(/http:\/\/127\.0\.0\.1:(\d+)/.exec(run.stdout)?.[1]);
    expect(await portIsOpen(dbPort)).toBe(false);
    expect(await portIsOpen(s3Port)).toBe(false);
    expect((await allCommandLines()).filter((cmd) => cmd.includes(workDir))).toEqual([]);
  });

  it('cleans up and exits 130 on Ctrl-C', T, async () => {
    const workDir = join(await scratchDir(), 'cli-int');
    let interrupted = false;
    const run = await runCli(['demo', '--work-dir', workDir], process.env, workDir, (text, pid) => {
      // once the server runs, interrupt
      if (!interrupted && /\[1\/\d+\] .* ok/.test(text)) {
        interrupted = true;
        process.kill(pid, 'SIGINT');
      }
    });
    expect(interrupted).toBe(true);
    expect(run.code).toBe(130);
    expect(run.stderr).toContain('stopping and cleaning up');
    expect(run.stdout).toMatch(/cleanup: .*stopped MariaDB.*removed/);
    expect(run.seen.some((cmd) => cmd.includes('mariadbd'))).toBe(true);
    await waitFor(async () => (await allCommandLines()).every((cmd) => !cmd.includes(workDir)), { what: 'no process left in the work dir', timeoutMs: 5_000 });
    expect(existsSync(workDir)).toBe(false);
    const dbPort = Number(/on 127\.0\.0\.1:(\d+)/.exec(run.stdout)?.[1]);
    expect(await portIsOpen(dbPort)).toBe(false);
  });

  it('documents its flags in --help', T, async () => {
    const run = await runCli(['demo', '--help'], process.env, 'never-matches-anything');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--work-dir <dir>');
    expect(run.stdout).toContain('--keep');
  });
});
