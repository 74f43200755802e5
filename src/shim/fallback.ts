/**
 * @module
 * The shim running a request itself, as the thin plugin would, when the daemon cannot: from
 * the thin configuration the installer writes beside the shim configuration (`thinConfig`),
 * laid over the request as the daemon lays its own configuration over it. The thin plugin
 * and the daemon share the scratch and result caches, so either can undo what the other did.
 *
 * Every such run is logged (stderr and the shim's log file) and recorded in
 * `<daemonSocketDir>/fallbacks.log`, which the daemon counts in its metrics when it is back.
 */

import { CniError, CniErrorCode } from "../cni/errors.ts";
import { runSkel, type SkelOutcome } from "../cni/skel.ts";
import { log } from "../log/logger.ts";
import { applyOverlay, overlayFrom } from "../multus/config/conf_overlay.ts";
import { FALLBACK_RECORD_NAME } from "../multus/config/thick.ts";
import { errorMessage } from "../util/errors.ts";
import { printCniError } from "../util/output.ts";
import { printAnswer, printFailure } from "./answer.ts";
import { type ShimConf, who } from "./shim_conf.ts";

/** One request to run without the daemon. */
export interface FallbackRun {
  env: Record<string, string | undefined>;
  /** The shim configuration as the runtime passed it. */
  stdin: string;
  conf: ShimConf;
  /** Why the daemon did not run it (short, for counters). */
  reason: string;
  /** What happened, for the log. */
  detail: string;
}

/** Runs the request as the thin plugin would, prints its answer; returns the exit status. */
export async function runWithoutDaemon(run: FallbackRun): Promise<number> {
  const outcome = await runHere(run);
  if ("exit" in outcome) return outcome.exit;
  if (!outcome.ok) {
    printCniError(outcome.error);
    return 1;
  }
  return printAnswer(outcome.stdout);
}

/**
 * Runs a DEL as the thin plugin would and returns its outcome, printing nothing: the shim
 * releases what an ADD the daemon died in may have attached, then reports that ADD failed.
 */
export async function releaseWithoutDaemon(run: FallbackRun): Promise<SkelOutcome> {
  const outcome = await runHere({ ...run, env: { ...run.env, CNI_COMMAND: "DEL" } });
  // A DEL always runs (without the thin configuration it uses the scratch cache).
  return "exit" in outcome ? { ok: true, stdout: "" } : outcome;
}

/** Runs the request here; `exit` when it could not run and its failure is printed. */
async function runHere(run: FallbackRun): Promise<SkelOutcome | { exit: number }> {
  const { env, conf, reason } = run;
  const command = env.CNI_COMMAND ?? "";
  log.always(
    "error",
    `warning: multus-shim: the multus daemon did not run ${command} of ${who(env)} ` +
      `(${reason}: ${oneLine(run.detail)}); running it here with ${conf.thinConfig}`,
  );
  await recordFallback(conf.socketDir, { command, reason, containerId: env.CNI_CONTAINERID });
  if (command === "DEL") {
    // What a dead daemon left running for this container would attach it again after the DEL.
    const { stopLeftDelegates } = await import("../daemon/running_delegates.ts");
    const stopped = await stopLeftDelegates(conf.socketDir, env.CNI_CONTAINERID ?? "");
    if (stopped > 0) {
      log.always(
        "error",
        `warning: multus-shim: stopped ${stopped} delegate process(es) the multus daemon left ` +
          `running for ${who(env)}`,
      );
    }
  }

  let text: string;
  try {
    text = applyOverlay(run.stdin, overlayFrom(await Deno.readTextFile(conf.thinConfig)));
  } catch (err) {
    const problem = err instanceof Deno.errors.NotFound
      ? "does not exist"
      : `cannot be used: ${errorMessage(err)}`;
    if (command !== "DEL") {
      return {
        exit: printFailure(
          command,
          new CniError(
            CniErrorCode.TryAgainLater,
            `Cannot ${command} ${who(env)}: the multus daemon did not take it (${reason}) and ` +
              `the thin configuration ${conf.thinConfig} ${problem}`,
            {
              details: "Start the multus daemon, or write the thin configuration " +
                '(named by "thinConfig" in the shim configuration)',
            },
          ),
          conf.cniVersion,
        ),
      };
    }
    // DEL must still release what is attached: the scratch cache says what that is.
    log.always(
      "error",
      `warning: the thin configuration ${conf.thinConfig} ${problem}; DEL uses the shim ` +
        "configuration and the scratch cache",
    );
    text = run.stdin;
  }
  // As the thin plugin's process runs it (plugin/main.ts), with this text as stdin.
  return await runSkel(
    { env, readStdin: () => Promise.resolve(text), log },
    async () => (await import("../multus/run/command.ts")).multusPlugin({ log }),
  );
}

/** Appends one line to the fallback record; a failure is logged, never fatal. */
async function recordFallback(
  socketDir: string,
  entry: { command: string; reason: string; containerId?: string },
): Promise<void> {
  const dir = socketDir.replace(/\/+$/, "") || "/";
  const line = JSON.stringify({ time: new Date().toISOString(), ...entry }) + "\n";
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    // One write in append mode: concurrent shims never interleave their lines.
    await Deno.writeTextFile(`${dir}/${FALLBACK_RECORD_NAME}`, line, {
      append: true,
      create: true,
      mode: 0o600,
    });
  } catch (err) {
    log.always("error", `cannot record the fallback in ${dir}: ${errorMessage(err)}`);
  }
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}…` : flat;
}
