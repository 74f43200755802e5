/**
 * @module
 * Entry point of the `multus` binary. With `CNI_COMMAND` set it is the CNI plugin and nothing
 * else; otherwise it runs a subcommand (`install`, `validate`, `--version`, `--help`).
 * Errors are printed by `util/output.ts`: the CNI error object for the plugin, text for the
 * subcommands.
 */

import { CURRENT_VERSION, SUPPORTED_VERSIONS } from "./cni/version.ts";
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
    if (Deno.env.get("CNI_COMMAND") !== undefined) {
      return await (await import("./plugin/main.ts")).runPlugin();
    }
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
