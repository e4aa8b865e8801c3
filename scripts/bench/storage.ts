/**
 * Storage benchmark: put and get of one pseudo-random object (1 GiB by default) through each driver
 * (local disk, S3 against s3rver, Dropbox against the fake Dropbox), each in its own process so peak
 * RSS is measured the same way for every tool, with `aws s3 cp` against the same s3rver as the
 * anchor of the S3 ratio. Memory must stay flat: the object is never held in memory.
 * Run through scripts/bench/storage.sh. BENCH_OBJECT_MIB changes the size.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomStream } from '../../test/support/bytes.js';
import { startFakeDropbox } from '../../test/support/fake-dropbox.js';
import { startS3rver } from '../../test/support/s3rver.js';
import { assertSucceeded, measureChild, type Measurement } from './lib/measure-child.js';
import { formatMiB, formatRatio, formatTable, MiB } from './lib/table.js';

const SIZE = Number(process.env['BENCH_OBJECT_MIB'] ?? 1024) * MiB;

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'bench-storage-'));
  const s3 = await startS3rver({ bucket: 'bench-storage', directory: join(work, 's3') });
  const dbx = await startFakeDropbox({ accessTokens: ['bench-token'] });
  try {
    const file = join(work, 'object.bin');
    const { stream, digest } = randomStream(SIZE);
    await pipeline(stream, createWriteStream(file));
    const sha256 = digest();
    console.log(`object: ${SIZE / MiB} MiB of random bytes, sha256 ${sha256}`);

    const env = { ...process.env, B_S3_ID: s3.credentials.accessKeyId, B_S3_SECRET: s3.credentials.secretAccessKey, B_DBX: 'bench-token' };
    const drivers = {
      local: { type: 'local', path: join(work, 'local') },
      s3: { type: 's3', bucket: s3.bucket, prefix: 'ours/', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyId: { env: 'B_S3_ID' }, secretAccessKey: { env: 'B_S3_SECRET' } } },
      dropbox: { type: 'dropbox', root: '/bench', apiBaseUrl: dbx.baseUrl, auth: { accessToken: { env: 'B_DBX' } } },
    } as const;
    const rows: (string | number | undefined)[][] = [];
    const results: Record<string, { put: Measurement; get: Measurement }> = {};
    for (const [name, config] of Object.entries(drivers)) {
      const run = async (op: 'put' | 'get') => {
        const m = await measureChild({
          command: process.execPath,
          args: ['scripts/bench/storage-child.mjs'],
          env: { ...env, BENCH_STORAGE: JSON.stringify({ op, name, config, file, key: 'bench/object.bin' }) },
        });
        assertSucceeded(`${name} ${op}`, m);
        const out = JSON.parse(m.stdout.trim().split('\n').pop() ?? '{}') as { sha256?: string; size?: number };
        if (out.sha256 !== sha256 || out.size !== SIZE) throw new Error(`${name} ${op}: ${out.size} bytes, sha256 ${out.sha256}`);
        return m;
      };
      results[name] = { put: await run('put'), get: await run('get') };
    }

    // the anchor: aws s3 cp against the same s3rver (path-style addressing, fixed credentials)
    const awsConfig = join(work, 'aws-config');
    await writeFile(awsConfig, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n');
    const awsEnv = { ...process.env, AWS_CONFIG_FILE: awsConfig, AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required', AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required' };
    const awsPut = await measureChild({ command: 'aws', args: ['s3', 'cp', '--only-show-errors', '--endpoint-url', s3.endpoint, file, `s3://${s3.bucket}/aws/object.bin`], env: awsEnv, stdout: 'ignore' });
    assertSucceeded('aws s3 cp (put)', awsPut);
    await mkdir(join(work, 'aws-get'));
    const awsGet = await measureChild({ command: 'aws', args: ['s3', 'cp', '--only-show-errors', '--endpoint-url', s3.endpoint, `s3://${s3.bucket}/aws/object.bin`, join(work, 'aws-get', 'object.bin')], env: awsEnv, stdout: 'ignore' });
    assertSucceeded('aws s3 cp (get)', awsGet);

    const rate = (m: Measurement) => SIZE / MiB / m.wallSeconds;
    rows.push(['aws s3 cp (anchor)', rate(awsPut).toFixed(0), rate(awsGet).toFixed(0), '1.00x', '1.00x', formatMiB(awsPut.peakRssBytes), formatMiB(awsGet.peakRssBytes)]);
    for (const [name, r] of Object.entries(results)) {
      const s3ish = name === 's3';
      rows.push([
        `mysql-archiver ${name}`,
        rate(r.put).toFixed(0),
        rate(r.get).toFixed(0),
        s3ish ? formatRatio(rate(r.put), rate(awsPut)) : '',
        s3ish ? formatRatio(rate(r.get), rate(awsGet)) : '',
        formatMiB(r.put.peakRssBytes),
        formatMiB(r.get.peakRssBytes),
      ]);
    }
    console.log(`\nput and get of ${SIZE / MiB} MiB, each verified (size + sha256), same machine, same run`);
    console.log(formatTable(['', 'put MiB/s', 'get MiB/s', 'put ratio', 'get ratio', 'put peak RSS MiB', 'get peak RSS MiB'], rows));
    console.log('ratios: mysql-archiver s3 / aws s3 cp against the same s3rver; local and dropbox have no standard tool to compare with here');
  } finally {
    await dbx.stop();
    await s3.destroy();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
