/**
 * @module
 * How the daemon runs delegates: as the thin plugin's would run when the runtime starts it,
 * with the request's CNI variables and a PATH, never the daemon's own environment (its
 * Kubernetes service variables, node name, credentials a deployment hands the daemon).
 */

import { type Exec, processExecWith } from "../cni/exec.ts";

/** PATH for delegates when the daemon has none. */
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

/** The {@linkcode Exec} the daemon's requests run delegates with. */
export function daemonDelegateExec(daemonEnv: Record<string, string | undefined>): Exec {
  return processExecWith({ baseEnv: delegateBaseEnv(daemonEnv) });
}
