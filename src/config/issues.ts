import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { isSensitiveKey } from '../ops/redact.js';

/** One configuration problem, located by key path, with the fix in the message itself. */
export interface ConfigProblem {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly hint?: string;
}

/** `source.tls.caFile`, `storages["s3.main"].bucket`, `targets[1]` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out || '(top level)';
}

export function configProblemError(file: string, problem: ConfigProblem, fallbackHint?: string): ConfigError {
  const where = formatPath(problem.path);
  return new ConfigError(`config ${file}: ${where}: ${problem.message}`, {
    hint:
      problem.hint ??
      fallbackHint ??
      `Fix ${where} in ${file} and run \`mysql-archiver check\` again; examples/config.yaml documents every key.`,
  });
}

/** The closest candidate within a small edit distance, for "did you mean" suggestions. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = word.toLowerCase();
  for (const candidate of candidates) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/** Message for keys a strict object does not know, with a suggestion when one is close. */
export function unknownKeysMessage(keys: readonly string[], known: readonly string[]): string {
  if (keys.length === 1) {
    const suggestion = didYouMean(keys[0] as string, known);
    return suggestion ? `unknown key; did you mean "${suggestion}"?` : `unknown key; remove it (allowed here: ${known.join(', ')})`;
  }
  return `unknown keys ${keys.map((k) => JSON.stringify(k)).join(', ')}; remove them (allowed here: ${known.join(', ')})`;
}

/** Misspelled keys explain most other errors (a required key "missing"), so report them first. */
export function pickIssue(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue | undefined {
  return issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0];
}

export function problemFromIssue(issue: z.core.$ZodIssue, root: unknown): ConfigProblem {
  const path = issue.path;
  const raw = valueAt(root, path);
  // never echo what sits under a key like `password` or `token`, even when it is the wrong type
  const value = path.some((p) => typeof p === 'string' && isSensitiveKey(p)) && typeof raw === 'string' ? '(hidden)' : raw;
  const hint = issue.code === 'custom' ? (issue.params?.['hint'] as string | undefined) : undefined;
  switch (issue.code) {
    case 'unrecognized_keys':
      return { path: issue.keys.length === 1 ? [...path, issue.keys[0] as string] : path, message: issue.message };
    case 'invalid_type':
      if (value === undefined) return { path, message: `missing required key; add it` };
      if (issue.message.startsWith('Invalid input')) {
        return { path, message: `expected ${article(issue.expected)}, got ${describe(value)}; write ${article(issue.expected)} here` };
      }
      return { path, message: issue.message };
    case 'invalid_value':
      return issue.message.startsWith('Invalid')
        ? { path, message: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')} (got ${describe(value)})` }
        : { path, message: issue.message };
    case 'too_small':
    case 'too_big':
      return { path, message: issue.message.startsWith('Too') ? boundMessage(issue, value) : issue.message };
    default:
      return { path, message: issue.message, ...(hint === undefined ? {} : { hint }) };
  }
}

function boundMessage(issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig, value: unknown): string {
  const small = issue.code === 'too_small';
  const bound = small ? (issue as z.core.$ZodIssueTooSmall).minimum : (issue as z.core.$ZodIssueTooBig).maximum;
  const inclusive = issue.inclusive !== false;
  if (issue.origin === 'string') return small && Number(bound) <= 1 ? 'must not be empty' : `must be ${small ? 'at least' : 'at most'} ${bound} characters`;
  if (issue.origin === 'array' || issue.origin === 'set') {
    return small ? `must list at least ${bound} item(s)` : `must list at most ${bound} item(s)`;
  }
  const op = small ? (inclusive ? 'at least' : 'greater than') : inclusive ? 'at most' : 'less than';
  return `must be ${op} ${bound} (got ${describe(value)})`;
}

function article(expected: string): string {
  if (expected === 'object' || expected === 'record' || expected === 'map') return 'a mapping (key: value lines)';
  if (expected === 'array') return 'a list';
  if (expected === 'int') return 'a whole number';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === '(hidden)') return 'a string';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  return String(value);
}

export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const part of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[part];
  }
  return cur;
}
