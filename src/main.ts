/**
 * @module
 * Entry point of the `multus` binary. With `CNI_COMMAND` set it is the CNI plugin and nothing
 * else: the thin plugin, or the shim when the configuration's type is `multus-shim` (the same
 * binary is installed under both names). Otherwise it runs a subcommand (`install`,
 * `validate`, `daemon`, `--version`, `--help`). This is the one place that prints errors.
 */

import { isShimConfig, sniffCniVersion } from "./cni/config_sniff.ts";
import { commandOutcome } from "./cni/outcome.ts";
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from "./cni/version.ts";
import { log } from "./log/logger.ts";

/** Version of this build, printed by `--version`. */
export const MULTUS_VERSION = "0.1.0-dev";

const encoder = new TextEncoder();

function writeOut(text: string): void {
  const bytes = encoder.encode(text.endsWith("\n") || text === "" ? text : `${text}\n`);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

function writeErr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text.endsWith("\n") ? text : `${text}\n`));
}

async function runPlugin(): Promise<number> {
  const env = Deno.env.toObject();
  if (env.CNI_COMMAND === "VERSION") {
    // Answered before loading the plugin: runtimes probe every plugin with VERSION.
    writeOut(
      JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS }),
    );
    return 0;
  }
  // The configuration is read first: its type says whether this run is the shim.
  let stdin: string;
  try {
    stdin = readStdinText();
  } catch (err) {
    // Reported by the plugin as a CNI error, after the environment is checked.
    const failed = Promise.reject(err);
    return finish(await commandOutcome(env.CNI_COMMAND, undefined, () => runThin(env, failed)));
  }
  // Routed by the configuration's type alone: the runtime picks the binary by that type, so
  // `multus-shim` is always run with such a configuration; and `Deno.execPath()` resolves
  // symlinks, so the name the binary was run by is not known anyway.
  if (isShimConfig(stdin)) {
    const { runShim } = await import("./shim/main.ts");
    return finish(await runShim(env, stdin));
  }
  const outcome = await commandOutcome(
    env.CNI_COMMAND,
    sniffCniVersion(stdin),
    () => runThin(env, Promise.resolve(stdin)),
  );
  if (outcome.exitCode === 0) {
    log.debug(`${env.CNI_COMMAND}: done ${Math.round(performance.now())} ms after start`);
  }
  return finish(outcome);
}

/**
 * Reads all of stdin with synchronous reads: at a process's start they cost ~1 ms, where
 * reading `Deno.stdin.readable` through a Response costs 30-70 ms (stream machinery).
 * Decoded as UTF-8 like `Response.text()` (BOM dropped, bad bytes replaced).
 */
function readStdinText(): string {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const n = Deno.stdin.readSync(buffer);
    if (n === null || n === 0) break;
    chunks.push(buffer.slice(0, n));
    total += n;
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}

async function runThin(env: Record<string, string>, stdin: Promise<string>): Promise<string> {
  // Read or not, the configuration is awaited only by the plugin, so a read error is reported
  // where the plugin reports it.
  stdin.catch(() => {});
  const { runCniCommand } = await import("./multus/plugin.ts");
  return await runCniCommand(env, () => stdin);
}

function finish(outcome: { stdout: string; exitCode: number }): number {
  if (outcome.stdout !== "") writeOut(outcome.stdout);
  return outcome.exitCode;
}

async function runSubcommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "install": {
      const { runInstall } = await import("./install/main.ts");
      return await runInstall(rest);
    }
    case "validate": {
      const { runValidate } = await import("./validate/main.ts");
      return await runValidate(rest);
    }
    case "daemon": {
      const { runDaemon } = await import("./daemon/main.ts");
      return await runDaemon(rest);
    }
    case "-v":
    case "-version":
    case "--version":
    case "version":
      writeOut(`multus: version:${MULTUS_VERSION}, cni versions: ${SUPPORTED_VERSIONS.join(", ")}`);
      return 0;
    case undefined:
    case "-h":
    case "-help":
    case "--help":
    case "help":
      writeErr(
        [
          "meta-plugin that delegates to other CNI plugins",
          `CNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}`,
          "",
          "usage:",
          "  CNI_COMMAND=... multus < netconf      run as a CNI plugin (by the container runtime)",
          "  multus install [flags]                install the binary and config on this node (--help)",
          "  multus validate [files] [--json]      check configs, NADs and pods offline (--help)",
          "  multus daemon --config FILE           serve CNI requests from multus-shim on this node (--help)",
          "  multus --version                      print the version",
        ].join("\n"),
      );
      return 0;
    default:
      writeErr(`multus: unknown subcommand "${sub}"; see multus --help`);
      return 2;
  }
}

async function main(): Promise<number> {
  try {
    if (Deno.env.get("CNI_COMMAND") !== undefined) return await runPlugin();
    return await runSubcommand(Deno.args);
  } catch (err) {
    // Last resort: a message, never a stack trace.
    writeErr(`multus: ${(err as Error)?.message ?? String(err)}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main());
}

export { CURRENT_VERSION };
