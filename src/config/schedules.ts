import { readdir as fsReaddir, readFile as fsReadFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateDetailed } from 'node-cron';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configProblemError, didYouMean, pickIssue, problemFromIssue, unknownKeysMessage, type ConfigProblem } from './issues.js';
import { isTimeZone, parseYaml } from './load-config.js';
import type { Config } from './schema.js';
import { parseDuration, SizeParseError } from './sizes.js';

/**
 * Schedules: one YAML file per dump tier in the schedules directory, e.g.
 * `{ tier: daily, cron: "0 3 * * *", timezone: UTC, targets: [local-disk], retention: { keep: 7 } }`.
 */
export interface Schedule {
  readonly tier: string;
  /** five fields, or six with seconds (node-cron syntax) */
  readonly cron: string;
  /** IANA zone the cron expression is read in */
  readonly timezone: string;
  /** storage names (keys of config.storages) that each receive a full copy */
  readonly targets: readonly string[];
  /** a dump is kept while either rule still wants it; the newest valid dump is always kept */
  readonly retention: ScheduleRetention;
  /** only these databases (default: all but the system schemas) */
  readonly databases?: readonly string[];
  readonly exclude?: readonly string[];
  /** run the restore drill on each new dump of this tier */
  readonly verify: boolean;
  /** also dump users and grants */
  readonly users: boolean;
  /** absolute path of the file this came from */
  readonly file: string;
}

export interface ScheduleRetention {
  readonly keep?: number;
  readonly maxAgeMs?: number;
}

export interface LoadSchedulesOptions {
  readFile?: (path: string) => Promise<string>;
  readdir?: (path: string) => Promise<string[]>;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** A unit is required: a bare `maxAge: 30` read as seconds would let retention delete nearly everything. */
const durationField = z.unknown().transform((value, ctx): number => {
  if (typeof value !== 'string') {
    ctx.addIssue({ code: 'custom', message: 'expected a duration with a unit such as 30d or 12h' });
    return z.NEVER;
  }
  try {
    return parseDuration(value);
  } catch (error) {
    if (!(error instanceof SizeParseError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.message });
    return z.NEVER;
  }
});

function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, known) : undefined),
  });
}

const scheduleSchema = strict({
  tier: z.string().regex(NAME, { message: 'must be a short lowercase name such as daily (letters, digits, "-", "_")' }),
  cron: z.string().min(1),
  timezone: z.string().min(1).default('UTC'),
  targets: z.array(z.string().min(1)).min(1),
  retention: strict({
    keep: z.number().int().min(0).optional(),
    maxAge: durationField.optional(),
  }),
  databases: z.array(z.string().min(1)).min(1).optional(),
  exclude: z.array(z.string().min(1)).min(1).optional(),
  verify: z.boolean().default(false),
  users: z.boolean().default(false),
});

/** Reads every `*.yaml`/`*.yml` in `dir` (sorted), validated against the configuration's storages. */
export async function loadSchedules(dir: string, config: Config, options: LoadSchedulesOptions = {}): Promise<Schedule[]> {
  const readFile = options.readFile ?? ((p: string) => fsReadFile(p, 'utf8'));
  const readdir = options.readdir ?? ((p: string) => fsReaddir(p));
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new ConfigError(`schedules ${dir}: ${code === 'ENOENT' ? 'directory not found' : code === 'ENOTDIR' ? 'not a directory' : 'cannot be read'}`, {
      hint: `Create ${dir} with one YAML file per dump tier (an empty directory means no scheduled dumps), or set schedulesDir in ${config.configFile}.`,
    });
  }
  const files = entries.filter((name) => /\.ya?ml$/i.test(name)).sort();
  const schedules: Schedule[] = [];
  for (const name of files) {
    const file = join(dir, name);
    let text: string;
    try {
      text = await readFile(file);
    } catch (error) {
      throw new ConfigError(`config ${file}: cannot be read (${String((error as { code?: unknown }).code ?? 'error')})`);
    }
    const schedule = parseSchedule(text, file, config);
    const twin = schedules.find((s) => s.tier === schedule.tier);
    if (twin) {
      throw configProblemError(file, {
        path: ['tier'],
        message: `tier ${JSON.stringify(schedule.tier)} is already defined in ${twin.file}; give each tier its own name`,
        hint: 'Each tier has exactly one schedule file; rename the tier or merge the two files.',
      });
    }
    schedules.push(schedule);
  }
  return schedules;
}

/** Validates one schedule file's text. */
export function parseSchedule(text: string, file: string, config: Config): Schedule {
  const raw = parseYaml(text, file, 'schedule');
  const parsed = scheduleSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = pickIssue(parsed.error.issues);
    throw issue ? configProblemError(file, problemFromIssue(issue, raw)) : new ConfigError(`config ${file}: invalid`);
  }
  const data = parsed.data;
  const problem = crossCheck(data, config);
  if (problem) throw configProblemError(file, problem);
  return {
    tier: data.tier,
    cron: data.cron,
    timezone: data.timezone,
    targets: data.targets,
    retention: {
      ...(data.retention.keep === undefined ? {} : { keep: data.retention.keep }),
      ...(data.retention.maxAge === undefined ? {} : { maxAgeMs: data.retention.maxAge }),
    },
    ...(data.databases ? { databases: data.databases } : {}),
    ...(data.exclude ? { exclude: data.exclude } : {}),
    verify: data.verify,
    users: data.users,
    file,
  };
}

function crossCheck(data: z.output<typeof scheduleSchema>, config: Config): ConfigProblem | undefined {
  const cron = validateDetailed(data.cron);
  if (!cron.valid) {
    const first = cron.errors[0]?.message ?? 'invalid expression';
    return {
      path: ['cron'],
      message: `invalid cron expression ${JSON.stringify(data.cron)}: ${first}; write five fields such as "0 3 * * *" (minute hour day month weekday)`,
      hint: 'Cron fields are minute (0-59), hour (0-23), day of month (1-31), month (1-12) and day of week (0-7); an optional sixth leading field is seconds.',
    };
  }
  if (!isTimeZone(data.timezone)) {
    const suggestion = didYouMean(data.timezone, Intl.supportedValuesOf('timeZone'));
    return {
      path: ['timezone'],
      message: `unknown time zone ${JSON.stringify(data.timezone)}; ${suggestion ? `did you mean "${suggestion}"?` : 'use an IANA name such as UTC or Europe/Berlin'}`,
      hint: 'UTC avoids runs skipped or doubled by daylight saving time changes.',
    };
  }
  const storages = Object.keys(config.storages);
  for (const [i, target] of data.targets.entries()) {
    if (!storages.includes(target)) {
      const suggestion = didYouMean(target, storages);
      return {
        path: ['targets', i],
        message: `unknown storage ${JSON.stringify(target)}; ${suggestion ? `did you mean "${suggestion}"?` : `use one of ${storages.join(', ')}`}`,
        hint: `Targets name entries under \`storages\` in ${config.configFile}.`,
      };
    }
    if (data.targets.indexOf(target) !== i) {
      return { path: ['targets', i], message: `${JSON.stringify(target)} is listed twice; list each storage once` };
    }
  }
  const { keep, maxAge } = data.retention;
  const retentionHint = 'Retention keeps dumps that either rule wants: keep N (the newest N dumps) and/or maxAge D (e.g. 30d).';
  if (keep === undefined && maxAge === undefined) {
    return { path: ['retention'], message: 'retention would keep nothing; add keep: N and/or maxAge: D (e.g. keep: 7)', hint: retentionHint };
  }
  if (maxAge === 0) {
    return { path: ['retention', 'maxAge'], message: 'maxAge 0 would keep nothing; use a duration such as 30d', hint: retentionHint };
  }
  if (keep === 0 && maxAge === undefined) {
    return { path: ['retention', 'keep'], message: 'keep 0 without maxAge would keep nothing; use keep: 1 or more, or add maxAge', hint: retentionHint };
  }
  for (const db of data.exclude ?? []) {
    if (data.databases?.includes(db)) {
      return { path: ['exclude'], message: `${JSON.stringify(db)} is both in databases and exclude; remove it from one of them` };
    }
  }
  return undefined;
}
