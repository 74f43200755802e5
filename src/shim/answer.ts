/**
 * @module
 * How the shim ends a run: prints what goes to stdout, or a CNI error object (logged once, as
 * the skeleton logs the plugin's), and returns the exit status.
 */

import { type CniErrorJson, toCniErrorJson } from "../cni/errors.ts";
import { log } from "../log/logger.ts";
import { printCniError, writeStdout } from "../util/output.ts";

/** Prints `stdout` (when not empty); exit status 0. */
export function printAnswer(stdout: string): number {
  if (stdout !== "") writeStdout(stdout);
  return 0;
}

/** Logs and prints `err` as the CNI error object of `command`; exit status 1. */
export function printFailure(command: string, err: unknown, cniVersion?: string): number {
  const error: CniErrorJson = toCniErrorJson(err, cniVersion || undefined);
  log.always(
    "error",
    `${command} failed: ${error.msg}${error.details ? ` (${error.details})` : ""}`,
  );
  printCniError(error);
  return 1;
}
