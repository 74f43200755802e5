/**
 * @module
 * Entry point of the `multus` binary. With `CNI_COMMAND` set it is the CNI plugin and nothing
 * else; otherwise it runs a subcommand (`install`, `validate`, `--version`, `--help`).
 * This is the one place that prints errors.
 */

import { toCniErrorJson } from "./cni/errors.ts";
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
  let cniVersion: string | undefined;
  try {
    const { runCniCommand } = await import("./multus/run/command.ts");
    const out = await runCniCommand(env, async () => {
      const text = await new Response(Deno.stdin.readable).text();
      cniVersion = sniffCniVersion(text);
      return text;
    });
    if (out !== "") writeOut(out);
    log.debug(`${env.CNI_COMMAND}: done ${Math.round(performance.now())} ms after start`);
    return 0;
  } catch (err) {
    const json = toCniErrorJson(err, cniVersion);
    log.always(
      "error",
      `${env.CNI_COMMAND} failed: ${json.msg}${json.details ? ` (${json.details})` : ""}`,
    );
    writeOut(JSON.stringify(json, null, 4));
    return 1;
  }
}

/** Best-effort cniVersion of the config, for the error JSON. */
function sniffCniVersion(text: string): string | undefined {
  const match = /"cniVersion"\s*:\s*"([^"]*)"/i.exec(text);
  return match?.[1] || undefined;
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
