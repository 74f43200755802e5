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

import { type Exec, type PluginEnv, processExecWith } from "../cni/exec.ts";
import { errorMessage } from "../util/errors.ts";
import { DaemonConfigError } from "./config.ts";
import { recordDelegate } from "./running_delegates.ts";

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

/**
 * The {@linkcode Exec} the daemon's requests run delegates with. Each running delegate is
 * recorded under `socketDir` (see `running_delegates.ts`), so that a daemon killed mid-ADD
 * leaves nothing running that attaches the pod after its shim reported the ADD failed. With
 * `chrootDir`, checks that it is a directory and finds `chroot`; throws DaemonConfigError
 * saying what is missing.
 */
export async function daemonDelegateExec(
  daemonEnv: Record<string, string | undefined>,
  chrootDir: string,
  socketDir: string,
): Promise<Exec> {
  const baseEnv = delegateBaseEnv(daemonEnv);
  const track = (pid: number, env: PluginEnv) => recordDelegate(socketDir, env.containerId, pid);
  if (chrootDir === "") return processExecWith({ baseEnv, track });
  try {
    const info = await Deno.stat(chrootDir);
    if (!info.isDirectory) throw new Error("not a directory");
  } catch (err) {
    throw new DaemonConfigError(
      `"chrootDir" is ${chrootDir}, which cannot be used: ${errorMessage(err)}; mount the ` +
        "host's root there (delegates run with that view of the filesystem)",
    );
  }
  const chroot = await findProgram("chroot", `${daemonEnv.PATH ?? ""}:${DEFAULT_DELEGATE_PATH}`);
  if (!chroot) {
    throw new DaemonConfigError(
      `"chrootDir" is ${chrootDir}, but the chroot program (coreutils) is not in PATH ` +
        `(${daemonEnv.PATH ?? ""}) nor in ${DEFAULT_DELEGATE_PATH}: delegates could not run ` +
        "inside it; install coreutils in the daemon's image, or remove chrootDir",
    );
  }
  return processExecWith({ baseEnv, wrapper: [chroot, chrootDir], root: chrootDir, track });
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
