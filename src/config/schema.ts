import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { unknownKeysMessage } from './issues.js';
import { parseSize, SizeParseError } from './sizes.js';

/**
 * The configuration file's schema. Objects are strict (an unknown key is an error, with a
 * suggestion), sizes are parsed to bytes, secrets are references resolved later by secrets.ts.
 * Storage drivers take the exported types, so field names here are part of their contract.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Where a secret lives: an environment variable or a file. Never the secret itself. */
export type SecretRef = { readonly env: string } | { readonly file: string };

type RefineCtx = { addIssue(issue: { code: 'custom'; message: string; params?: Record<string, unknown>; path?: PropertyKey[] }): void };

function fail(ctx: RefineCtx, message: string, hint?: string, path?: PropertyKey[]): typeof z.NEVER {
  ctx.addIssue({ code: 'custom', message, ...(hint ? { params: { hint } } : {}), ...(path ? { path } : {}) });
  return z.NEVER;
}

function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, known) : undefined),
  });
}

const SECRET_HINT =
  'Secrets never go in the config file or on the command line: write { env: VARIABLE_NAME } and set the variable in the service environment, or { file: /etc/mysql-archiver/NAME } with a file only the service user can read.';

/** `{ env: NAME }` or `{ file: /abs/path }`; a plain string is refused with the fix. */
function secretRef(what = 'secrets') {
  return z.unknown().transform((value, ctx): SecretRef => {
    if (typeof value === 'string' || typeof value === 'number') {
      return fail(ctx, `plain-text ${what} are not allowed; use { env: NAME } or { file: PATH }`, SECRET_HINT);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return fail(ctx, `expected { env: NAME } or { file: PATH }`, SECRET_HINT);
    }
    const keys = Object.keys(value);
    const record = value as Record<string, unknown>;
    if (keys.length !== 1 || (keys[0] !== 'env' && keys[0] !== 'file')) {
      return fail(ctx, `expected exactly one of { env: NAME } or { file: PATH } (got keys: ${keys.join(', ') || 'none'})`, SECRET_HINT);
    }
    if (keys[0] === 'env') {
      const name = record['env'];
      if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        return fail(ctx, `must be an environment variable name such as MYSQL_ARCHIVER_DB_PASSWORD`, undefined, ['env']);
      }
      return { env: name };
    }
    const file = record['file'];
    if (typeof file !== 'string' || !isAbsolute(file)) {
      return fail(ctx, `must be an absolute path such as /etc/mysql-archiver/db-password`, undefined, ['file']);
    }
    return { file };
  });
}

function size(options: { min: number; max: number; multipleOf?: number }) {
  return z.unknown().transform((value, ctx): number => {
    if (typeof value !== 'string' && typeof value !== 'number') {
      return fail(ctx, `expected a size such as 256MiB or 10GiB`);
    }
    let bytes: number;
    try {
      bytes = parseSize(value);
    } catch (error) {
      if (error instanceof SizeParseError) return fail(ctx, error.message);
      throw error;
    }
    if (bytes < options.min) return fail(ctx, `must be at least ${formatBytes(options.min)} (got ${formatBytes(bytes)})`);
    if (bytes > options.max) return fail(ctx, `must be at most ${formatBytes(options.max)} (got ${formatBytes(bytes)})`);
    if (options.multipleOf && bytes % options.multipleOf !== 0) {
      return fail(ctx, `must be a multiple of ${formatBytes(options.multipleOf)} (got ${formatBytes(bytes)})`);
    }
    return bytes;
  });
}

function formatBytes(bytes: number): string {
  for (const [unit, factor] of [['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes} bytes`;
}

const absolutePath = z
  .string()
  .min(1)
  .refine((p) => isAbsolute(p), { message: 'must be an absolute path (starting with /)' });

const httpUrl = z.string().refine((u) => /^https?:\/\/[^\s/]+/.test(u) && URL.canParse(u), {
  message: 'must be an http:// or https:// URL such as http://127.0.0.1:9000',
});

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const s3CredentialsSchema = strict({
  accessKeyId: secretRef('access key ids'),
  secretAccessKey: secretRef('secret access keys'),
  sessionToken: secretRef('session tokens').optional(),
});

/** Bucket naming rules from the S3 documentation (lowercase, 3-63, no IP form, no "..") */
const bucketName = z.string().superRefine((name, ctx) => {
  if (
    !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) ||
    name.includes('..') ||
    /^\d+\.\d+\.\d+\.\d+$/.test(name) ||
    name.startsWith('xn--')
  ) {
    fail(
      ctx,
      `invalid bucket name ${JSON.stringify(name)}; use 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit`,
    );
  }
});

/** Normalised to '' or 'some/prefix/' so drivers can concatenate keys directly. */
const s3Prefix = z.string().transform((prefix, ctx) => {
  if (prefix.startsWith('/')) return fail(ctx, `must not start with "/"; write ${JSON.stringify(prefix.replace(/^\/+/, ''))}`);
  if (prefix === '') return '';
  const trimmed = prefix.replace(/\/+$/, '');
  if (trimmed.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    return fail(ctx, `must not contain empty, "." or ".." segments`);
  }
  return `${trimmed}/`;
});

export const S3_STORAGE_CLASSES = [
  'STANDARD',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER_IR',
  'GLACIER',
  'DEEP_ARCHIVE',
  'REDUCED_REDUNDANCY',
] as const;

export const localStorageSchema = strict({
  type: z.literal('local'),
  /** absolute directory; created on first write */
  path: absolutePath,
});

export const s3StorageSchema = strict({
  type: z.literal('s3'),
  bucket: bucketName,
  /** '' or ends with '/' (normalised); never starts with '/' */
  prefix: s3Prefix.default(''),
  region: z.string().min(1),
  endpoint: httpUrl.optional(),
  forcePathStyle: z.boolean().default(false),
  /** absent: the AWS default provider chain (env, profile, instance role) */
  credentials: s3CredentialsSchema.optional(),
  storageClass: z.enum(S3_STORAGE_CLASSES).optional(),
  objectLock: strict({ mode: z.enum(['GOVERNANCE', 'COMPLIANCE']), days: int(1, 36500) }).optional(),
  /** bytes */
  multipartThreshold: size({ min: 5 * MiB, max: 5 * GiB }).optional(),
  /** bytes */
  partSize: size({ min: 5 * MiB, max: 5 * GiB }).optional(),
  verify: z.enum(['etag', 'readback']).optional(),
});

const DROPBOX_AUTH_HINT =
  'Give either { accessToken: { env: NAME } } for a short-lived token, or { refreshToken, clientId, clientSecret } for a long-lived app authorisation.';

const dropboxAuthSchema = strict({
  accessToken: secretRef('tokens').optional(),
  refreshToken: secretRef('tokens').optional(),
  clientId: z.union([z.string().min(1), secretRef()]).optional(),
  clientSecret: secretRef('client secrets').optional(),
}).transform((auth, ctx): DropboxAuthConfig => {
  if (auth.accessToken && auth.refreshToken) {
    return fail(ctx, 'give accessToken or refreshToken, not both', DROPBOX_AUTH_HINT);
  }
  if (auth.accessToken) {
    if (auth.clientSecret) return fail(ctx, 'clientSecret is only used with refreshToken; remove it', DROPBOX_AUTH_HINT, ['clientSecret']);
    return { accessToken: auth.accessToken };
  }
  if (!auth.refreshToken) return fail(ctx, 'incomplete: add accessToken, or refreshToken with clientId and clientSecret', DROPBOX_AUTH_HINT);
  if (auth.clientId === undefined) return fail(ctx, 'refreshToken needs clientId; add clientId', DROPBOX_AUTH_HINT, ['clientId']);
  if (!auth.clientSecret) return fail(ctx, 'refreshToken needs clientSecret; add clientSecret: { env: NAME }', DROPBOX_AUTH_HINT, ['clientSecret']);
  return { refreshToken: auth.refreshToken, clientId: auth.clientId, clientSecret: auth.clientSecret };
});

export type DropboxAuthConfig =
  | { readonly accessToken: SecretRef }
  | { readonly refreshToken: SecretRef; readonly clientId: string | SecretRef; readonly clientSecret: SecretRef };

/** '/mysql-archiver/' → '/mysql-archiver'; '/' → '' (the app folder's root, as the Dropbox API spells it) */
const dropboxRoot = z.string().transform((root, ctx) => {
  if (!root.startsWith('/')) return fail(ctx, `must start with "/"; write ${JSON.stringify(`/${root}`)}`);
  const trimmed = root.replace(/\/+$/, '');
  if (trimmed.split('/').slice(1).some((part) => part === '' || part === '.' || part === '..')) {
    return fail(ctx, `must not contain empty, "." or ".." segments`);
  }
  return trimmed;
});

export const dropboxStorageSchema = strict({
  type: z.literal('dropbox'),
  root: dropboxRoot,
  auth: dropboxAuthSchema,
  /** tests only: a local fake such as http://127.0.0.1:PORT */
  apiBaseUrl: httpUrl.optional(),
  /** upload session chunk in bytes: a multiple of 4MiB, at most 148MiB */
  chunkSize: size({ min: 4 * MiB, max: 148 * MiB, multipleOf: 4 * MiB }).optional(),
});

const STORAGE_TYPES = ['local', 's3', 'dropbox'];

export const storageSchema = z.discriminatedUnion('type', [localStorageSchema, s3StorageSchema, dropboxStorageSchema], {
  error: (issue) => {
    if (issue.code !== 'invalid_union') return undefined;
    const type = issue.input !== null && typeof issue.input === 'object' ? (issue.input as { type?: unknown }).type : undefined;
    return type === undefined
      ? `missing type; add type: with one of ${STORAGE_TYPES.join(', ')}`
      : `unknown storage type ${JSON.stringify(type)}; use one of ${STORAGE_TYPES.join(', ')}`;
  },
});

export const LOG_LEVELS = ['error', 'warn', 'info', 'verbose', 'debug'] as const;

/** A database login: the source's, and the restore target's. */
const loginShape = {
  host: z.string().min(1).default('127.0.0.1'),
  port: int(1, 65535).default(3306),
  user: z.string().min(1),
  /** absent: no password (e.g. unix_socket authentication) */
  password: secretRef('passwords').optional(),
  /** when set, used instead of host:port */
  socketPath: absolutePath.optional(),
  tls: strict({
    caFile: absolutePath.optional(),
    rejectUnauthorized: z.boolean().default(true),
    serverName: z.string().min(1).optional(),
  }).optional(),
};

export const sourceSchema = strict({
  ...loginShape,
  /** replication client id: unique among the source's replicas */
  serverId: int(1, 4294967295),
});

export const archiverSchema = strict({
  /** name of the storage (key of `storages`) that receives binlog segments */
  storage: z.string().min(1),
  spoolDir: absolutePath.default('/var/lib/mysql-archiver/spool'),
  /** bytes */
  spoolMaxBytes: size({ min: 8 * KiB, max: Number.MAX_SAFE_INTEGER }).default(10 * GiB),
  stateDir: absolutePath.default('/var/lib/mysql-archiver/state'),
  segment: strict({
    maxSeconds: int(1, 86400).default(300),
    /** bytes */
    maxBytes: size({ min: 4 * KiB, max: 4 * GiB }).default(256 * MiB),
  }).prefault({}),
  uploadConcurrency: int(1, 64).default(2),
});

/** Where restored tables go. */
const loginSchema = strict(loginShape);

/** RDS identifiers: a letter, then letters, digits and single hyphens, at most 63. */
const rdsIdentifier = z.string().regex(/^[A-Za-z](?:-?[A-Za-z0-9])*$/, {
  message: 'must be an RDS DBInstanceIdentifier: a letter, then letters, digits and single hyphens (no trailing hyphen)',
}).max(63);

export const rdsSchema = strict({
  region: z.string().min(1),
  /** DBInstanceIdentifier of the instance to restore from */
  sourceInstance: rdsIdentifier,
  /** default: the source's class */
  instanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, { message: 'must be an instance class such as db.t3.medium' }).optional(),
  subnetGroup: z.string().min(1).optional(),
  securityGroups: z.array(z.string().regex(/^sg-[0-9a-f]+$/, { message: 'must be a VPC security group id such as sg-0123456789abcdef0' })).min(1).optional(),
  parameterGroup: z.string().min(1).optional(),
  /** PEM bundle (the RDS global bundle): the temporary instance is read over verified TLS */
  caBundle: absolutePath.optional(),
  publiclyAccessible: z.boolean().default(false),
  tags: z.record(z.string().min(1).max(128), z.string().max(256)).optional(),
  /** tests and VPC interface endpoints only */
  endpoint: httpUrl.optional(),
  /** login on the temporary instance; default: source.user and source.password (a restore keeps the users) */
  login: strict({ user: z.string().min(1), password: secretRef('passwords').optional() }).optional(),
  /** how often to poll the instance's state (the AWS waiters poll every 30 s) */
  pollSeconds: z.number().positive().max(600).default(30),
});

export const restoreSchema = strict({
  /** where restored tables go (a user that may CREATE and INSERT); default: the source login */
  target: loginSchema.optional(),
  /** IANA zone for times written without one and for the local time the plan echoes; default UTC */
  timezone: z.string().min(1).default('UTC'),
});

/** How full dumps are taken (every tier). */
export const dumpSchema = strict({
  /** snapshot: backup-stage (MariaDB), ftwrl, single (lock-free, one connection), rds (no FTWRL) */
  mode: z.enum(['backup-stage', 'ftwrl', 'single', 'rds']).default('backup-stage'),
  /** tables dumped at once, each on its own connection of the snapshot */
  concurrency: int(1, 64).default(2),
  /** auto: zstd when the zstd program is installed, else gzip (see src/dump/codec.ts) */
  compression: z.enum(['auto', 'zstd', 'gzip']).default('auto'),
  /** uncompressed SQL per data file */
  chunkSize: size({ min: 64 * KiB, max: 4 * GiB }).default(64 * MiB),
});

export const configSchema = strict({
  source: sourceSchema,
  archiver: archiverSchema,
  storages: z.record(z.string(), storageSchema),
  /** optional: separate credentials for deletions, so the archiver's own cannot delete */
  retention: strict({ credentials: s3CredentialsSchema.optional() }).optional(),
  /** Amazon RDS point-in-time restores (`restore table --from rds`, `rds cleanup`) */
  rds: rdsSchema.optional(),
  restore: restoreSchema.prefault({}),
  dump: dumpSchema.prefault({}),
  /** default: the `schedules/` directory next to the config file; relative paths are from there too */
  schedulesDir: z.string().min(1).optional(),
  log: strict({
    level: z.enum(LOG_LEVELS).default('info'),
    format: z.enum(['auto', 'json', 'text']).default('auto'),
  }).prefault({}),
});

export type S3Credentials = z.output<typeof s3CredentialsSchema>;
export type LocalStorageConfig = z.output<typeof localStorageSchema>;
export type S3StorageConfig = z.output<typeof s3StorageSchema>;
export type DropboxStorageConfig = z.output<typeof dropboxStorageSchema>;
export type StorageConfig = LocalStorageConfig | S3StorageConfig | DropboxStorageConfig;
export type SourceConfig = z.output<typeof sourceSchema>;
export type ArchiverConfig = z.output<typeof archiverSchema>;
export type RdsConfig = z.output<typeof rdsSchema>;
export type RestoreConfig = z.output<typeof restoreSchema>;
export type DumpConfig = z.output<typeof dumpSchema>;
export type LoginConfig = z.output<typeof loginSchema>;
export type LogConfig = z.output<typeof configSchema>['log'];

/** A validated configuration, as `loadConfig` returns it. */
export type Config = Omit<z.output<typeof configSchema>, 'schedulesDir'> & {
  /** absolute path of the file this was read from */
  readonly configFile: string;
  /** absolute; resolved against the config file's directory */
  readonly schedulesDir: string;
};
