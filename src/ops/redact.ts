import winston from 'winston';

/**
 * Scrubs secrets from anything on its way to a log line, an error message or the terminal.
 * Three nets, because any single one leaks: values under sensitive keys (at any depth), every
 * secret value resolved at runtime (registered by the config layer), and textual patterns
 * (`password=…`, `Bearer …`, `user:pass@host`, AWS key ids, presigned URL parts).
 */

export const REDACTED = '[REDACTED]';

/** Shorter values would blank out ordinary words all over the logs; such a secret is hopeless anyway. */
const MIN_SECRET_LENGTH = 4;

const SENSITIVE_KEY =
  /pass(word|wd|phrase)?$|^pwd$|secret|token|authorization|^auth$|cookie|api[-_]?key|private[-_]?key|credential|signature|^sig$/i;

/** Process-wide set of secret values resolved at runtime. */
export class SecretRegistry {
  readonly #values = new Set<string>();

  register(value: string): void {
    if (value.length < MIN_SECRET_LENGTH) return;
    this.#values.add(value);
    // the same secret often travels URL-encoded (query strings, form bodies)
    const encoded = encodeURIComponent(value);
    if (encoded !== value) this.#values.add(encoded);
  }

  values(): string[] {
    return [...this.#values];
  }

  clear(): void {
    this.#values.clear();
  }
}

/** The registry the config layer feeds and the default logger reads. */
export const defaultSecretRegistry = new SecretRegistry();

export function registerSecret(value: string): void {
  defaultSecretRegistry.register(value);
}

export function knownSecrets(): string[] {
  return defaultSecretRegistry.values();
}

export function isSensitiveKey(key: string): boolean {
  return SENSITIVE_KEY.test(key);
}

const KEY_NAMES =
  'password|passwd|pwd|pass|secret|client_secret|clientSecret|refresh_token|refreshToken|access_token|accessToken|' +
  'id_token|token|api_key|apikey|secretAccessKey|secret_access_key|aws_secret_access_key|sessionToken|session_token|' +
  'aws_session_token|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|sig|code_verifier';

const TEXT_PATTERNS: readonly [RegExp, string][] = [
  // JSON-ish: "password": "value"
  [new RegExp(`("(?:${KEY_NAMES})"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'gi'), `$1"${REDACTED}"`],
  // key=value in query strings, command lines, env dumps and DSNs (--password=x, client_secret=x, MYSQL_PWD=x)
  [
    new RegExp(`((?:^|[^A-Za-z0-9])(?:[A-Za-z0-9]+_)*(?:${KEY_NAMES})\\s*=\\s*)("[^"]*"|'[^']*'|[^\\s&,;"'<>]+)`, 'gi'),
    `$1${REDACTED}`,
  ],
  // --password value (separate argument)
  [/(--(?:password|pass|secret|token)\s+)(?!-)\S+/gi, `$1${REDACTED}`],
  // mysql -pSECRET (attached value; a bare -p prompts and carries nothing)
  [/((?:^|\s)-p)(?!\s)[^\s'"]+/g, `$1${REDACTED}`],
  [/(\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9\-._~+/]+=*/g, `$1${REDACTED}`],
  // scheme://user:password@host
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, `$1${REDACTED}@`],
  // AWS access key ids (long-term and temporary)
  [/\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b/g, REDACTED],
];

/** Removes known secret values and secret-looking patterns from free text. */
export function redactText(text: string, secrets: readonly string[] = knownSecrets()): string {
  let out = text;
  if (secrets.length > 0) {
    // longest first, so a secret that contains another is not half-replaced
    for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
      if (secret.length >= MIN_SECRET_LENGTH && out.includes(secret)) out = out.split(secret).join(REDACTED);
    }
  }
  for (const [pattern, replacement] of TEXT_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** A `{ env }` / `{ file }` reference names where a secret lives, not the secret: keep it readable. */
function isSecretReference(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file') && typeof Object.values(value)[0] === 'string';
}

/** Deep copy of `value` with sensitive keys and secrets scrubbed. Errors become plain objects. */
export function redactValue(value: unknown, secrets: readonly string[] = knownSecrets(), seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactText(value, secrets);
  if (value === null || typeof value !== 'object') return value;
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (value instanceof Date) return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Error) return redactError(value, secrets, seen);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, secrets, seen));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = redactEntry(key, item, secrets, seen);
  return out;
}

function redactEntry(key: string, item: unknown, secrets: readonly string[], seen: WeakSet<object>): unknown {
  if (item === undefined || item === null || item === '') return item;
  if (!isSensitiveKey(key) || isSecretReference(item)) return redactValue(item, secrets, seen);
  return typeof item === 'object' && !Buffer.isBuffer(item) ? redactAll(item, seen) : REDACTED;
}

/** Under a sensitive key every leaf is a secret, whatever its own key says (e.g. `credentials.accessKeyId`). */
function redactAll(value: object, seen: WeakSet<object>): unknown {
  if (isSecretReference(value)) return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [key, item] of entries) {
    out[key] = item !== null && typeof item === 'object' ? redactAll(item, seen) : item === undefined ? item : REDACTED;
  }
  return Array.isArray(value) ? Object.values(out) : out;
}

function redactError(error: Error, secrets: readonly string[], seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = { name: error.name, message: redactText(error.message, secrets) };
  for (const [key, item] of Object.entries(error)) {
    if (key !== 'cause' && key !== 'stack' && key !== 'message') out[key] = redactEntry(key, item, secrets, seen);
  }
  if (error.stack) out['stack'] = redactText(error.stack, secrets);
  if (error.cause !== undefined) out['cause'] = redactValue(error.cause, secrets, seen);
  return out;
}

export interface RedactFormatOptions {
  /** read at every log call: the registry grows as secrets are resolved */
  secrets?: () => readonly string[];
}

/**
 * Winston format: place it after `errors()`/`splat()` and before `json()`/`printf()`. It rewrites
 * the string-keyed fields in place, leaving winston's Symbol keys (level, message, splat) alone.
 */
export const redactFormat = winston.format((info, opts?: unknown) => {
  const secrets = (opts as RedactFormatOptions | undefined)?.secrets?.() ?? knownSecrets();
  const seen = new WeakSet<object>();
  const record = info as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key === 'level') continue;
    record[key] = key === 'message' || key === 'stack' ? redactValue(record[key], secrets, seen) : redactEntry(key, record[key], secrets, seen);
  }
  return info;
});
