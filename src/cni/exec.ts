/**
 * @module
 * Finding and running one CNI plugin binary, as libcni does.
 */

import { basename, join } from "../util/path.ts";
import { CniErrorCode, DelegateError } from "./errors.ts";
import type { CniRequest } from "./request.ts";
import { log as rootLog, type Logger } from "../log/logger.ts";
import { errorMessage } from "../util/errors.ts";

/** The CNI parameters passed to a plugin in its environment (a request's, as parsed). */
export type PluginEnv = CniRequest;

/**
 * How plugins are found and run: the seam libcni calls `invoke.Exec`. Everything that runs a
 * delegate goes through one, so a test can record and fail calls without running plugins.
 */
export interface Exec {
  /** Finds the plugin `type` in `dirs`; see {@linkcode findPlugin}. */
  findPlugin(type: string, dirs: string[]): Promise<string>;
  /** Runs one plugin; see {@linkcode execPlugin}. */
  execPlugin(
    pluginPath: string,
    stdin: string,
    env: PluginEnv,
    options: ExecOptions,
  ): Promise<unknown>;
}

/** Options of {@linkcode execPlugin}. */
export interface ExecOptions {
  /** Where the plugin's stderr and retries are logged (default: the root logger). */
  log?: Logger;
  /** Kill the plugin (SIGKILL) after this many milliseconds. */
  timeoutMs: number;
  /**
   * Parse stdout as JSON on success (default true). False ignores a successful plugin's
   * stdout, as libcni does for DEL, CHECK, STATUS and GC.
   */
  parseOutput?: boolean;
}

/**
 * How plugin processes are started, beyond libcni's default (this process's environment plus
 * the CNI variables, the plugin run directly). See {@linkcode processExecWith}.
 */
export interface PluginLaunch {
  /**
   * Program and arguments the plugin runs under, its path appended (e.g.
   * `["/usr/sbin/chroot", "/host"]`); stdin, stdout and stderr reach the plugin unchanged.
   */
  wrapper?: string[];
  /** The environment under the CNI variables (default: this process's own, as libcni). */
  baseEnv?: Record<string, string>;
  /**
   * The root directory the plugin sees (a chroot): plugin directories are looked up under it
   * and the returned path is the plugin's path as seen from inside.
   */
  root?: string;
  /**
   * Told of each plugin process once started (its pid, which is also its process group, and the
   * request's variables); the function it returns is called once the process has ended.
   */
  track?: (pid: number, env: PluginEnv) => () => void;
}

/** Most bytes read from a plugin's stdout or stderr; more is an error. */
export const MAX_PLUGIN_OUTPUT = 4 * 1024 * 1024;

/** How often a "text file busy" spawn is retried, and the pause between tries (libcni). */
const BUSY_RETRIES = 5;
const BUSY_PAUSE_MS = 1000;

/** Longest plugin output quoted in an error message. */
const MAX_QUOTED = 2000;

/**
 * How long to wait, once the plugin has exited, for the end of its stdout and stderr. What
 * it printed is in the pipe when it exits, so the end normally follows at once; only a
 * process it left running with the pipe open (a background child) holds it back. One second
 * is ample for this process to read what is already there, even on a loaded node, and costs
 * nothing in the normal case; without it such a child turns a finished ADD into the whole
 * delegate timeout (120 s by default), a kill and a rollback.
 */
export const OUTPUT_GRACE_MS = 1000;

/**
 * Finds the plugin `type` in `dirs` (first regular executable file wins). Rejects empty
 * names, names with `/` and `.`/`..` before looking (DelegateError, code 7); a missing plugin
 * is a DelegateError naming the directories searched.
 */
export async function findPlugin(type: string, dirs: string[], root?: string): Promise<string> {
  if (
    type === "" || type === "." || type === ".." || type.includes("/") || type.includes("\\") ||
    type.includes("\0")
  ) {
    throw new DelegateError(
      type,
      "",
      `plugin type "${type}" is not a plugin name: it must be a file name in the CNI bin directories`,
      { code: CniErrorCode.InvalidNetworkConfig },
    );
  }
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = join(dir, type);
    try {
      // Symlinks are followed, as Go's os.Stat does in libcni's FindInPath.
      const info = root ? await statUnder(root, candidate) : await Deno.stat(candidate);
      if (info.isFile) return candidate;
    } catch {
      // missing or unreadable: try the next directory
    }
  }
  throw new DelegateError(type, "", `failed to find plugin "${type}" in path [${dirs.join(" ")}]`, {
    code: CniErrorCode.Internal,
    details: `install the "${type}" plugin binary into the CNI bin directory (binDir) ` +
      `or a directory listed in CNI_PATH`,
  });
}

/**
 * Stats `path` as a process whose root directory is `root` sees it: symlinks are followed,
 * an absolute target starting again at `root`, `..` never leaving it.
 */
async function statUnder(root: string, path: string): Promise<Deno.FileInfo> {
  const base = root.replace(/\/+$/, "");
  let rest = path.split("/").filter((p) => p !== "" && p !== ".");
  let resolved: string[] = [];
  for (let links = 0; rest.length > 0;) {
    const part = rest.shift()!;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const here = `${base}/${[...resolved, part].join("/")}`;
    const info = await Deno.lstat(here);
    if (!info.isSymlink) {
      resolved.push(part);
      continue;
    }
    if (++links > 40) throw new Error(`too many levels of symbolic links in ${path}`);
    const target = await Deno.readLink(here);
    if (target.startsWith("/")) resolved = [];
    rest = [...target.split("/").filter((p) => p !== "" && p !== "."), ...rest];
  }
  return await Deno.stat(`${base}/${resolved.join("/")}`);
}

/**
 * Runs a plugin with the process environment plus the CNI variables, `stdin` as its input,
 * a timeout, and its stderr captured (and forwarded to ours). Returns the parsed JSON stdout
 * (undefined when stdout is empty). A non-zero exit becomes a DelegateError carrying the
 * plugin's CNI error code and message, or its stderr when it printed no error JSON.
 * "text file busy" is retried as libcni does.
 */
export function execPlugin(
  pluginPath: string,
  stdin: string,
  env: PluginEnv,
  options: ExecOptions,
): Promise<unknown> {
  return runPlugin(pluginPath, stdin, env, options, {});
}

async function runPlugin(
  pluginPath: string,
  stdin: string,
  env: PluginEnv,
  options: ExecOptions,
  launch: PluginLaunch,
): Promise<unknown> {
  const type = basename(pluginPath);
  const child = await spawnWithRetry(pluginPath, env, options.log ?? rootLog, launch);
  const untrack = launch.track?.(child.pid, env);
  let run: CollectedRun;
  try {
    run = await collect(child, new TextEncoder().encode(stdin), options.timeoutMs);
  } finally {
    untrack?.();
  }
  const stdout = new TextDecoder().decode(run.stdout);
  const stderr = new TextDecoder().decode(run.stderr);

  const log = options.log ?? rootLog;
  if (stderr.trim() !== "" && log.enabled("debug")) {
    log.debug(`plugin "${type}" (${env.command}) stderr: ${stderr.trimEnd()}`);
  }
  if (run.timedOut) {
    throw new DelegateError(
      type,
      env.command,
      `plugin "${type}" did not finish within ${options.timeoutMs / 1000}s and was killed`,
      { code: CniErrorCode.TryAgainLater, details: quotedStderr(stderr) },
    );
  }
  if (run.overflow) {
    throw new DelegateError(
      type,
      env.command,
      `plugin "${type}" printed more than ${MAX_PLUGIN_OUTPUT} bytes on ${run.overflow}: ` +
        `output too large`,
      { code: CniErrorCode.Internal },
    );
  }
  let holders = "";
  if (run.heldOpen.length > 0) {
    // Only here, off the normal path: a plugin that exits with its pipes still held.
    const { describeProcesses, processesInSession } = await import("./session_processes.ts");
    const left = await processesInSession(child.pid);
    holders = left.length > 0
      ? `${describeProcesses(left)}, which it started,`
      : "a process it started (no longer in its session)";
    log.warn(
      `plugin "${type}" (${env.command}) exited, but ${holders} still holds its ` +
        `${run.heldOpen.join(" and ")} open; going on with what it printed before exiting`,
    );
  }
  if (!run.status.success) {
    throw pluginError(type, env.command, { stdout, stderr, status: run.status });
  }
  if (options.parseOutput === false || stdout.trim() === "") return undefined;
  try {
    return JSON.parse(stdout);
  } catch (err) {
    if (run.heldOpen.includes("stdout")) {
      throw new DelegateError(
        type,
        env.command,
        `plugin "${type}" exited, but ${holders} still holds its stdout open, and what the ` +
          `plugin printed before exiting is not a complete result: "${truncate(stdout.trim())}"`,
        {
          code: CniErrorCode.IoFailure,
          cause: err,
          details: `A plugin must not leave a process running with its stdout open; ` +
            `fix or wrap the "${type}" plugin so that its background processes close or redirect it`,
        },
      );
    }
    throw new DelegateError(
      type,
      env.command,
      `plugin "${type}" succeeded but printed output that is not JSON: "${
        truncate(stdout.trim())
      }"`,
      { code: CniErrorCode.DecodeFailure, cause: err },
    );
  }
}

/** The libcni environment: every CNI variable set, possibly empty (CNI values win). */
function cniEnvironment(env: PluginEnv): Record<string, string> {
  return {
    CNI_COMMAND: env.command,
    CNI_CONTAINERID: env.containerId,
    CNI_NETNS: env.netns,
    CNI_IFNAME: env.ifName,
    CNI_ARGS: env.args.map(([k, v]) => `${k}=${v}`).join(";"),
    CNI_PATH: env.path.join(":"),
  };
}

function isTextFileBusy(err: unknown): boolean {
  return err instanceof Error && /text file busy|os error 26\)/i.test(err.message);
}

async function spawnWithRetry(
  pluginPath: string,
  env: PluginEnv,
  log: Logger,
  launch: PluginLaunch,
): Promise<Deno.ChildProcess> {
  const type = basename(pluginPath);
  const [program, ...args] = [...(launch.wrapper ?? []), pluginPath];
  const command = new Deno.Command(program, {
    args,
    env: launch.baseEnv ? { ...launch.baseEnv, ...cniEnvironment(env) } : cniEnvironment(env),
    clearEnv: launch.baseEnv !== undefined,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    // Its own session and process group, so a timeout kills the plugin and its children.
    detached: true,
  });
  for (let attempt = 1;; attempt++) {
    try {
      return command.spawn();
    } catch (err) {
      if (isTextFileBusy(err) && attempt <= BUSY_RETRIES) {
        log.verbose(`plugin "${type}" is busy (text file busy), retrying in 1s`);
        await new Promise((resolve) => setTimeout(resolve, BUSY_PAUSE_MS));
        continue;
      }
      throw new DelegateError(
        type,
        env.command,
        `cannot run plugin "${type}" (${pluginPath}): ${errorMessage(err)}`,
        { code: CniErrorCode.Internal, cause: err },
      );
    }
  }
}

interface CollectedRun {
  stdout: Uint8Array;
  stderr: Uint8Array;
  status: Deno.CommandStatus;
  timedOut: boolean;
  /** The stream that went over {@linkcode MAX_PLUGIN_OUTPUT}, if any. */
  overflow?: "stdout" | "stderr";
  /**
   * Streams still open {@linkcode OUTPUT_GRACE_MS} after the plugin exited (held by a
   * process it left running); what was read until then is in `stdout`/`stderr`.
   */
  heldOpen: ("stdout" | "stderr")[];
}

const STREAM_NAMES = ["stdout", "stderr"] as const;

/**
 * Feeds stdin, reads stdout/stderr (capped) until they end or, once the plugin has exited,
 * for at most {@linkcode OUTPUT_GRACE_MS} more; kills the plugin's group on timeout.
 */
async function collect(
  child: Deno.ChildProcess,
  input: Uint8Array,
  timeoutMs: number,
): Promise<CollectedRun> {
  const readers = [child.stdout.getReader(), child.stderr.getReader()];
  const writer = child.stdin.getWriter();
  const ended = [false, false];
  let timedOut = false;
  let overflow: "stdout" | "stderr" | undefined;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    killGroup(child);
    // A grandchild that left the group could keep the pipes open: stop reading them.
    for (const reader of readers) reader.cancel().catch(() => {});
  };
  // setTimeout holds at most 2^31-1 ms (24.8 days); a longer configured timeout would fire at once.
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, Math.min(timeoutMs, 2 ** 31 - 1));

  const writing = (async () => {
    try {
      await writer.write(input);
      await writer.close();
    } catch {
      // The plugin exited or closed stdin without reading it all: its exit status tells.
      await writer.abort().catch(() => {});
    }
  })();
  const readAll = async (index: 0 | 1): Promise<Uint8Array> => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for (;;) {
        const { value, done } = await readers[index].read();
        if (done) {
          ended[index] = true;
          break;
        }
        size += value.length;
        if (size > MAX_PLUGIN_OUTPUT) {
          overflow ??= index === 0 ? "stdout" : "stderr";
          stop();
          break;
        }
        chunks.push(value);
      }
    } catch {
      // cancelled after a timeout or overflow
    }
    const out = new Uint8Array(Math.min(size, MAX_PLUGIN_OUTPUT));
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  };

  const reads = [readAll(0), readAll(1)] as const;
  let grace: ReturnType<typeof setTimeout> | undefined;
  try {
    const status = await child.status;
    const graceOver = new Promise<void>((resolve) => {
      grace = setTimeout(resolve, OUTPUT_GRACE_MS);
    });
    await Promise.race([Promise.all([...reads, writing]), graceOver]);
    const heldOpen = timedOut || overflow ? [] : STREAM_NAMES.filter((_, i) => !ended[i]);
    // A process the plugin left running may hold the pipes (and its stdin) open: stop
    // reading and writing them; the reads then end with what arrived.
    for (const [i, reader] of readers.entries()) if (!ended[i]) reader.cancel().catch(() => {});
    writer.abort().catch(() => {});
    const [stdout, stderr] = await Promise.all(reads);
    return { stdout, stderr, status, timedOut, overflow, heldOpen };
  } finally {
    clearTimeout(timer);
    clearTimeout(grace);
  }
}

function killGroup(child: Deno.ChildProcess): void {
  try {
    Deno.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** libcni's `pluginErr` mapping of a failed run (C-9.4). */
function pluginError(
  type: string,
  command: string,
  run: { stdout: string; stderr: string; status: Deno.CommandStatus },
): DelegateError {
  const exit = run.status.signal ? `signal ${run.status.signal}` : `exit status ${run.status.code}`;
  const stdout = run.stdout.trim();
  const stderr = run.stderr.trim();
  if (stdout === "") {
    if (stderr === "") {
      return new DelegateError(type, command, `netplugin failed with no error message: ${exit}`);
    }
    return new DelegateError(type, command, `netplugin failed: "${truncate(stderr)}"`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (err) {
    return new DelegateError(
      type,
      command,
      `netplugin failed but error parsing its diagnostic message "${truncate(stdout)}"`,
      { cause: err, details: quotedStderr(run.stderr) },
    );
  }
  const error = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
    ? parsed as { code?: unknown; msg?: unknown; details?: unknown }
    : {};
  const msg = typeof error.msg === "string" ? error.msg : "";
  const details = typeof error.details === "string" ? error.details : "";
  // A plugin error without a usable code is still an error: report it as libcni's ErrInternal.
  const code = typeof error.code === "number" && Number.isInteger(error.code) && error.code > 0
    ? error.code
    : CniErrorCode.Internal;
  let message = details ? `${msg}; ${details}` : msg;
  if (message === "") {
    message = stderr === ""
      ? `netplugin failed with no error message: ${exit}`
      : `netplugin failed: "${truncate(stderr)}"`;
  }
  return new DelegateError(type, command, message, { code });
}

function quotedStderr(stderr: string): string | undefined {
  const text = stderr.trim();
  return text === "" ? undefined : `plugin stderr: "${truncate(text)}"`;
}

function truncate(text: string): string {
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}...` : text;
}

/** The {@linkcode Exec} that runs plugins as child processes. */
export const processExec: Exec = { findPlugin, execPlugin };

/**
 * An {@linkcode Exec} that runs plugins as child processes started as `launch` says (under a
 * wrapper such as chroot, with an environment of its own).
 */
export function processExecWith(launch: PluginLaunch): Exec {
  return {
    findPlugin: (type, dirs) => findPlugin(type, dirs, launch.root),
    execPlugin: (pluginPath, stdin, env, options) =>
      runPlugin(pluginPath, stdin, env, options, launch),
  };
}
