/**
 * @module
 * How a CNI command ends, in one place for every path that runs one (the plugin, the shim
 * running a request itself, the daemon): the result on success, else the CNI error JSON the
 * runtime reads, and the failure logged once.
 */

import { type CniErrorJson, toCniErrorJson } from "./errors.ts";
import { log } from "../log/logger.ts";

/** What one CNI command prints and how it ends. */
export interface CommandOutcome {
  /** Text for stdout: the result (possibly empty) or the error JSON. */
  stdout: string;
  /** Exit status: 0 on success, 1 on a CNI error. */
  exitCode: number;
  /** The error, when the command failed. */
  error?: CniErrorJson;
}

/**
 * Runs `run` and turns its result or its error into a {@linkcode CommandOutcome}. The error
 * JSON is printed indented, with `cniVersion` when known, as the plugin always has.
 */
export async function commandOutcome(
  command: string | undefined,
  cniVersion: string | undefined,
  run: () => Promise<string>,
): Promise<CommandOutcome> {
  try {
    return { stdout: await run(), exitCode: 0 };
  } catch (err) {
    const json = toCniErrorJson(err, cniVersion);
    log.always(
      "error",
      `${command} failed: ${json.msg}${json.details ? ` (${json.details})` : ""}`,
    );
    return { stdout: JSON.stringify(json, null, 4), exitCode: 1, error: json };
  }
}
