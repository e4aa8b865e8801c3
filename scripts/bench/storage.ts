/**
 * Storage benchmark: put and get of one pseudo-random object (1 GiB by default) through each driver
 * (local disk, S3 against s3rver, Dropbox against the fake Dropbox server), each operation in a
 * process of its own so that peak RSS is measured the same way for every tool, with `aws s3 cp`
 * against the same s3rver as the anchor of the S3 ratios. The object is generated as a stream into a
 * file and never held in memory; every transfer is checked against its sha256.
 * Run through scripts/bench/storage.sh. BENCH_OBJECT_MIB changes the size, BENCH_MAX_RSS_MIB the
 * peak RSS above which the run fails (default 200).
 */
import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { StorageConfig } from '../../src/config/schema.js';
import { hashStream } from '../../src/storage/byte-counter.js';
import { randomStream } from '../../test/support/bytes.js';
import { startFakeDropbox } from '../../test/support/fake-dropbox.js';
import { startS3rver, type S3rverHandle } from '../../test/support/s3rver.js';
import { assertSucceeded, measureChild, type Measurement } from './lib/measure-child.js';
import { formatMiB, formatRatio, formatTable, MiB } from './lib/table.js';

const SIZE = Number(process.env['BENCH_OBJECT_MIB'] ?? 1024) * MiB;
const MAX_RSS = Number(process.env['BENCH_MAX_RSS_MIB'] ?? 200) * MiB;
const KEY = 'bench/object.bin';
const BUILD = '.tmp/bench-storage-build';

/**
 * Compiles the child and the storage code it imports from the current sources, as plain JS the
 * way the product runs: tsx would add its loader to every RSS figure (about 25 MiB), and dist/ may
 * be older than the sources.
 */
async function buildChild(): Promise<string> {
  await rm(BUILD, { recursive: true, force: true });
  const flags = ['--outDir', BUILD, '--rootDir', '.', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--lib', 'ES2023', '--types', 'node', '--strict', '--skipLibCheck', '--esModuleInterop', '--resolveJsonModule'];
  await promisify(execFile)(process.execPath, ['node_modules/typescript/bin/tsc', 'scripts/bench/storage-child.ts', ...flags]);
  return join(BUILD, 'scripts/bench/storage-child.js');
}

interface Driver {
  idle: Measurement;
  put: Measurement;
  get: Measurement;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-storage-'));
  const s3 = await startS3rver({ bucket: 'bench-storage', directory: join(work, 's3') });
  const dbx = await startFakeDropbox({ accessTokens: ['bench-token'] });
  try {
    const file = join(work, 'object.bin');
    const { stream, digest } = randomStream(SIZE);
    await pipeline(stream, createWriteStream(file));
    const sha256 = digest();
    console.log(`object: ${SIZE / MiB} MiB of pseudo-random bytes, sha256 ${sha256}`);

    const env = { ...process.env, B_S3_ID: s3.credentials.accessKeyId, B_S3_SECRET: s3.credentials.secretAccessKey, B_DBX: 'bench-token' };
    const configs: Record<string, StorageConfig> = {
      local: { type: 'local', path: join(work, 'local') },
      s3: {
        type: 's3',
        bucket: s3.bucket,
        prefix: 'ours/',
        region: 'us-east-1',
        endpoint: s3.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: { env: 'B_S3_ID' }, secretAccessKey: { env: 'B_S3_SECRET' } },
      } as StorageConfig,
      dropbox: { type: 'dropbox', root: '/bench', apiBaseUrl: dbx.baseUrl, auth: { accessToken: { env: 'B_DBX' } } } as StorageConfig,
    };
    const child = await buildChild();
    const ours: Record<string, Driver> = {};
    for (const [name, config] of Object.entries(configs)) {
      const run = async (op: 'idle' | 'put' | 'get'): Promise<Measurement> => {
        const m = await measureChild({
          command: process.execPath,
          args: [child],
          env: { ...env, BENCH_STORAGE: JSON.stringify({ op, name, config, file, key: KEY }) },
        });
        assertSucceeded(`${name} ${op}`, m);
        if (op !== 'idle') {
          const out = JSON.parse(m.stdout.trim().split('\n').pop() ?? '{}') as { sha256?: string; size?: number };
          if (out.sha256 !== sha256 || out.size !== SIZE) throw new Error(`${name} ${op}: ${out.size} bytes, sha256 ${out.sha256}; expected ${SIZE}, ${sha256}`);
        }
        console.log(`${name} ${op}: ${m.wallSeconds.toFixed(1)} s, peak RSS ${formatMiB(m.peakRssBytes)} MiB`);
        return m;
      };
      ours[name] = { idle: await run('idle'), put: await run('put'), get: await run('get') };
    }

    const aws = await awsAnchor(s3, work, file, sha256);
    const rate = (m: Measurement) => SIZE / MiB / m.wallSeconds;
    const rows: (string | undefined)[][] = [
      ['aws s3 cp -> s3rver (anchor)', rate(aws.put).toFixed(0), rate(aws.get).toFixed(0), '1.00x', '1.00x', formatMiB(aws.put.peakRssBytes), formatMiB(aws.get.peakRssBytes), undefined],
    ];
    for (const [name, r] of Object.entries(ours)) {
      const anchored = name === 's3';
      rows.push([
        `mysql-archiver ${name}`,
        rate(r.put).toFixed(0),
        rate(r.get).toFixed(0),
        anchored ? formatRatio(rate(r.put), rate(aws.put)) : undefined,
        anchored ? formatRatio(rate(r.get), rate(aws.get)) : undefined,
        formatMiB(r.put.peakRssBytes),
        formatMiB(r.get.peakRssBytes),
        formatMiB(r.idle.peakRssBytes),
      ]);
    }
    console.log(`\nput and get of ${SIZE / MiB} MiB, every transfer checked by sha256; wall time of each process, same machine, same run`);
    console.log(formatTable(['', 'put MiB/s', 'get MiB/s', 'put ratio', 'get ratio', 'put peak RSS MiB', 'get peak RSS MiB', 'idle RSS MiB'], rows));
    console.log('ratios: ours / aws s3 cp against the same s3rver (no standard tool to anchor local disk or Dropbox here)');
    console.log('idle RSS: the same child opening the storage and exiting: node and the SDKs before any byte moves');

    const heavy = Object.entries(ours).flatMap(([name, r]) =>
      (['put', 'get'] as const).filter((op) => r[op].peakRssBytes > MAX_RSS).map((op) => `${name} ${op} ${formatMiB(r[op].peakRssBytes)} MiB`),
    );
    if (heavy.length > 0) throw new Error(`peak RSS above ${formatMiB(MAX_RSS, 0)} MiB: ${heavy.join(', ')}`);
  } finally {
    await dbx.stop();
    await s3.destroy();
    await rm(work, { recursive: true, force: true });
  }
}

/** `aws s3 cp` up and down against the same s3rver: path-style addressing, s3rver's fixed credentials. */
async function awsAnchor(s3: S3rverHandle, work: string, file: string, sha256: string): Promise<{ put: Measurement; get: Measurement }> {
  // the Debian awscli the script installs, not whatever `aws` a version manager puts first on PATH
  const command = await access('/usr/bin/aws').then(() => '/usr/bin/aws', () => 'aws');
  const config = join(work, 'aws-config');
  await writeFile(config, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n');
  const env = {
    ...process.env,
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    // newer CLIs frame streamed uploads as aws-chunked by default, which s3rver stores verbatim
    AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
  };
  const cp = async (what: string, from: string, to: string): Promise<Measurement> => {
    const m = await measureChild({ command, args: ['s3', 'cp', '--only-show-errors', '--endpoint-url', s3.endpoint, from, to], env, stdout: 'ignore' });
    assertSucceeded(`aws s3 cp (${what})`, m);
    console.log(`aws ${what}: ${m.wallSeconds.toFixed(1)} s, peak RSS ${formatMiB(m.peakRssBytes)} MiB`);
    return m;
  };
  const put = await cp('put', file, `s3://${s3.bucket}/aws/object.bin`);
  await mkdir(join(work, 'aws-get'));
  const back = join(work, 'aws-get', 'object.bin');
  const get = await cp('get', `s3://${s3.bucket}/aws/object.bin`, back);
  const got = await hashStream(createReadStream(back, { highWaterMark: 1 << 20 }));
  if (got.sha256 !== sha256) throw new Error(`aws s3 cp round trip: got sha256 ${got.sha256}, expected ${sha256}`);
  await rm(back);
  return { put, get };
}

await main();
