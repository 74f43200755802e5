/**
 * @module
 * Network configurations as ADD would use them: every plugin (and IPAM plugin) present in
 * the bin dirs, a network name and cniVersion the plugin accepts; NetworkAttachmentDefinitions
 * (spec.config, or the conf dir file of the same name); and the networks the Multus config
 * names (`clusterNetwork`, `defaultNetworks`), resolved as `k8s_networks.ts` does.
 */

import { type NetworkConfig, parseNetworkConfig, withTopLevelKeys } from "../cni/network_config.ts";
import { parseJsonc } from "../cni/raw_json.ts";
import { validateNetworkName } from "../cni/request.ts";
import { isSupportedVersion, SUPPORTED_VERSIONS } from "../cni/version.ts";
import { configFiles, loadConfigFromPath } from "../multus/config/conf_dir.ts";
import type { Delegate } from "../multus/plan/delegate.ts";
import type { Context, NadEntry } from "./_context.ts";
import { type Where, within } from "./_findings.ts";
import { isObject, type NadInput } from "./_inputs.ts";
import { networkConfigErrors } from "./_every_error.ts";
import { checkNadFields } from "./_unknown_fields.ts";

/** The API group/version of NetworkAttachmentDefinitions. */
export const NAD_API_VERSION = "k8s.cni.cncf.io/v1";

/** Options of {@linkcode checkNetworkConfig}. */
export interface NetworkCheckOptions {
  /** The configuration's root (file and path). */
  where: Where;
  /** Plugin indexes not to look up (the multus plugin of the Multus conflist itself). */
  skipPlugins?: number[];
  /** Check the plugin binaries only (name and cniVersion are checked elsewhere). */
  pluginsOnly?: boolean;
}

/**
 * Checks a parsed network configuration as ADD would use it: its name, its cniVersion, and
 * every plugin and IPAM plugin in the bin dirs.
 * Returns the number of errors found.
 */
export async function checkNetworkConfig(
  ctx: Context,
  config: NetworkConfig,
  options: NetworkCheckOptions,
): Promise<number> {
  const { where } = options;
  const before = ctx.report.errors;
  if (!options.pluginsOnly) checkNameAndVersion(ctx, { config, where });
  for (const [i, plugin] of config.plugins.entries()) {
    if (options.skipPlugins?.includes(i)) continue;
    const at = config.isList ? within(where, `plugins[${i}]`) : where;
    await checkPluginBinary(ctx, { type: plugin.type, where: within(at, "type") });
    let parsed: unknown;
    try {
      parsed = parseJsonc(plugin.raw);
    } catch {
      continue; // parseNetworkConfig read it; cannot happen
    }
    const ipam = isObject(parsed) ? parsed.ipam : undefined;
    if (isObject(ipam) && typeof ipam.type === "string" && ipam.type !== "") {
      await checkPluginBinary(ctx, { type: ipam.type, where: within(at, "ipam.type") });
    }
  }
  return ctx.report.errors - before;
}

function checkNameAndVersion(
  { report }: Context,
  { config, where }: { config: NetworkConfig; where: Where },
): void {
  try {
    validateNetworkName(config.name);
  } catch (err) {
    report.fromError(within(where, "name"), err, {
      hint: 'Give the network a "name" of letters, digits, "_", "." and "-" ' +
        "(starting with a letter or digit)",
    });
  }
  if (config.cniVersion === "") {
    report.warning(
      within(where, "cniVersion"),
      `network "${config.name}" has no cniVersion: its plugins get CNI 0.1.0 semantics`,
      { hint: `Set "cniVersion" (e.g. "1.0.0") to the version its plugins support` },
    );
  } else if (!isSupportedVersion(config.cniVersion)) {
    report.error(
      within(where, "cniVersion"),
      `network "${config.name}" has cniVersion "${config.cniVersion}", which is not a CNI version this plugin supports (${
        SUPPORTED_VERSIONS.join(", ")
      })`,
      { hint: "Use one of the supported versions that its plugins also support" },
    );
  }
}

async function checkPluginBinary(
  ctx: Context,
  { type, where }: { type: string; where: Where },
): Promise<void> {
  const lookup = await ctx.lookupPlugin(type);
  if (!lookup.found) ctx.report.error(where, lookup.message, { hint: lookup.hint });
}

/** IPAM types of a network's plugins, with their configuration objects. */
export function ipamConfigs(config: NetworkConfig): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const plugin of config.plugins) {
    try {
      const parsed = parseJsonc(plugin.raw);
      if (isObject(parsed) && isObject(parsed.ipam)) out.push(parsed.ipam);
    } catch {
      // unreadable plugin text: parseNetworkConfig would have failed first
    }
  }
  return out;
}

/**
 * Checks a NetworkAttachmentDefinition: apiVersion, name, spec.config (or the conf dir file
 * named like the NAD when spec.config is empty), and the configuration as ADD uses it.
 * Returns the entry to index, or undefined when it has no name.
 */
export async function checkNad(ctx: Context, input: NadInput): Promise<NadEntry | undefined> {
  const { report } = ctx;
  const { where, object } = input;
  checkNadFields(report, object, where);
  if (object.apiVersion !== NAD_API_VERSION) {
    report.error(
      within(where, "apiVersion"),
      `apiVersion is ${
        JSON.stringify(object.apiVersion ?? null)
      }, but NetworkAttachmentDefinitions are "${NAD_API_VERSION}"`,
      { hint: `Set apiVersion: ${NAD_API_VERSION}` },
    );
  }
  const metadata = isObject(object.metadata) ? object.metadata : {};
  const name = typeof metadata.name === "string" ? metadata.name : "";
  if (name === "") {
    report.error(within(where, "metadata.name"), "the NetworkAttachmentDefinition has no name", {
      hint: "Set metadata.name: pods name the network by it",
    });
    return undefined;
  }
  const namespace = typeof metadata.namespace === "string" && metadata.namespace !== ""
    ? metadata.namespace
    : "default";
  const label = `${namespace}/${name}`;
  const entry: NadEntry = { label, namespace, name, where, broken: false };
  const before = report.errors;

  const spec = object.spec;
  const text = isObject(spec) ? spec.config : undefined;
  const configWhere = within(where, "spec.config");
  if (text !== undefined && text !== null && typeof text !== "string") {
    report.error(
      configWhere,
      "spec.config must be a string holding the CNI configuration JSON, got " +
        (Array.isArray(text)
          ? "a list"
          : typeof text === "object"
          ? "an object"
          : `a ${typeof text}`),
      { hint: "In YAML write it as a block scalar: `config: |` followed by the JSON, indented" },
    );
  } else if (typeof text === "string" && text.trim() !== "") {
    const hint = `Fix spec.config of the NetworkAttachmentDefinition (kubectl -n ${namespace} ` +
      `edit network-attachment-definition ${name})`;
    const errors = networkConfigErrors(text, "spec.config");
    for (const err of errors) report.fromError(where, err, { field: true, hint });
    if (errors.length === 0) {
      try {
        let config = parseNetworkConfig(text, "spec.config");
        if (config.name === "") config = withTopLevelKeys(config, { name }, "spec.config");
        entry.config = config;
        await checkNetworkConfig(ctx, config, { where: configWhere });
      } catch (err) {
        report.fromError(where, err, { field: true, hint });
      }
    }
  } else {
    const found = await ctx.findInConfDir(name);
    if (found) {
      entry.config = found.config;
      entry.configFile = found.file;
      await checkNetworkConfig(ctx, found.config, { where: { file: found.file, path: "" } });
    } else {
      const missingDir = await ctx.confDirExists() ? "" : " (the directory does not exist here)";
      report.error(
        configWhere,
        `the NetworkAttachmentDefinition has no spec.config and no file in ${ctx.confDir}${missingDir} has "name": "${name}"`,
        {
          hint: `Put the CNI configuration in spec.config, or a config file named "${name}" ` +
            `in ${ctx.confDir} on every node (pass --conf-dir to check another directory)`,
        },
      );
    }
  }
  entry.broken = report.errors > before;
  return entry;
}

/**
 * Resolves a network the Multus config names (`clusterNetwork`, `defaultNetworks` entry) as
 * the plugin does: a path (file, or the first config of a directory); else the NAD
 * `<multusNamespace>/<value>` among the given ones; else the conf dir config named `value`.
 * Reports what fails at `where` and returns undefined then (also when the configuration
 * found has errors).
 */
export async function resolveNamedNetwork(
  ctx: Context,
  value: string,
  { where, key }: { where: Where; key: "clusterNetwork" | "defaultNetworks" },
): Promise<Delegate | undefined> {
  const { report, settings } = ctx;
  if (value.includes("/")) {
    let config: NetworkConfig;
    try {
      config = await loadConfigFromPath(value);
    } catch (err) {
      report.fromError(where, err, {
        hint: `The path is read on the node: check it there, or point ${key} at the ` +
          "network's config file (or a directory holding it)",
      });
      return undefined;
    }
    let file = value;
    try {
      if ((await Deno.stat(value)).isDirectory) file = (await configFiles(value))[0] ?? value;
    } catch {
      // loadConfigFromPath just read it
    }
    const errors = await checkNetworkConfig(ctx, config, { where: { file, path: "" } });
    return errors > 0 ? undefined : { name: config.name, config };
  }

  const nadLabel = `${settings.multusNamespace}/${value}`;
  const nad = ctx.nads.get(nadLabel);
  if (nad) {
    if (nad.broken || !nad.config) {
      report.error(
        where,
        `the ${key} network "${value}" is the NetworkAttachmentDefinition ${nadLabel} (${nad.where.file}), which has errors`,
        { hint: "Fix the errors reported for that NetworkAttachmentDefinition" },
      );
      return undefined;
    }
    return { name: nadLabel, config: nad.config };
  }
  const found = await ctx.findInConfDir(value);
  if (found) {
    const errors = await checkNetworkConfig(ctx, found.config, {
      where: { file: found.file, path: "" },
    });
    return errors > 0 ? undefined : { name: found.config.name, config: found.config };
  }
  const missingDir = await ctx.confDirExists() ? "" : " (the directory does not exist here)";
  const elsewhere = [...ctx.nads.values()].filter((n) => n.name === value).map((n) => n.label);
  report.error(
    where,
    `Cannot find the ${key} network "${value}": no NetworkAttachmentDefinition "${nadLabel}" among the given files and no config named "${value}" in ${ctx.confDir}${missingDir}`,
    {
      hint:
        (elsewhere.length > 0
          ? `A NetworkAttachmentDefinition of that name exists in ${
            elsewhere.join(", ")
          }, but ${key} is looked up in multusNamespace "${settings.multusNamespace}". `
          : "") +
        `Give the file defining the NAD in ${settings.multusNamespace}, put a config named ` +
        `"${value}" in the conf dir (--conf-dir to check a copy of the node's), or set ${key} ` +
        "to the config file's path",
    },
  );
  return undefined;
}
