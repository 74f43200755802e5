/**
 * @module
 * The plugin's logger: Multus's levels (panic < error < verbose < debug), one line per event
 * with time, level, container id, pod and network where known, to stderr and/or a file.
 * Each line is written with a single append so concurrent plugin runs never interleave.
 * A small logger of our own: bundled, it adds 0.1 ms to a start, LogTape 2.4.2 adds 29 ms
 * (README, "Performance").
 *
 * The file is rotated as Multus's lumberjack rotates it, and only what rotation made is ever
 * removed (see `log_file.ts`).
 */

import { appendToLogFile, type LogRotation, rotateLogFile } from "./log_file.ts";

export type { LogRotation } from "./log_file.ts";

/** Multus log levels, least verbose first. */
export type LogLevel = "panic" | "error" | "verbose" | "debug";

const LEVEL_RANK: Record<LogLevel, number> = { panic: 0, error: 1, verbose: 2, debug: 3 };

/** Context fields printed with every line once known. */
export interface LogContext {
  containerId?: string;
  pod?: string;
  network?: string;
}

/** Logger settings (from the Multus netconf). */
export interface LoggerOptions {
  level?: LogLevel;
  file?: string;
  toStderr?: boolean;
  rotation?: Partial<LogRotation>;
}

const encoder = new TextEncoder();

class Logger {
  #level: LogLevel = "panic";
  #toStderr = true;
  #file: string | undefined;
  #rotation: LogRotation = { maxSize: 100, maxBackups: 5, maxAge: 5 };
  #context: LogContext = {};
  #fileFailed = false;

  configure(options: LoggerOptions): void {
    if (options.level) this.#level = options.level;
    if (options.toStderr !== undefined) this.#toStderr = options.toStderr;
    if (options.file !== undefined) this.#file = options.file || undefined;
    // A limit left unset keeps its default: an `undefined` spread over the defaults would
    // make every size comparison false and rotate the file on every line.
    // Zero means what it means to Multus's lumberjack: maxSize 0 is the default size,
    // maxBackups 0 keeps every backup, maxAge 0 removes none by age.
    for (const [key, value] of Object.entries(options.rotation ?? {})) {
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) continue;
      if (value > 0) this.#rotation[key as keyof LogRotation] = value;
      else if (key !== "maxSize") this.#rotation[key as keyof LogRotation] = Infinity;
    }
  }

  /** Adds fields (container id, pod, network) to every following line. */
  setContext(context: LogContext): void {
    this.#context = { ...this.#context, ...context };
  }

  /** True when lines of `level` are written. */
  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] <= LEVEL_RANK[this.#level];
  }

  error(message: string, context?: LogContext): void {
    this.#write("error", message, context);
  }

  /** A warning: written at error level with a `warning: ` prefix, as Multus does. */
  warn(message: string, context?: LogContext): void {
    this.#write("error", `warning: ${message}`, context);
  }

  verbose(message: string, context?: LogContext): void {
    this.#write("verbose", message, context);
  }

  debug(message: string, context?: LogContext): void {
    this.#write("debug", message, context);
  }

  /**
   * Writes a line whatever the level: the final error of a failed command. It always reaches
   * stderr, and the log file when one is set.
   */
  always(level: LogLevel, message: string, context?: LogContext): void {
    const line = this.#format(level, message, context);
    this.#toFile(line);
    writeStderr(line);
  }

  #write(level: LogLevel, message: string, context?: LogContext): void {
    if (!this.enabled(level)) return;
    const line = this.#format(level, message, context);
    if (this.#toStderr) writeStderr(line);
    this.#toFile(line);
  }

  #format(level: LogLevel, message: string, context?: LogContext): string {
    const ctx = { ...this.#context, ...context };
    const parts = [new Date().toISOString(), `[${level}]`];
    if (ctx.containerId) parts.push(`container=${ctx.containerId.slice(0, 12)}`);
    if (ctx.pod) parts.push(`pod=${ctx.pod}`);
    if (ctx.network) parts.push(`network=${ctx.network}`);
    parts.push(message);
    // One event, one line: embedded newlines would let two runs' lines interleave, and other
    // control characters (a lone CR, escapes) quoted from delegates, annotations or CNI_ARGS
    // could forge or hide lines in a terminal.
    return parts.join(" ").replace(/\r?\n/g, "\\n").replace(
      // deno-lint-ignore no-control-regex
      /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    ) + "\n";
  }

  #toFile(line: string): void {
    if (!this.#file || this.#fileFailed) return;
    try {
      rotateLogFile(this.#file, this.#rotation, Date.now());
      appendToLogFile(this.#file, encoder.encode(line));
    } catch (err) {
      // An unwritable log file must not fail the CNI command; say so once on stderr.
      this.#fileFailed = true;
      writeStderr(
        `${new Date().toISOString()} [error] cannot write log file ${this.#file}: ${
          (err as Error).message
        }\n`,
      );
    }
  }
}

function writeStderr(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line));
  } catch {
    // stderr closed: nothing else to do
  }
}

/** Parses a Multus `logLevel` (case-insensitive); undefined for unknown values. */
export function parseLogLevel(value: string): LogLevel | undefined {
  const level = value.toLowerCase();
  return level in LEVEL_RANK ? (level as LogLevel) : undefined;
}

/** The process-wide logger. */
export const log: Logger = new Logger();
