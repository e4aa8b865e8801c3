import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/ops/logger.js';
import { REDACTED, redactFormat, redactText, redactValue, SecretRegistry } from '../../src/ops/redact.js';

const R = REDACTED;

const TEXT_CASES: [string, string, string][] = [
  [
    'dropbox refresh URL',
    'POST https://api.dropboxapi.com/oauth2/token?grant_type=refresh_token&refresh_token=R&client_id=C&client_secret=S failed',
    `POST https://api.dropboxapi.com/oauth2/token?grant_type=refresh_token&refresh_token=${R}&client_id=C&client_secret=${R} failed`,
  ],
  ['password=', 'connect failed: password=hunter2 user=archiver', `connect failed: password=${R} user=archiver`],
  ['client_secret in a form body', 'client_id=abc&client_secret=xyz123', `client_id=abc&client_secret=${R}`],
  ['access_token', 'access_token=sl.B123abc-DEF&expires_in=14400', `access_token=${R}&expires_in=14400`],
  ['refresh_token JSON', '{"refresh_token":"rt-123456","token_type":"bearer"}', `{"refresh_token":"${R}","token_type":"bearer"}`],
  ['client_secret JSON with escapes', '{"client_secret": "a\\"b", "x": 1}', `{"client_secret": "${R}", "x": 1}`],
  ['Bearer header', 'Authorization: Bearer sl.u.AFg3-_x/y+z==', `Authorization: Bearer ${R}`],
  ['Basic header', 'authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l', `authorization: Basic ${R}`],
  ['URL userinfo', 'dsn mysql://archiver:s3cr3t@db.internal:3306/app', `dsn mysql://archiver:${R}@db.internal:3306/app`],
  ['URL userinfo in https', 'GET https://user:p%40ss@example.com/x', `GET https://user:${R}@example.com/x`],
  ['AWS access key id', 'using AKIAIOSFODNN7EXAMPLE for s3', `using ${R} for s3`],
  ['AWS temporary key id', 'key ASIAY34FZKBOKMUTVV7A', `key ${R}`],
  ['mysql -pSECRET', "mariadb -u root -phunter22 -h 127.0.0.1 -P 3306", `mariadb -u root -p${R} -h 127.0.0.1 -P 3306`],
  ['--password=', 'mysqldump --password=hunter22 shop', `mysqldump --password=${R} shop`],
  ['--password VALUE', 'mysqldump --password hunter22 shop', `mysqldump --password ${R} shop`],
  [
    'presigned URL',
    'https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0123abcd&X-Amz-Security-Token=FwoGZX',
    `https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${R}&X-Amz-Signature=${R}&X-Amz-Security-Token=${R}`,
  ],
  ['env-style assignment', 'MYSQL_PWD=hunter22 AWS_SECRET_ACCESS_KEY=wJalrXUtn', `MYSQL_PWD=${R} AWS_SECRET_ACCESS_KEY=${R}`],
  ['aws config file', 'aws_secret_access_key = wJalrXUtnFEMI', `aws_secret_access_key = ${R}`],
  ['quoted value', 'password="two words"', `password=${R}`],
  ['harmless text unchanged', 'uploaded mysql-bin.000002 (1048576 bytes) to s3:backups/prod', 'uploaded mysql-bin.000002 (1048576 bytes) to s3:backups/prod'],
  ['plain URL unchanged', 'POST https://content.dropboxapi.com/2/files/upload 200', 'POST https://content.dropboxapi.com/2/files/upload 200'],
  ['flags unchanged', 'mysql-archiver --log-level debug -P 3306 status', 'mysql-archiver --log-level debug -P 3306 status'],
  ['env reference names unchanged', 'environment variable MYSQL_ARCHIVER_DB_PASSWORD is not set', 'environment variable MYSQL_ARCHIVER_DB_PASSWORD is not set'],
];

describe('redactText', () => {
  it.each(TEXT_CASES)('%s', (_name, input, expected) => {
    expect(redactText(input, [])).toBe(expected);
  });

  it('removes known secret values, also URL-encoded, longest first', () => {
    const registry = new SecretRegistry();
    registry.register('p@ss w0rd!');
    registry.register('tok-1234');
    registry.register('tok-1234-long');
    registry.register('abc'); // too short to scrub without destroying every log line
    const out = redactText('a p@ss w0rd! b p%40ss%20w0rd! c tok-1234-long d tok-1234 e abc', registry.values());
    expect(out).toBe(`a ${R} b ${R} c ${R} d ${R} e abc`);
  });
});

describe('redactValue', () => {
  it('scrubs sensitive keys at any depth and keeps secret references readable', () => {
    const input = {
      source: { host: 'db', user: 'archiver', password: { env: 'DB_PW' } },
      storages: {
        s3: { bucket: 'b', credentials: { accessKeyId: 'AKIDPLAIN', secretAccessKey: 'wJalr', sessionToken: { file: '/run/token' } } },
      },
      request: { headers: { Authorization: 'Bearer abc', 'content-type': 'application/json' } },
      tokens: ['t1', 't2'],
      auth: { refreshToken: 'rt', clientId: 'id' },
      list: [{ password: 'x' }, 'Bearer xyz123'],
      count: 3,
    };
    expect(redactValue(input, [])).toEqual({
      source: { host: 'db', user: 'archiver', password: { env: 'DB_PW' } },
      storages: { s3: { bucket: 'b', credentials: { accessKeyId: R, secretAccessKey: R, sessionToken: { file: '/run/token' } } } },
      request: { headers: { Authorization: R, 'content-type': 'application/json' } },
      tokens: [R, R],
      auth: { refreshToken: R, clientId: R },
      list: [{ password: R }, `Bearer ${R}`],
      count: 3,
    });
  });

  it('turns errors into scrubbed plain objects, causes included, and survives cycles', () => {
    const cause = new Error('login failed for mysql://u:pw1234@h');
    const error = Object.assign(new Error('upload failed: client_secret=S1'), { code: 'E_X', token: 'tkn', cause });
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic['self'] = cyclic;
    const out = redactValue({ error, cyclic }, []) as { error: Record<string, any>; cyclic: Record<string, unknown> };
    expect(out.error['message']).toBe(`upload failed: client_secret=${R}`);
    expect(out.error['code']).toBe('E_X');
    expect(out.error['token']).toBe(R);
    expect(out.error['stack']).toContain(`client_secret=${R}`);
    expect(out.error['cause'].message).toBe(`login failed for mysql://u:${R}@h`);
    expect(out.cyclic['self']).toBe('[Circular]');
  });
});

describe('redactFormat and the logger', () => {
  it('keeps winston Symbol keys untouched', () => {
    const level = Symbol.for('level');
    const splat = Symbol.for('splat');
    const info = { level: 'info', message: 'password=x1234', [level]: 'info', [splat]: ['raw'] };
    const out = redactFormat({ secrets: () => [] }).transform(info) as typeof info;
    expect(out.message).toBe(`password=${R}`);
    expect(out[level]).toBe('info');
    expect(out[splat]).toEqual(['raw']);
  });

  function capture(format: 'json' | 'text', secrets: string[], tty = false) {
    const stream = Object.assign(new PassThrough(), { isTTY: tty });
    const chunks: string[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c.toString()));
    const logger = createLogger({ level: 'debug', format, stream, secrets: () => secrets });
    return { logger, text: () => chunks.join('') };
  }

  it('writes JSON lines with every secret scrubbed, error messages and stacks included', () => {
    const secret = 'Zx9-registered-secret';
    const { logger, text } = capture('json', [secret]);
    logger.info('connecting to %s', `mysql://archiver:${secret}@db:3306`);
    logger.warn('token refresh', { url: 'https://api.dropboxapi.com/oauth2/token?refresh_token=R1&client_secret=S1', password: 'pw' });
    logger.error('upload failed', { error: new Error(`denied for ${secret}`) });
    logger.error(new Error(`bad key AKIAIOSFODNN7EXAMPLE and ${secret}`));
    const lines = text().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines).toHaveLength(4);
    const all = text();
    for (const leaked of [secret, 'R1', 'S1', '"pw"', 'AKIAIOSFODNN7EXAMPLE']) expect(all).not.toContain(leaked);
    expect(lines[0]).toMatchObject({ level: 'info', message: `connecting to mysql://archiver:${R}@db:3306` });
    expect(lines[1]).toMatchObject({ level: 'warn', password: R });
    expect(lines[2]!['error'].message).toBe(`denied for ${R}`);
    expect(lines[3]).toMatchObject({ level: 'error', message: `bad key ${R} and ${R}` });
    expect(lines[3]!['stack']).toContain(`bad key ${R}`);
    expect(typeof lines[0]!['timestamp']).toBe('string');
  });

  it('writes one readable line per event on a terminal', () => {
    const { logger, text } = capture('text', [], true);
    logger.info('sealed segment', { file: 'mysql-bin.000002', bytes: 1048576, note: 'two words', secret: 'x' });
    expect(text()).toMatch(
      new RegExp(`^\\d{4}-\\d{2}-\\d{2}T[\\d:.]+Z info  sealed segment file=mysql-bin.000002 bytes=1048576 note="two words" secret=\\${R.slice(0, -1)}\\]\\n$`),
    );
  });

  it('auto picks JSON for pipes and text for terminals', () => {
    for (const tty of [false, true]) {
      const stream = Object.assign(new PassThrough(), { isTTY: tty });
      const chunks: string[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c.toString()));
      createLogger({ format: 'auto', stream, secrets: () => [] }).info('hello');
      expect(chunks.join('').startsWith('{'), `tty=${tty}`).toBe(!tty);
    }
  });
});
