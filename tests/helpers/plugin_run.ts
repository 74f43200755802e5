/**
 * @module
 * Runs the plugin as the container runtime does: the launcher installed as `multus` in a CNI
 * bin dir, CNI_* variables in the environment, the configuration on stdin.
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root. */
export const REPO_ROOT: string = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Debian's reference plugins. */
export const SYSTEM_CNI_DIR = "/usr/lib/cni";

/** What one plugin run printed and returned. */
export interface PluginRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when it is JSON. */
  json?: Record<string, unknown>;
}

/** Parameters of one CNI invocation. */
export interface CniCall {
  command: string;
  containerId?: string;
  netns?: string;
  ifName?: string;
  args?: string;
  /** CNI_PATH directories (default: the test bin dir, then Debian's plugins). */
  path?: string[];
  /** The configuration (an object is serialised). */
  config: string | Record<string, unknown>;
  env?: Record<string, string>;
}

/** A temporary CNI installation: bin dir with `multus`, cache dir, conf dir, log file. */
export interface TestRoot {
  dir: string;
  binDir: string;
  cniDir: string;
  confDir: string;
  logFile: string;
  run(call: CniCall): Promise<PluginRun>;
  cleanup(): Promise<void>;
}

/** Creates a temporary CNI root with the launcher linked in as `multus`. */
export async function makeTestRoot(): Promise<TestRoot> {
  const dir = await Deno.makeTempDir({ prefix: "multus-test-" });
  const binDir = join(dir, "bin");
  const cniDir = join(dir, "cni");
  const confDir = join(dir, "net.d");
  await Deno.mkdir(binDir);
  await Deno.mkdir(confDir);
  await Deno.symlink(join(REPO_ROOT, "scripts", "dev-multus"), join(binDir, "multus"));
  const root: TestRoot = {
    dir,
    binDir,
    cniDir,
    confDir,
    logFile: join(dir, "multus.log"),
    run: (call) => runPlugin(join(binDir, "multus"), { path: [binDir, SYSTEM_CNI_DIR], ...call }),
    cleanup: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
  return root;
}

/** A plugin run that was started and can be killed. */
export interface RunningPlugin {
  /** PID of the process (the launcher `exec`s Deno, so this is the plugin itself). */
  pid: number;
  /** Sends a signal to the plugin process. */
  kill(signal?: Deno.Signal): void;
  /** What it printed and how it ended. */
  done: Promise<PluginRun & { signal: Deno.Signal | null }>;
}

/**
 * Starts a CNI plugin binary with the given call (optionally under a wrapper command such as
 * strace) and returns at once.
 */
export function startPlugin(binary: string, call: CniCall, wrapper: string[] = []): RunningPlugin {
  const env: Record<string, string> = {
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId ?? "",
    CNI_NETNS: call.netns ?? "",
    CNI_IFNAME: call.ifName ?? "eth0",
    CNI_ARGS: call.args ?? "",
    CNI_PATH: (call.path ?? []).join(":"),
    ...call.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === "" && k !== "CNI_COMMAND") delete env[k];
  const argv = [...wrapper, binary];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const done = (async () => {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(
        new TextEncoder().encode(
          typeof call.config === "string" ? call.config : JSON.stringify(call.config),
        ),
      );
      await writer.close();
    } catch {
      // killed before it read its stdin
    }
    const out = await child.output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(stdout);
    } catch {
      json = undefined;
    }
    return { code: out.code, signal: out.signal, stdout, stderr, json };
  })();
  return {
    pid: child.pid,
    kill: (signal = "SIGKILL") => {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    },
    done,
  };
}

/** Runs a CNI plugin binary with the given call to its end. */
export async function runPlugin(binary: string, call: CniCall): Promise<PluginRun> {
  const { code, stdout, stderr, json } = await startPlugin(binary, call).done;
  return { code, stdout, stderr, json };
}

/** A random suffix for names that must be unique on the host (≤ 6 chars). */
export function uniqueSuffix(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 6);
}

/**
 * A delegates-mode multus configuration in `root` (its cniDir, binDir and log file; nothing on
 * stderr), with `delegates` as given and `keys` laid over the top level.
 */
export function delegatesModeConf<D>(
  root: TestRoot,
  delegates: D[],
  keys: Record<string, unknown> = {},
): Record<string, unknown> & { delegates: D[] } {
  return {
    cniVersion: "1.0.0",
    name: "multus-test",
    type: "multus",
    cniDir: root.cniDir,
    binDir: root.binDir,
    logFile: root.logFile,
    logToStderr: false,
    ...keys,
    delegates,
  };
}
