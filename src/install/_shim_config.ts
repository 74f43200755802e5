/**
 * @module
 * Daemon mode's two configs, made from the thin config {@linkcode renderMultusConf} renders:
 * the shim config, the runtime's first config (`type: multus-shim`), and the thin config
 * `multus.d/thin.conf` the shim falls back to when the daemon cannot answer. Both carry the
 * same network keys, so the daemon and a fallback run plan the same networks.
 */

import { flatConfText, type RenderedConf, renderedConf } from "./_multus_conf.ts";

/** The thin config's file name in `<cni-conf-dir>/multus.d/` (the shim's default). */
export const THIN_CONF_NAME = "thin.conf";

/** Keys the shim config sets itself. */
const OWN_KEYS = new Set(["type", "capabilities"]);

/** Keys only the thin config carries (host paths the daemon may not see). */
const THIN_ONLY_KEYS = new Set(["kubeconfig", "readinessindicatorfile"]);

/** Where the daemon is and where the fallback config is, as the host sees them. */
export interface ShimConfOptions {
  /** `daemonSocketDir`: the daemon's socket directory. */
  socketDir: string;
  /** `thinConfig`: the host path of the thin config. */
  thinConfigHostPath: string;
}

/**
 * The thin config as the shim reads it: always the single-plugin form with the keys at the
 * top level (the shim lays those keys over the request), whatever the cniVersion.
 */
export function renderThinConf(thin: RenderedConf): string {
  return flatConfText(thin.cniVersion, thin.name, thin.plugin);
}

/**
 * The shim config: Multus's shim keys (`type: multus-shim`, `daemonSocketDir`), ours
 * (`thinConfig`), the thin config's capabilities (the runtime passes only the runtimeConfig a
 * config declares) and its network keys, except two host paths a daemon in a container may not
 * see: `kubeconfig` (the daemon reaches the API with its own credentials: its pod's service
 * account, or `kubeconfig` in its own configuration) and `readinessindicatorfile` (a daemon
 * that cannot see it would fail every ADD after waiting for it; its own configuration names
 * the file as it sees it, e.g. under its chrootDir). Same file name rule as the thin config
 * (`.conflist` from cniVersion 1.0.0).
 */
export function renderShimConf(thin: RenderedConf, options: ShimConfOptions): RenderedConf {
  const plugin: Record<string, unknown> = { type: "multus-shim" };
  if (thin.plugin.capabilities !== undefined) plugin.capabilities = thin.plugin.capabilities;
  plugin.daemonSocketDir = options.socketDir;
  plugin.thinConfig = options.thinConfigHostPath;
  for (const [key, value] of Object.entries(thin.plugin)) {
    if (OWN_KEYS.has(key) || THIN_ONLY_KEYS.has(key)) continue;
    plugin[key] = value;
  }
  return renderedConf(thin.cniVersion, thin.name, plugin);
}
