import { readFile, stat } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import { defaultSecretRegistry, type SecretRegistry } from '../ops/redact.js';
import type { Config, SecretRef } from './schema.js';

/** The file operations secret resolution needs; injectable so tests drive permissions and faults. */
export interface SecretFs {
  readFile(path: string): Promise<string>;
  stat(path: string): Promise<{ mode: number }>;
}

export const nodeSecretFs: SecretFs = {
  readFile: (path) => readFile(path, 'utf8'),
  stat: (path) => stat(path),
};

export interface ResolveSecretOptions {
  /** every resolved value is registered here so logs and errors can scrub it */
  registry?: SecretRegistry;
  /** told about a secret file other users can read */
  warn?: (message: string) => void;
  /** names the setting in messages, e.g. `source.password` */
  label?: string;
}

export function describeSecretRef(ref: SecretRef): string {
  return 'env' in ref ? `environment variable ${ref.env}` : `secret file ${ref.file}`;
}

/**
 * Reads a secret when it is needed. Errors name the variable or file, never the value. A file's
 * trailing newline is dropped (editors add one); other whitespace is kept as part of the secret.
 */
export async function resolveSecret(
  ref: SecretRef,
  env: NodeJS.ProcessEnv,
  fs: SecretFs = nodeSecretFs,
  options: ResolveSecretOptions = {},
): Promise<string> {
  const registry = options.registry ?? defaultSecretRegistry;
  const label = options.label ? `${options.label}: ` : '';
  let value: string;
  if ('env' in ref) {
    const found = env[ref.env];
    if (found === undefined || found === '') {
      throw new ConfigError(`${label}environment variable ${ref.env} is not set`, {
        hint: `Set ${ref.env} in the service's environment (systemd: Environment= or EnvironmentFile= with mode 0600), or point the setting at a file with { file: PATH }.`,
      });
    }
    value = found;
  } else {
    value = await readSecretFile(ref.file, fs, label, options.warn);
  }
  registry.register(value);
  return value;
}

async function readSecretFile(file: string, fs: SecretFs, label: string, warn?: (message: string) => void): Promise<string> {
  let content: string;
  try {
    const { mode } = await fs.stat(file);
    if ((mode & 0o004) !== 0) {
      warn?.(`${label}secret file ${file} is readable by every user (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 ${file}`);
    }
    content = await fs.readFile(file);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const problem = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' || code === 'EPERM' ? 'is not readable by this user' : `cannot be read (${String(code ?? 'error')})`;
    throw new ConfigError(`${label}secret file ${file} ${problem}`, {
      hint: `Create ${file} with only the secret in it, owned by the service user with mode 0600.`,
    });
  }
  const value = content.replace(/\r?\n$/, '');
  if (value === '') {
    throw new ConfigError(`${label}secret file ${file} is empty`, {
      hint: `Write the secret into ${file} (one line, mode 0600).`,
    });
  }
  return value;
}

/** Every secret reference in the configuration, with its key path: `check` resolves them all up front. */
export function collectSecretRefs(config: Config): { path: string; ref: SecretRef }[] {
  const out: { path: string; ref: SecretRef }[] = [];
  const walk = (value: unknown, path: string) => {
    if (value === null || typeof value !== 'object') return;
    if (isSecretRef(value)) {
      out.push({ path, ref: value });
      return;
    }
    for (const [key, item] of Object.entries(value)) walk(item, path ? `${path}.${key}` : key);
  };
  walk({ source: config.source, storages: config.storages, retention: config.retention }, '');
  return out;
}

export function isSecretRef(value: unknown): value is SecretRef {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  const v = Object.values(value)[0];
  return keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file') && typeof v === 'string';
}
