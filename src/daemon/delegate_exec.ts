/**
 * @module
 * How the daemon runs delegates: as the thin plugin's would run when the runtime starts it,
 * with the request's CNI variables and a PATH, never the daemon's own environment (its
 * Kubernetes service variables, node name, credentials a deployment hands the daemon); and,
 * with `chrootDir`, inside that directory, as Multus's daemon runs them, so a daemon in a
 * container runs the host's plugins with the host's view of the filesystem.
 *
 * Deno cannot chroot a child itself: delegates run through coreutils' `chroot DIR PLUGIN`,
 * found when the daemon starts. The plugin path, CNI_PATH and CNI_NETNS are the host's paths
 * (seen from inside the chroot); the delegate's stdin, stdout and stderr are unchanged.
 */

import { type Exec, processExecWith } from "../cni/exec.ts";
import { errorMessage } from "../util/errors.ts";
import { DaemonConfigError } from "./config.ts";

/** PATH for delegates when the daemon has none; also where `chroot` is looked for. */
export const DEFAULT_DELEGATE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The environment a delegate gets under the request's CNI variables: PATH only (the daemon's,
 * else {@linkcode DEFAULT_DELEGATE_PATH}), as a runtime's plugin run carries little more.
 */
export function delegateBaseEnv(
  daemonEnv: Record<string, string | undefined>,
): Record<string, string> {
  return { PATH: daemonEnv.PATH || DEFAULT_DELEGATE_PATH };
}

/** The daemon's way of running delegates, and what to say about it at start. */
export interface DelegateExec {
  exec: Exec;
  warnings: string[];
}

/**
 * The {@linkcode Exec} the daemon's requests run delegates with. With `chrootDir`, checks that
 * it is a directory and finds `chroot`; throws DaemonConfigError saying what is missing.
 *
 * Delegates die with the daemon (util-linux `setpriv --pdeathsig KILL`, when present): a
 * killed daemon's shims report its ADDs failed and release what they attached, which an
 * orphaned delegate finishing its ADD afterwards would attach again, unseen.
 */
export async function daemonDelegateExec(
  daemonEnv: Record<string, string | undefined>,
  chrootDir: string,
): Promise<DelegateExec> {
  const baseEnv = delegateBaseEnv(daemonEnv);
  const searchPath = `${daemonEnv.PATH ?? ""}:${DEFAULT_DELEGATE_PATH}`;
  const warnings: string[] = [];
  const setpriv = await findProgram("setpriv", searchPath);
  const dieWithDaemon = setpriv ? [setpriv, "--pdeathsig", "KILL", "--"] : [];
  if (!setpriv) {
    warnings.push(
      "setpriv (util-linux) is not in PATH: delegates running when the daemon is killed " +
        "go on; the shims' DEL of those pods may run before they finish",
    );
  }
  if (chrootDir === "") {
    return { exec: processExecWith({ baseEnv, wrapper: dieWithDaemon }), warnings };
  }
  try {
    const info = await Deno.stat(chrootDir);
    if (!info.isDirectory) throw new Error("not a directory");
  } catch (err) {
    throw new DaemonConfigError(
      `"chrootDir" is ${chrootDir}, which cannot be used: ${errorMessage(err)}; mount the ` +
        "host's root there (delegates run with that view of the filesystem)",
    );
  }
  const chroot = await findProgram("chroot", searchPath);
  if (!chroot) {
    throw new DaemonConfigError(
      `"chrootDir" is ${chrootDir}, but the chroot program (coreutils) is not in PATH ` +
        `(${daemonEnv.PATH ?? ""}) nor in ${DEFAULT_DELEGATE_PATH}: delegates could not run ` +
        "inside it; install coreutils in the daemon's image, or remove chrootDir",
    );
  }
  return {
    exec: processExecWith({
      baseEnv,
      wrapper: [...dieWithDaemon, chroot, chrootDir],
      root: chrootDir,
    }),
    warnings,
  };
}

/** The first executable regular file `name` in the directories of `path`. */
async function findProgram(name: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(":")) {
    if (!dir.startsWith("/")) continue;
    const candidate = `${dir.replace(/\/+$/, "")}/${name}`;
    try {
      const info = await Deno.stat(candidate);
      if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) return candidate;
    } catch {
      // not there
    }
  }
  return undefined;
}
