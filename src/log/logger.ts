/**
 * @module
 * The plugin's logger: Multus's levels (panic < error < verbose < debug), one line per event
 * with time, level, container id, pod and network where known, to stderr and/or a file.
 * Each line is written with a single append so concurrent plugin runs never interleave.
 * A small logger of our own: bundled, it adds 0.1 ms to a start, LogTape 2.4.2 adds 29 ms
 * (README, "Performance").
 *
 * The file is rotated as Multus's lumberjack rotates it, and only what rotation made is ever
 * removed (see `log_file.ts`). Logging never fails a CNI command: a file that cannot be written
 * is reported once on stderr and its lines go to stderr until it can be written again.
 */

import { appendToLogFile, type LogRotation, rotateLogFile } from "./log_file.ts";
import { errorMessage } from "../util/errors.ts";

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

/**
 * What every logger derived from one root shares: settings (from the Multus netconf), the
 * destinations, and the state of the log file.
 */
interface Sinks {
  level: LogLevel;
  toStderr: boolean;
  file: string | undefined;
  rotation: LogRotation;
  /** When the file last failed (clock ms), while it is failing. */
  fileFailedAt: number | undefined;
  now: () => number;
  /** Backups waiting to be compressed (the first is being compressed), and the worker. */
  compression: { queued: string[]; running: Promise<void> | undefined };
}

/** Logger settings (from the Multus netconf). */
export interface LoggerOptions {
  level?: LogLevel;
  file?: string;
  toStderr?: boolean;
  rotation?: Partial<LogRotation>;
}

/**
 * Longest line text kept (UTF-16 units, before escaping): a delegate's output or an
 * annotation quoted in a message must not make one line megabytes long. Escaping can at most
 * multiply it by six, so no line is longer than about 400 KB.
 */
export const MAX_LINE_CHARS = 64 * 1024;

/**
 * How long after a failed write the file is tried again. Within one plugin run that means
 * never (the failure is said once); a long-running process returns to its file once it can.
 */
export const FILE_RETRY_MS = 60_000;

/**
 * Most backups waiting for compression at once; more (a directory of old uncompressed backups
 * kept by `maxBackups: 0`) wait for a later rotation.
 */
export const MAX_QUEUED_COMPRESSIONS = 8;

const encoder = new TextEncoder();

/**
 * A logger. The process-wide root is `log`; each request logs through a
 * {@linkcode Logger.child} carrying its container and pod.
 */
export class Logger {
  #sinks: Sinks;
  #context: LogContext = {};

  /** `now` is the clock (ms since the epoch) for timestamps, backup names and retries. */
  constructor(options: { now?: () => number } = {}) {
    this.#sinks = {
      level: "panic",
      toStderr: true,
      file: undefined,
      rotation: { maxSize: 100, maxBackups: 5, maxAge: 5, compress: true },
      fileFailedAt: undefined,
      now: options.now ?? Date.now,
      compression: { queued: [], running: undefined },
    };
  }

  /**
   * A logger for one request: its lines carry `context` (container id, pod) besides this
   * logger's. Level, destinations and the log file's state stay shared with this logger.
   */
  child(context: LogContext): Logger {
    const child = new Logger();
    child.#sinks = this.#sinks;
    child.#context = { ...this.#context, ...context };
    return child;
  }

  configure(options: LoggerOptions): void {
    if (options.level) this.#sinks.level = options.level;
    if (options.toStderr !== undefined) this.#sinks.toStderr = options.toStderr;
    if (options.file !== undefined) {
      const file = options.file || undefined;
      if (file !== this.#sinks.file) this.#sinks.fileFailedAt = undefined;
      this.#sinks.file = file;
    }
    // A limit left unset keeps its default: an `undefined` spread over the defaults would
    // make every size comparison false and rotate the file on every line.
    // Zero means what it means to Multus's lumberjack: maxSize 0 is the default size,
    // maxBackups 0 keeps every backup, maxAge 0 removes none by age.
    for (const [key, value] of Object.entries(options.rotation ?? {})) {
      if (key === "compress") {
        if (typeof value === "boolean") this.#sinks.rotation.compress = value;
        continue;
      }
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) continue;
      const limit = key as "maxSize" | "maxBackups" | "maxAge";
      if (value > 0) this.#sinks.rotation[limit] = value;
      else if (key !== "maxSize") this.#sinks.rotation[limit] = Infinity;
    }
  }

  /**
   * Resolves when the log file's background work (compressing rotated backups) is done; never
   * rejects. A process that exits after one request awaits it, so no backup is left half
   * compressed.
   */
  settled(): Promise<void> {
    return this.#sinks.compression.running ?? Promise.resolve();
  }

  /** Adds fields (container id, pod, network) to this logger's following lines. */
  setContext(context: LogContext): void {
    this.#context = { ...this.#context, ...context };
  }

  /** True when lines of `level` are written. */
  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] <= LEVEL_RANK[this.#sinks.level];
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
    this.#emit(level, message, context, true);
  }

  #write(level: LogLevel, message: string, context?: LogContext): void {
    if (this.enabled(level)) this.#emit(level, message, context, this.#sinks.toStderr);
  }

  #emit(level: LogLevel, message: string, context: LogContext | undefined, toStderr: boolean) {
    try {
      const line = this.#format(level, message, context);
      const inFile = this.#sinks.file !== undefined && this.#toFile(this.#sinks.file, line);
      // A line meant for the file alone goes to stderr while the file cannot take it.
      if (toStderr || (this.#sinks.file !== undefined && !inFile)) writeStderr(line);
    } catch {
      // Logging never fails the command it describes.
    }
  }

  #format(level: LogLevel, message: string, context?: LogContext): string {
    const ctx = { ...this.#context, ...context };
    const parts = [new Date(this.#sinks.now()).toISOString(), `[${level}]`];
    if (ctx.containerId) parts.push(`container=${String(ctx.containerId).slice(0, 12)}`);
    if (ctx.pod) parts.push(`pod=${ctx.pod}`);
    if (ctx.network) parts.push(`network=${ctx.network}`);
    parts.push(String(message));
    // One event, one line: embedded newlines would let two runs' lines interleave, and other
    // control characters (a lone CR, escapes) quoted from delegates, annotations or CNI_ARGS
    // could forge or hide lines in a terminal.
    return bounded(parts.join(" ")).replace(/\r?\n/g, "\\n").replace(
      // deno-lint-ignore no-control-regex
      /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    ) + "\n";
  }

  /** Appends `line` to the file, rotating it first when full; false when it cannot. */
  #toFile(path: string, line: string): boolean {
    const now = this.#sinks.now();
    if (this.#sinks.fileFailedAt !== undefined && now - this.#sinks.fileFailedAt < FILE_RETRY_MS) {
      return false;
    }
    const bytes = encoder.encode(line);
    try {
      const toCompress = rotateLogFile(path, this.#sinks.rotation, now);
      if (toCompress.length > 0) this.#compressLater(toCompress);
      appendToLogFile(path, bytes);
    } catch (err) {
      if (this.#sinks.fileFailedAt === undefined) {
        writeStderr(this.#format(
          "error",
          `cannot write log file ${path}: ${
            errorMessage(err) ?? err
          }; its lines go to stderr until it can be written again`,
        ));
      }
      this.#sinks.fileFailedAt = now;
      return false;
    }
    if (this.#sinks.fileFailedAt !== undefined) {
      this.#sinks.fileFailedAt = undefined;
      writeStderr(this.#format("error", `log file ${path} can be written again`));
    }
    return true;
  }

  /**
   * Queues backups for compression, one at a time in the background, so logging a line never
   * waits for it. The compressing module is loaded here, on the first rotation that needs it.
   */
  #compressLater(paths: string[]): void {
    const work = this.#sinks.compression;
    for (const path of paths) {
      if (work.queued.length >= MAX_QUEUED_COMPRESSIONS) break;
      if (!work.queued.includes(path)) work.queued.push(path);
    }
    work.running ??= (async () => {
      try {
        const { compressBackup } = await import("./compress_backup.ts");
        while (work.queued.length > 0) {
          const path = work.queued[0];
          try {
            await compressBackup(path);
          } catch (err) {
            writeStderr(this.#format(
              "error",
              `cannot compress log backup ${path}: ${
                errorMessage(err) ?? err
              }; it stays uncompressed until the next rotation`,
            ));
          }
          work.queued.shift();
        }
      } catch (err) {
        work.queued.length = 0;
        writeStderr(
          this.#format("error", `cannot compress log backups: ${errorMessage(err) ?? err}`),
        );
      } finally {
        work.running = undefined;
      }
    })();
  }
}

/** `text` cut to MAX_LINE_CHARS, saying how much was cut. */
function bounded(text: string): string {
  if (text.length <= MAX_LINE_CHARS) return text;
  let end = MAX_LINE_CHARS;
  // Never split a surrogate pair.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}... [${text.length - end} more characters cut]`;
}

function writeStderr(line: string): void {
  const bytes = encoder.encode(line);
  try {
    let written = 0;
    while (written < bytes.length) {
      const n = Deno.stderr.writeSync(bytes.subarray(written));
      if (n <= 0) return;
      written += n;
    }
  } catch {
    // stderr closed: nothing else to do
  }
}

/** Parses a Multus `logLevel` (case-insensitive); undefined for unknown values. */
export function parseLogLevel(value: string): LogLevel | undefined {
  const level = value.toLowerCase();
  // Own keys only: "constructor" or "toString" are no levels.
  return Object.hasOwn(LEVEL_RANK, level) ? (level as LogLevel) : undefined;
}

/** The process-wide root logger: its sinks are shared by every request's child logger. */
export const log: Logger = new Logger();
