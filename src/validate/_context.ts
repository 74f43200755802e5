/**
 * @module
 * What every check of one `multus validate` run shares: the report, the Multus settings in
 * force, the CNI bin directories (plugin lookups are cached), the conf dir, and the
 * NetworkAttachmentDefinitions given.
 */

import { findPlugin } from "../cni/exec.ts";
import type { NetworkConfig } from "../cni/network_config.ts";
import { configFiles, findConfigByName, loadConfigFromPath } from "../multus/config/conf_dir.ts";
import type { Delegate } from "../multus/plan/delegate.ts";
import { type MultusNetConf, NETCONF_DEFAULTS } from "../multus/config/netconf.ts";
import { join } from "../util/path.ts";
import { log } from "../log/logger.ts";
import type { Report, Where } from "./_findings.ts";
import { closestKey } from "./_suggest.ts";
import { errorMessage } from "../util/errors.ts";

/** The Multus settings the checks use (from the Multus config, or Multus's defaults). */
export type Settings = Pick<
  MultusNetConf,
  | "multusNamespace"
  | "namespaceIsolation"
  | "globalNamespaces"
  | "systemNamespaces"
  | "clusterNetwork"
  | "defaultNetworks"
  | "kubeconfig"
>;

/** Multus's defaults, used when no Multus config could be loaded. */
export const DEFAULT_SETTINGS: Settings = {
  multusNamespace: NETCONF_DEFAULTS.multusNamespace,
  namespaceIsolation: false,
  globalNamespaces: [...NETCONF_DEFAULTS.globalNamespaces],
  systemNamespaces: [...NETCONF_DEFAULTS.systemNamespaces],
  clusterNetwork: "",
  defaultNetworks: [],
  kubeconfig: "",
};

/** A NetworkAttachmentDefinition given on the command line, checked. */
export interface NadEntry {
  /** `namespace/name`. */
  label: string;
  namespace: string;
  name: string;
  where: Where;
  /** Its CNI configuration; undefined when it could not be obtained. */
  config?: NetworkConfig;
  /** True when the NAD or its configuration has errors (ADD with it fails). */
  broken: boolean;
  /** The file its configuration came from when it is not in spec.config. */
  configFile?: string;
}

/** The networks every pod gets from the Multus config. */
export interface ClusterNetworks {
  /** Static delegates (delegates mode) or the cluster network; undefined = unknown. */
  master?: Delegate;
  /** Delegates mode: the static extra delegates; else the resolved `defaultNetworks`. */
  extra: Delegate[];
  /** True when `extra` comes from `defaultNetworks` (skipped for system namespaces). */
  fromDefaultNetworks: boolean;
  /** Capabilities the Multus config declares (what the runtime passes it). */
  multusCapabilities?: Record<string, boolean>;
}

/** What a plugin lookup found. */
export type PluginLookup =
  | { found: true; path: string }
  | { found: false; message: string; hint: string };

/** A configuration file of the conf dir, parsed. */
interface ConfDirEntry {
  path: string;
  config?: NetworkConfig;
  error?: unknown;
}

/** Shared state of one run. */
export class Context {
  /** Where findings go. */
  readonly report: Report;
  /** CNI bin directories searched for plugins, in order. */
  readonly binDirs: string[];
  /** Directory of configurations named by NADs without spec.config and by network names. */
  readonly confDir: string;
  /** The Multus settings in force. */
  readonly settings: Settings;
  /** The given NADs by `namespace/name`. */
  readonly nads: Map<string, NadEntry> = new Map();
  /** The cluster networks, once resolved. */
  cluster: ClusterNetworks = { extra: [], fromDefaultNetworks: false };
  #plugins = new Map<string, Promise<PluginLookup>>();
  #installed?: Promise<string[]>;
  #confDir?: Promise<ConfDirEntry[]>;
  #confDirExists?: Promise<boolean>;

  constructor(report: Report, options: { binDirs: string[]; confDir: string; settings: Settings }) {
    this.report = report;
    this.binDirs = options.binDirs;
    this.confDir = options.confDir;
    this.settings = options.settings;
  }

  /** Looks a plugin up in the bin dirs as the plugin does at ADD; it must be executable. */
  lookupPlugin(type: string): Promise<PluginLookup> {
    let lookup = this.#plugins.get(type);
    if (!lookup) {
      lookup = findExecutable(type, this.binDirs, () => this.#installedPlugins());
      this.#plugins.set(type, lookup);
    }
    return lookup;
  }

  /** Names of the executable files in the bin dirs (for "did you mean"). */
  #installedPlugins(): Promise<string[]> {
    this.#installed ??= (async () => {
      const names = new Set<string>();
      for (const dir of this.binDirs) {
        try {
          for await (const entry of Deno.readDir(dir)) {
            if (entry.isDirectory || entry.name.startsWith(".")) continue;
            const info = await Deno.stat(join(dir, entry.name)).catch(() => undefined);
            if (info?.isFile && info.mode !== null && (info.mode & 0o111) !== 0) {
              names.add(entry.name);
            }
          }
        } catch {
          // a missing bin dir is reported on its own
        }
      }
      return [...names].sort();
    })();
    return this.#installed;
  }

  /**
   * The configuration in the conf dir whose `name` is `name` (the plugin's lookup), with the
   * file it is in; undefined when there is none. Files that cannot be parsed are reported
   * once, as warnings: the lookup skips them.
   */
  async findInConfDir(name: string): Promise<{ config: NetworkConfig; file: string } | undefined> {
    const entries = await this.#scanConfDir();
    const config = await findConfigByName(this.confDir, name, log);
    if (!config) return undefined;
    const file = entries.find((e) => e.config?.raw === config.raw)?.path ?? this.confDir;
    return { config, file };
  }

  /** True when the conf dir exists on this machine. */
  confDirExists(): Promise<boolean> {
    this.#confDirExists ??= Deno.stat(this.confDir).then((i) => i.isDirectory, () => false);
    return this.#confDirExists;
  }

  #scanConfDir(): Promise<ConfDirEntry[]> {
    this.#confDir ??= (async () => {
      let paths: string[];
      try {
        paths = await configFiles(this.confDir);
      } catch (err) {
        this.report.fromError({ file: this.confDir, path: "" }, err, { severity: "warning" });
        return [];
      }
      const entries: ConfDirEntry[] = [];
      for (const path of paths) {
        try {
          entries.push({ path, config: await loadConfigFromPath(path) });
        } catch (err) {
          entries.push({ path, error: err });
          this.report.fromError({ file: path, path: "" }, err, {
            severity: "warning",
            hint: "The plugin skips this file when it looks networks up by name in confDir " +
              "(Multus would fail the lookup); fix or remove it",
          });
        }
      }
      return entries;
    })();
    return this.#confDir;
  }
}

async function findExecutable(
  type: string,
  dirs: string[],
  installed: () => Promise<string[]>,
): Promise<PluginLookup> {
  let path: string;
  try {
    path = await findPlugin(type, dirs);
  } catch (err) {
    const shown = dirs.length > 0 ? dirs.join(", ") : "(none)";
    if (/not a plugin name/.test(errorMessage(err))) {
      return {
        found: false,
        message: errorMessage(err),
        hint: 'Set type to the plugin\'s binary name (e.g. "macvlan"), not a path',
      };
    }
    const suggestion = closestKey(type, await installed());
    if (suggestion) {
      return {
        found: false,
        message: `plugin "${type}" not found in the CNI bin dirs (${shown}); did you mean ` +
          `"${suggestion}"?`,
        hint: `Set the type to "${suggestion}" (installed), or install the "${type}" plugin ` +
          "binary in the CNI bin dir",
      };
    }
    return {
      found: false,
      message: `plugin "${type}" not found in the CNI bin dirs (${shown})`,
      hint: `Install the "${type}" plugin binary in the CNI bin dir, fix a misspelt type, ` +
        "or pass --bin-dir <dir> for the directory holding the node's plugins",
    };
  }
  try {
    const info = await Deno.stat(path);
    if (info.mode !== null && (info.mode & 0o111) === 0) {
      return {
        found: false,
        message: `plugin "${type}" at ${path} is not executable`,
        hint: `chmod +x ${path}`,
      };
    }
  } catch {
    // found a moment ago; let ADD tell
  }
  return { found: true, path };
}
