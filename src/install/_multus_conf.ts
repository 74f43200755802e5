/**
 * @module
 * Renders `00-multus.conf` (or `00-multus.conflist` for cniVersion 1.0.0 and later, like
 * Multus's thin_entrypoint) from the primary network config.
 *
 * Unlike thin_entrypoint, the primary config is not copied into `delegates`: `clusterNetwork`
 * holds its path, so the plugin reads it at every ADD and an edit of the primary config takes
 * effect without regenerating anything (except with `--rename-conf-file`: see
 * {@linkcode MultusConfOptions.embedPrimary}). `--multus-cni-conf-dir` is written as `confDir` (the
 * key the plugin reads), not as thin_entrypoint's ignored `cniConf` (Multus issue #1506).
 */

import { isObject } from "./_primary.ts";
import { versionAtLeast } from "../cni/version.ts";

/** Multus's default `confDir`; written only when the configured one differs. */
export const DEFAULT_CONF_DIR = "/etc/cni/multus/net.d";

/** Everything {@linkcode renderMultusConf} needs besides the primary config. */
export interface MultusConfOptions {
  /** Host path of the primary config file (becomes `clusterNetwork`). */
  primaryHostPath: string;
  /** Host path of the kubeconfig (becomes `kubeconfig`). */
  kubeconfigHostPath: string;
  /** `--cni-version`. */
  cniVersion: string;
  /** `--force-cni-version`. */
  forceCniVersion: boolean;
  /** `--override-network-name`. */
  overrideNetworkName: boolean;
  /** `--namespace-isolation`. */
  namespaceIsolation: boolean;
  /** `--global-namespaces`. */
  globalNamespaces: string;
  /** `--multus-log-to-stderr`. */
  logToStderr: boolean;
  /** `--multus-log-level` (already validated, lower case). */
  logLevel: string;
  /** `--multus-log-file`. */
  logFile: string;
  /** `--additional-bin-dir`. */
  binDir: string;
  /** Host path of `--multus-cni-conf-dir`. */
  confDirHostPath: string;
  /** `--readiness-indicator-file`. */
  readinessIndicatorFile: string;
  /**
   * Copy the primary config into `delegates` (as thin_entrypoint does) instead of referencing
   * it: used with `--rename-conf-file`, whose `<name>.old` file no longer says by its
   * extension whether it holds a list.
   */
  embedPrimary?: boolean;
}

/** A rendered Multus config. */
export interface RenderedConf {
  /** `00-multus.conf` or `00-multus.conflist`. */
  fileName: "00-multus.conf" | "00-multus.conflist";
  /** The file's content (pretty JSON, trailing newline). */
  text: string;
  /** The cniVersion written. */
  cniVersion: string;
  /** The network's `name`. */
  name: string;
  /** The multus plugin's keys (`type` first), as in the file. */
  plugin: Record<string, unknown>;
}

/**
 * Builds the Multus config for `primary`.
 *
 * @param primary The parsed primary network config.
 * @param options Paths and flag values.
 * @throws {Error} When the primary config has no usable cniVersion or name, or its cniVersion
 * differs from `--cni-version` without `--force-cni-version`. The message names the file.
 */
export function renderMultusConf(
  primary: Record<string, unknown>,
  options: MultusConfOptions,
): RenderedConf {
  const where = options.primaryHostPath;
  const primaryVersion = primary.cniVersion;
  if (typeof primaryVersion !== "string" || primaryVersion === "") {
    throw new Error(`The primary CNI config ${where} has no cniVersion`);
  }
  let cniVersion = primaryVersion;
  if (options.forceCniVersion) {
    cniVersion = options.cniVersion;
  } else if (options.cniVersion !== "" && options.cniVersion !== primaryVersion) {
    throw new Error(
      `--cni-version is "${options.cniVersion}" but the primary CNI config ${where} has ` +
        `cniVersion "${primaryVersion}": add --force-cni-version to use ${options.cniVersion}`,
    );
  }

  let name = "multus-cni-network";
  if (options.overrideNetworkName) {
    if (typeof primary.name !== "string" || primary.name === "") {
      throw new Error(`The primary CNI config ${where} has no name (--override-network-name)`);
    }
    name = primary.name;
  }

  const plugin: Record<string, unknown> = { type: "multus" };
  const capabilities = primaryCapabilities(primary);
  if (Object.keys(capabilities).length > 0) plugin.capabilities = capabilities;
  if (options.namespaceIsolation) plugin.namespaceIsolation = true;
  if (options.globalNamespaces !== "") plugin.globalNamespaces = options.globalNamespaces;
  if (!options.logToStderr) plugin.logToStderr = false;
  if (options.logLevel !== "") plugin.logLevel = options.logLevel;
  if (options.logFile !== "") plugin.logFile = options.logFile;
  if (options.binDir !== "") plugin.binDir = options.binDir;
  if (options.confDirHostPath !== DEFAULT_CONF_DIR) plugin.confDir = options.confDirHostPath;
  if (options.readinessIndicatorFile !== "") {
    plugin.readinessindicatorfile = options.readinessIndicatorFile;
  }
  plugin.kubeconfig = options.kubeconfigHostPath;
  if (options.embedPrimary) plugin.delegates = [primary];
  else plugin.clusterNetwork = options.primaryHostPath;

  return renderedConf(cniVersion, name, plugin);
}

/**
 * The file for one plugin: `00-multus.conflist` holding it for cniVersion 1.0.0 and later
 * (like thin_entrypoint), else `00-multus.conf` with its keys at the top level.
 */
export function renderedConf(
  cniVersion: string,
  name: string,
  plugin: Record<string, unknown>,
): RenderedConf {
  if (versionAtLeast(cniVersion, "1.0.0")) {
    const list = { cniVersion, name, plugins: [plugin] };
    return {
      fileName: "00-multus.conflist",
      text: JSON.stringify(list, null, 2) + "\n",
      cniVersion,
      name,
      plugin,
    };
  }
  return {
    fileName: "00-multus.conf",
    text: flatConfText(cniVersion, name, plugin),
    cniVersion,
    name,
    plugin,
  };
}

/** A single-plugin config with the plugin's keys at the top level (pretty JSON, newline). */
export function flatConfText(
  cniVersion: string,
  name: string,
  plugin: Record<string, unknown>,
): string {
  const { type, ...rest } = plugin;
  return JSON.stringify({ cniVersion, name, type, ...rest }, null, 2) + "\n";
}

/**
 * The capabilities the runtime must give Multus: for a list, the union of its plugins'
 * capabilities (a later plugin's value wins, false included, as in thin_entrypoint); else the
 * config's own. Keys are sorted so the output is stable.
 */
export function primaryCapabilities(primary: Record<string, unknown>): Record<string, boolean> {
  const merged: Record<string, unknown> = {};
  if (Array.isArray(primary.plugins)) {
    for (const p of primary.plugins) {
      if (isObject(p) && isObject(p.capabilities)) Object.assign(merged, p.capabilities);
    }
  } else if (isObject(primary.capabilities)) {
    Object.assign(merged, primary.capabilities);
  }
  const out: Record<string, boolean> = {};
  for (const key of Object.keys(merged).sort()) {
    if (typeof merged[key] === "boolean") out[key] = merged[key] as boolean;
  }
  return out;
}
