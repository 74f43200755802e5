/**
 * @module
 * Installer step (daemon mode, `--daemon-config-file`): check a daemon configuration as
 * `multus daemon` will, and install it as `<cni-conf-dir>/multus.d/daemon-config.json`, the
 * daemon's default `--config`, atomically and only when it changed. For nodes whose daemon
 * runs on the host (the systemd unit); the DaemonSet's daemon reads its ConfigMap instead.
 */

import { join } from "../util/path.ts";
import { errorMessage } from "../util/errors.ts";
import { installText } from "./_binary.ts";
import { lineDiff } from "./_diff.ts";
import { InstallError, type InstallRun, readText } from "./_run.ts";

/** The daemon configuration's file name in `<cni-conf-dir>/multus.d/`. */
export const DAEMON_CONFIG_NAME = "daemon-config.json";

const DAEMON_CONFIG_MODE = 0o644;

/**
 * Installs `--daemon-config-file` when given. Throws an {@linkcode InstallError} naming the
 * file (and the key) when it cannot be read or the daemon would refuse it.
 */
export async function writeDaemonConfig(run: InstallRun): Promise<void> {
  const source = run.flags.daemonConfigFile;
  if (source === "") return;
  const text = await readText(source);
  if (text === undefined) {
    throw new InstallError(`--daemon-config-file ${source} cannot be read`);
  }
  // Loaded only when asked: the daemon's config checker brings zod, which every installer
  // start would pay for otherwise.
  const { DaemonConfigError, parseDaemonConfig } = await import("../daemon/config.ts");
  let socketDir: string;
  try {
    socketDir = parseDaemonConfig(text, { file: source, nodeName: "" }).socketDir;
  } catch (err) {
    if (!(err instanceof DaemonConfigError)) throw err;
    throw new InstallError(`--daemon-config-file: ${err.message}`);
  }
  const shimSide = run.flags.daemonSocketDir.replace(/\/+$/, "") || "/";
  if (socketDir !== shimSide) {
    run.sayOnce(
      "daemon-socket",
      `Warning: ${source} has socketDir ${socketDir} but the shim config says ` +
        `daemonSocketDir ${run.flags.daemonSocketDir} (--daemon-socket-dir): on this node ` +
        "the shim will not find the daemon and will run every request itself",
    );
  }

  const target = join(run.confDir, "multus.d", DAEMON_CONFIG_NAME);
  const before = await readText(target);
  let changed: boolean;
  try {
    changed = (await installText(target, text, DAEMON_CONFIG_MODE)).changed;
  } catch (err) {
    throw new InstallError(errorMessage(err));
  }
  run.owned.set(target, text);
  if (!changed) {
    if (run.said.has(`written:${target}`)) return;
    run.said.add(`written:${target}`);
    run.say(`${target} is up to date`);
    return;
  }
  run.said.add(`written:${target}`);
  run.say(
    `${before === undefined ? "Wrote" : "Updated"} ${target} (restart the daemon to use it):`,
    lineDiff(before, text),
  );
}
