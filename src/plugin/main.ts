/**
 * @module
 * The thin plugin: one CNI request per process. The runtime's environment and stdin go to
 * the CNI skeleton with the Multus plugin (loaded after VERSION, which needs none); the
 * answer goes to stdout, a failure as the CNI error object.
 */

import { runSkel } from "../cni/skel.ts";
import { log } from "../log/logger.ts";
import { printCniError, writeStdout } from "../util/output.ts";
import { readStdinText } from "../util/stdin.ts";

/**
 * Runs the request this process was started for; returns the exit code. `readStdin` gives
 * the configuration when the caller has read it already.
 */
export async function runPlugin(
  readStdin: () => Promise<string> = () => Promise.resolve(readStdinText()),
): Promise<number> {
  const outcome = await runSkel(
    {
      env: Deno.env.toObject(),
      readStdin,
      log,
    },
    async () => (await import("../multus/run/command.ts")).multusPlugin({ log }),
  );
  if (!outcome.ok) {
    printCniError(outcome.error);
    return 1;
  }
  if (outcome.stdout !== "") writeStdout(outcome.stdout);
  return 0;
}
