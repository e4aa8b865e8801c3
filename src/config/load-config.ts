import { readFile as fsReadFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import { configProblemError, didYouMean, pickIssue, problemFromIssue, type ConfigProblem } from './issues.js';
import { configSchema, type Config } from './schema.js';
import { formatSize } from './sizes.js';

export const DEFAULT_CONFIG_PATH = '/etc/mysql-archiver/config.yaml';

export interface LoadConfigOptions {
  readFile?: (path: string) => Promise<string>;
  /**
   * Accepted so callers can pass one environment everywhere; unused here on purpose: secrets are
   * resolved lazily (secrets.ts), because e.g. retention credentials exist only in the retention
   * job's environment.
   */
  env?: NodeJS.ProcessEnv;
}

/** Reads and validates the configuration file. Every problem is a one-line ConfigError (exit 2). */
export async function loadConfig(path: string, options: LoadConfigOptions = {}): Promise<Config> {
  const file = resolve(path);
  const readFile = options.readFile ?? ((p: string) => fsReadFile(p, 'utf8'));
  let text: string;
  try {
    text = await readFile(file);
  } catch (error) {
    throw readError(file, error);
  }
  return parseConfig(text, file);
}

function readError(file: string, error: unknown): ConfigError {
  const code = (error as { code?: unknown }).code;
  const seeExample = 'examples/config.yaml is a commented starting point.';
  if (code === 'ENOENT') {
    return new ConfigError(`config ${file}: file not found`, {
      hint: `Pass --config PATH to point at your configuration file (the default is ${DEFAULT_CONFIG_PATH}); ${seeExample}`,
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new ConfigError(`config ${file}: permission denied`, {
      hint: 'Run as the service user that owns the configuration, or make the file readable by it.',
    });
  }
  if (code === 'EISDIR') {
    return new ConfigError(`config ${file}: is a directory, not a file`, {
      hint: `Pass --config with the path of the YAML file itself; ${seeExample}`,
    });
  }
  return new ConfigError(`config ${file}: cannot read: ${(error as Error).message}`);
}

/** Parses YAML text that was read from `file` (used in messages and to resolve relative paths). */
export function parseConfig(text: string, file: string): Config {
  const raw = parseYaml(text, file, 'configuration');
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = pickIssue(parsed.error.issues);
    throw issue ? configProblemError(file, problemFromIssue(issue, raw)) : new ConfigError(`config ${file}: invalid`);
  }
  const data = parsed.data;
  const problem = crossCheck(data);
  if (problem) throw configProblemError(file, problem);
  const configDir = dirname(file);
  return {
    ...data,
    configFile: file,
    schedulesDir: resolve(configDir, data.schedulesDir ?? 'schedules'),
  };
}

/** YAML text → plain data; syntax errors name the line. Shared with the schedule loader. */
export function parseYaml(text: string, file: string, what: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const error = doc.errors[0];
  if (error) {
    const pos = lineCounter.linePos(error.pos[0]);
    const message = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`config ${file}: line ${pos.line}, column ${pos.col}: invalid YAML: ${lowerFirst(message)}`, {
      hint: `Fix the YAML syntax at line ${pos.line} of ${file} (indentation, a missing ":" or an unclosed quote are the usual causes).`,
    });
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (raw === null || raw === undefined) {
    throw new ConfigError(`config ${file}: the file is empty`, {
      hint: `Write the ${what} into ${file}; examples/config.yaml is a commented starting point.`,
    });
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`config ${file}: expected a mapping of keys at the top level`, {
      hint: `The ${what} is a YAML mapping (key: value lines); see examples/config.yaml.`,
    });
  }
  return raw;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

const STORAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

type ParsedConfig = Omit<Config, 'configFile' | 'schedulesDir'> & { schedulesDir?: string | undefined };

/** Rules that span several keys; the first broken one is reported. */
function crossCheck(config: ParsedConfig): ConfigProblem | undefined {
  const names = Object.keys(config.storages);
  if (names.length === 0) {
    return { path: ['storages'], message: 'no storage defined; add at least one (e.g. local-disk: { type: local, path: /var/backups/mysql-archiver })' };
  }
  for (const name of names) {
    if (!STORAGE_NAME.test(name)) {
      return { path: ['storages', name], message: 'invalid storage name; use letters, digits, ".", "_" and "-" (at most 63)' };
    }
  }
  const target = config.archiver.storage;
  if (!(target in config.storages)) {
    const suggestion = didYouMean(target, names);
    return {
      path: ['archiver', 'storage'],
      message: `unknown storage ${JSON.stringify(target)}; ${suggestion ? `did you mean "${suggestion}"?` : `use one of ${names.join(', ')}`}`,
      hint: 'The archiver uploads binlog segments to the storage that archiver.storage names, one of the entries under `storages`.',
    };
  }
  const { spoolMaxBytes, segment } = config.archiver;
  if (spoolMaxBytes < 2 * segment.maxBytes) {
    return {
      path: ['archiver', 'spoolMaxBytes'],
      message: `must be at least twice archiver.segment.maxBytes (${formatSize(segment.maxBytes)}); raise it or lower segment.maxBytes`,
      hint: 'The spool must hold a segment being written and one waiting for upload at the same time.',
    };
  }
  const dirs: [string, string][] = [
    ['archiver.spoolDir', config.archiver.spoolDir],
    ['archiver.stateDir', config.archiver.stateDir],
  ];
  if (overlaps(config.archiver.spoolDir, config.archiver.stateDir)) {
    return { path: ['archiver', 'stateDir'], message: 'must not be archiver.spoolDir or inside it (or contain it); use separate directories' };
  }
  for (const [name, storage] of Object.entries(config.storages)) {
    if (storage.type !== 'local') continue;
    for (const [key, dir] of dirs) {
      if (overlaps(storage.path, dir)) {
        return { path: ['storages', name, 'path'], message: `must not overlap ${key} (${dir}); use a separate directory` };
      }
    }
  }
  if (!isTimeZone(config.restore.timezone)) {
    const suggestion = didYouMean(config.restore.timezone, Intl.supportedValuesOf('timeZone'));
    return {
      path: ['restore', 'timezone'],
      message: `unknown time zone ${JSON.stringify(config.restore.timezone)}; ${suggestion ? `did you mean "${suggestion}"?` : 'use an IANA name such as UTC or Europe/Berlin'}`,
    };
  }
  if (config.retention?.credentials && !Object.values(config.storages).some((s) => s.type === 's3')) {
    return { path: ['retention', 'credentials'], message: 'only used for S3 storages and none is configured; remove it' };
  }
  return undefined;
}

export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function overlaps(a: string, b: string): boolean {
  const inside = (child: string, parent: string) => {
    const rel = relative(parent, child);
    return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
  };
  return inside(a, b) || inside(b, a);
}
