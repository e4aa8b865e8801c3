import type { Writable } from 'node:stream';
import winston from 'winston';
import { LOG_LEVELS } from '../config/schema.js';
import { knownSecrets, redactFormat } from './redact.js';

export { LOG_LEVELS };
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'auto' | 'json' | 'text';
export type Logger = winston.Logger;

export interface LoggerOptions {
  level?: LogLevel;
  /** `auto`: JSON lines for journald/pipes, one readable line per event on a terminal */
  format?: LogFormat;
  /** where lines go; stderr by default, so stdout stays clean for `status --json` and friends */
  stream?: Writable & { isTTY?: boolean };
  /** secret values to scrub, read at every log call (the registry grows as secrets are resolved) */
  secrets?: () => readonly string[];
  /** fixed fields on every line, e.g. { component: 'archiver' } */
  defaultMeta?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const format = options.format ?? 'auto';
  const json = format === 'json' || (format === 'auto' && stream.isTTY !== true);
  const base = [
    winston.format.errors({ stack: true }),
    winston.format.splat(),
    redactFormat({ secrets: options.secrets ?? knownSecrets }),
    winston.format.timestamp(),
  ];
  return winston.createLogger({
    level: options.level ?? 'info',
    levels: winston.config.npm.levels,
    defaultMeta: options.defaultMeta,
    format: winston.format.combine(...base, json ? winston.format.json() : textLine()),
    transports: [new winston.transports.Stream({ stream })],
  });
}

/** A logger that drops everything: for tests and library callers that do not care. */
export function createSilentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

/** `2026-11-25T04:09:27.953Z info  sealed segment file=mysql-bin.000002 bytes=1048576` */
function textLine(): winston.Logform.Format {
  return winston.format.printf((info) => {
    const { level, message, timestamp, stack, ...meta } = info as Record<string, unknown>;
    const fields = Object.entries(meta)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(' ');
    const head = `${String(timestamp)} ${String(level).padEnd(5)} ${formatMessage(message)}`;
    const line = fields ? `${head} ${fields}` : head;
    return typeof stack === 'string' ? `${line}\n${stack}` : line;
  });
}

function formatMessage(message: unknown): string {
  return typeof message === 'string' ? message : JSON.stringify(message);
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value;
  if (value instanceof Date) return value.toISOString();
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/**
 * The same logger, minus everything below `level`: for a component whose routine lines would
 * drown a command's own output (the archiver inside `demo`), while its warnings still show.
 */
export function withMinimumLevel(logger: Logger, level: LogLevel): Logger {
  const rank = (l: unknown) => (typeof l === 'string' ? LOG_LEVELS.indexOf(l as LogLevel) : -1);
  const max = rank(level);
  return new Proxy(logger, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && rank(prop) > max) return () => receiver;
      if (prop === 'log') {
        return (first: unknown, ...rest: unknown[]) => (rank(first) > max ? receiver : (target.log as (...a: unknown[]) => Logger)(first, ...rest));
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
