/**
 * @module
 * Entry point of the `multus` binary. With `CNI_COMMAND` set it is the CNI plugin and nothing
 * else: the thin plugin, or the shim when the configuration's type is `multus-shim` (the same
 * binary is installed under both names). Otherwise it runs a subcommand (`install`,
 * `validate`, `daemon`, `--version`, `--help`). Errors are printed by `util/output.ts`: the
 * CNI error object for the plugin, text for the subcommands.
 */

import { isShimConfig } from "./cni/config_sniff.ts";
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from "./cni/version.ts";
import { readStdinText } from "./util/stdin.ts";
import { printTextError, writeStderr as writeErr, writeStdout as writeOut } from "./util/output.ts";

/** Version of this build, printed by `--version`. */
export const MULTUS_VERSION = "0.1.0-dev";

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
      return await runDaemon(rest, MULTUS_VERSION);
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

/**
 * The CNI plugin or the shim. VERSION is answered by the plugin without reading stdin; for the
 * other commands the configuration is read first, as its type says which of the two runs.
 * Routed by the type alone: the runtime picks the binary by that type, so `multus-shim` is
 * always run with such a configuration; and `Deno.execPath()` resolves symlinks, so the name
 * the binary was run by is not known anyway.
 */
async function runCni(): Promise<number> {
  if (Deno.env.get("CNI_COMMAND") === "VERSION") {
    return await (await import("./plugin/main.ts")).runPlugin();
  }
  let stdin: Promise<string>;
  try {
    stdin = Promise.resolve(readStdinText());
  } catch (err) {
    // The plugin reports it as a CNI error, after the environment is checked.
    stdin = Promise.reject(err);
    stdin.catch(() => {});
  }
  const text = await stdin.catch(() => undefined);
  const code = text !== undefined && isShimConfig(text)
    ? await (await import("./shim/main.ts")).runShim(Deno.env.toObject(), text)
    : await (await import("./plugin/main.ts")).runPlugin(() => stdin);
  // A rotation during this request may still be compressing the backup it made: exiting now
  // would leave it half done (loaded already by the plugin and the shim).
  await (await import("./log/logger.ts")).log.settled();
  return code;
}

async function main(): Promise<number> {
  try {
    if (Deno.env.get("CNI_COMMAND") !== undefined) return await runCni();
    return await runSubcommand(Deno.args);
  } catch (err) {
    // Last resort: a message, never a stack trace.
    printTextError("multus", err);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main());
}

export { CURRENT_VERSION };
