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

/** Runs a CNI plugin binary with the given call. */
export async function runPlugin(binary: string, call: CniCall): Promise<PluginRun> {
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
  const child = new Deno.Command(binary, {
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(
    new TextEncoder().encode(
      typeof call.config === "string" ? call.config : JSON.stringify(call.config),
    ),
  );
  await writer.close();
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code: out.code, stdout, stderr, json };
}

/** A random suffix for names that must be unique on the host (≤ 6 chars). */
export function uniqueSuffix(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 6);
}
