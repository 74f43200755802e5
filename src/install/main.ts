/**
 * @module
 * `multus install`: the node installer run by the DaemonSet, a drop-in for Multus's
 * `thin_entrypoint` (same flags). It installs the plugin binary, writes `00-multus.conf(list)`
 * in front of the primary network config and the plugin's kubeconfig, and then keeps both up
 * to date until it is stopped. With `--mode=daemon` the first config runs `multus-shim`
 * (Multus thick mode) and `multus.d/thin.conf` holds the thin config it falls back to. Every write is atomic and skipped when nothing changed. Human
 * output goes to stderr; `--help` goes to stdout.
 */

import { dirname } from "../util/path.ts";
import { errorMessage } from "../util/errors.ts";
import { FlagError, type InstallFlags, installHelp, parseInstallFlags } from "./flags.ts";
import { InstallError, InstallRun, writeErr } from "./_run.ts";
import { checkInputs, ensureDir } from "./_inputs.ts";
import { copyPluginBinary } from "./_copy_binary.ts";
import { writeKubeconfig } from "./_write_kubeconfig.ts";
import { writeMultusConfig } from "./_write_multus_config.ts";
import { writeDaemonConfig } from "./_write_daemon_config.ts";
import { cleanup, cleanupIfAsked } from "./_cleanup.ts";
import { Waiter } from "./_waiter.ts";

/** Exit status for a command line that cannot be used. */
export const EXIT_USAGE = 2;
/** Exit status for a failure (missing directory, unreadable service account, …). */
export const EXIT_FAILURE = 1;

/**
 * Runs `multus install` with the arguments that follow the subcommand.
 *
 * @param args The flags (see `multus install --help`).
 * @returns The exit status: 0 after a clean stop (signal) or a one-shot run, 1 on failure,
 * 2 for a bad command line.
 */
export async function runInstall(args: string[]): Promise<number> {
  let flags: InstallFlags;
  try {
    flags = parseInstallFlags(args);
  } catch (err) {
    if (!(err instanceof FlagError) && !(err instanceof TypeError)) throw err;
    writeErr(`multus install: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (flags.help) {
    Deno.stdout.writeSync(new TextEncoder().encode(installHelp()));
    return 0;
  }
  return await withSignals(new InstallRun(flags, Deno.env.toObject()));
}

/**
 * Runs the installer with SIGTERM and SIGINT handled: the first stops it (after cleanup when
 * asked), the second exits at once.
 */
async function withSignals(run: InstallRun): Promise<number> {
  const waiter = new Waiter();
  const onSignal = (signal: Deno.Signal) => () => stop(run, waiter, signal);
  const listeners: [Deno.Signal, () => void][] = [
    ["SIGTERM", onSignal("SIGTERM")],
    ["SIGINT", onSignal("SIGINT")],
  ];
  for (const [signal, fn] of listeners) Deno.addSignalListener(signal, fn);
  try {
    return await install(run, waiter);
  } finally {
    for (const [signal, fn] of listeners) Deno.removeSignalListener(signal, fn);
  }
}

/** The installer's steps in order, then the watch loop (or the one-shot ending). */
async function install(run: InstallRun, waiter: Waiter): Promise<number> {
  const flags = run.flags;
  try {
    await checkInputs(run);
    if (!flags.skipMultusBinaryCopy) await copyPluginBinary(run);
    await ensureDir(run, dirname(run.kubeconfigPath));
    await ensureDir(run, run.multusCniConfDir);
    await writeKubeconfig(run);
    await writeDaemonConfig(run);
  } catch (err) {
    if (!(err instanceof InstallError)) throw err;
    run.fail(err.message);
    await cleanupIfAsked(run);
    return EXIT_FAILURE;
  }

  await reportPodResources(run);
  const state = await writeMultusConfig(run);
  if (flags.skipConfigWatch) {
    if (state !== "ok") {
      run.fail(`${run.lastProblem} (with --skip-config-watch nothing waits for it)`);
      await cleanupIfAsked(run);
      return EXIT_FAILURE;
    }
    if (!flags.cleanupConfigOnExit) return 0;
    run.say(
      "Waiting for SIGTERM or SIGINT to remove the files written (--cleanup-config-on-exit)",
    );
    while (!waiter.stopping) await waiter.sleep(3_600_000);
    await cleanup(run);
    return 0;
  }

  await watchLoop(run, waiter);
  await cleanupIfAsked(run);
  return 0;
}

/** Keeps the kubeconfig and the Multus config up to date until a signal stops the run. */
async function watchLoop(run: InstallRun, waiter: Waiter): Promise<void> {
  run.say(
    `Watching ${run.autoconfDir} and the service account every ${run.flags.pollIntervalMs} ms` +
      " (and on file events); stop with SIGTERM",
  );
  waiter.watch([...new Set([run.confDir, run.autoconfDir])], (message) => run.say(message));
  try {
    while (!waiter.stopping) {
      await waiter.sleep(run.flags.pollIntervalMs);
      if (waiter.stopping) break;
      try {
        await writeKubeconfig(run);
      } catch (err) {
        run.sayOnce("kubeconfig", errorMessage(err));
      }
      try {
        await writeDaemonConfig(run);
      } catch (err) {
        run.sayOnce("daemon-config", `${errorMessage(err)}; the installed one stays`);
      }
      await writeMultusConfig(run);
    }
  } finally {
    waiter.close();
  }
}

/**
 * Says whether the kubelet's PodResources socket exists (the DaemonSet mounts its folder for
 * this): without it, networks whose NAD has a `resourceName` (SR-IOV, DPDK) cannot get a
 * device, unless the device checkpoint file is there.
 */
async function reportPodResources(run: InstallRun): Promise<void> {
  const socket = `${run.flags.hostPrefix}/var/lib/kubelet/pod-resources/kubelet.sock`;
  try {
    await Deno.stat(socket);
    run.say(`kubelet PodResources socket found (${socket}): device networks can be attached`);
  } catch {
    run.say(
      `kubelet PodResources socket not found at ${socket}: networks with a resourceName ` +
        "(SR-IOV, DPDK) will use the kubelet's device checkpoint file or fail ADD",
    );
  }
}

/** The first signal stops the run; a second one exits at once. */
function stop(run: InstallRun, waiter: Waiter, signal: Deno.Signal): void {
  if (waiter.stopping) {
    writeErr(`multus install: second ${signal}: exiting now\n`);
    Deno.exit(EXIT_FAILURE);
  }
  waiter.stopping = true;
  run.say(
    `Received ${signal}: stopping` +
      (run.flags.cleanupConfigOnExit
        ? " and removing the files written (--cleanup-config-on-exit)"
        : "; the Multus config and kubeconfig stay in place for the plugin"),
  );
  waiter.wake();
}
