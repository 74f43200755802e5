/**
 * @module
 * The Multus configuration (00-multus.conf): loaded with the plugin's own loader, then
 * unknown and misspelt keys (with the closest known key), settings that fail ADD (name,
 * cniVersion), settings worth a warning (namespace isolation off: any pod may then use any namespace's
 * networks), and the
 * networks it names, resolved as ADD does.
 */

import { CniError, ConfigError } from "../cni/errors.ts";
import { parseNetworkConfig } from "../cni/network_config.ts";
import { JsonSyntaxError } from "../cni/raw_json.ts";
import { parseConfigText, validateNetworkName } from "../cni/request.ts";
import { isSupportedVersion, SUPPORTED_VERSIONS } from "../cni/version.ts";
import type { Delegate } from "../multus/plan/delegate.ts";
import { loadMultusNetConf, type MultusNetConf, NETCONF_KEYS } from "../multus/config/netconf.ts";
import type { Context } from "./_context.ts";
import { type Report, type Where, within } from "./_findings.ts";
import { getKey, isObject, MULTUS_TYPES, type MultusInput } from "./_inputs.ts";
import { checkNetworkConfig, resolveNamedNetwork } from "./_networks.ts";
import { closestKey } from "./_suggest.ts";
import { configErrorKey, loadCollectingErrors } from "./_every_error.ts";
import { errorMessage } from "../util/errors.ts";

/** Every key the plugin reads from its configuration, canonical spelling. */
export const MULTUS_KEYS: readonly string[] = NETCONF_KEYS;

/** Keys with a story: old names, documented-but-unreal keys, thick-plugin daemon settings. */
const KNOWN_STRANGERS: ReadonlyMap<string, { message: string; hint: string }> = new Map([
  ["allowtrydeleteonerr", {
    message: "is not a Multus key (Multus's docs name it, but the plugin never read it)",
    hint: 'The real key is "retryDeleteOnError"',
  }],
  ["logging", {
    message: "is the pre-3.0 name of logFile and is ignored",
    hint: 'Rename it to "logFile"',
  }],
  ["logging_level", {
    message: "is the pre-3.0 name of logLevel and is ignored",
    hint: 'Rename it to "logLevel"',
  }],
  ["defaultnetworkfile", {
    message: "was never implemented by Multus and is ignored",
    hint: "Remove it",
  }],
  ["defaultnetworkwaitseconds", {
    message: "was never implemented by Multus and is ignored",
    hint: 'Remove it; "readinessindicatorfile" makes ADD wait for the default network',
  }],
  ...[
    "chrootDir",
    "socketDir",
    "cniConfigDir",
    "multusConfigFile",
    "multusAutoconfigDir",
    "multusMasterCNI",
    "forceCNIVersion",
    "overrideNetworkName",
    "metricsPort",
    "enablePprof",
    "connectionLimit",
    "perNodeCertificate",
  ].map((key): [string, { message: string; hint: string }] => [key.toLowerCase(), {
    message: "is a setting of the thick plugin's daemon; the thin plugin ignores it",
    hint: "Remove it, or move it to the daemon's configuration",
  }]),
]);

/** A Multus configuration that loaded. */
export interface LoadedMultus {
  input: MultusInput;
  conf: MultusNetConf;
  /** Root of the Multus keys: the file, or the multus plugin of a conflist (`plugins[i]`). */
  where: Where;
  /** `capabilities` declared in the Multus config (what the runtime passes it). */
  capabilities: Record<string, boolean>;
}

/**
 * Loads a Multus configuration with the plugin's loader and reports what is wrong with its
 * keys and settings. Returns undefined when the plugin would not load it.
 */
export function loadMultusConfig(input: MultusInput, report: Report): LoadedMultus | undefined {
  const where: Where = input.list
    ? within(input.where, `plugins[${input.list.index}]`)
    : input.where;
  const errors = multusConfigErrors(input.text);
  if (errors.length > 0) {
    for (const err of errors) {
      if (err instanceof CniError && err.cause instanceof JsonSyntaxError) {
        const { line, column, reason } = err.cause;
        report.error(within(where, `line ${line} column ${column}`), `invalid JSON: ${reason}`);
      } else if (err instanceof ConfigError) {
        report.fromError(where, err, { field: true });
      } else {
        report.fromError(where, err);
      }
    }
    reportUnknownKeysOf(report, { text: input.text, where });
    return undefined;
  }
  const conf: MultusNetConf = loadMultusNetConf(input.text);

  checkStrictJson(report, input);
  for (const key of conf.unknownKeys) reportUnknownKey(report, { where: within(where, key), key });
  for (const warning of conf.warnings) {
    report.warning(within(where, /logLevel/.test(warning) ? "logLevel" : ""), warning);
  }
  if (!MULTUS_TYPES.has(conf.type)) {
    report.warning(
      within(where, "type"),
      `type is ${JSON.stringify(conf.type)}, not "multus": the runtime would not run this plugin`,
      { hint: 'Set "type": "multus"' },
    );
  }
  // A conflist's name and cniVersion are the list's (the runtime injects them).
  const listLevel = input.list ? input.where : where;
  try {
    validateNetworkName(conf.name);
  } catch (err) {
    report.fromError(within(listLevel, "name"), err, {
      hint: 'Give the Multus config a "name" (e.g. "multus-cni-network"): the runtime needs it',
    });
  }
  const version = conf.cniVersion === "" ? "0.1.0" : conf.cniVersion;
  if (!isSupportedVersion(version)) {
    report.error(
      within(listLevel, "cniVersion"),
      `incompatible CNI versions: cniVersion is "${conf.cniVersion}", the plugin supports ${
        SUPPORTED_VERSIONS.join(", ")
      }`,
      { hint: "Use the cniVersion of the cluster's default network config" },
    );
  }
  if (!conf.namespaceIsolation) {
    report.warning(
      within(where, "namespaceIsolation"),
      "namespace isolation is off: a pod may use NetworkAttachmentDefinitions of any namespace",
      {
        hint: 'Set "namespaceIsolation": true (pods then use NADs of their own namespace and ' +
          'of "globalNamespaces", default "default"); see the README',
      },
    );
  }
  if (conf.auxiliaryCNIChainName !== "" && !conf.clusterNetwork.includes("/")) {
    report.warning(
      within(where, "auxiliaryCNIChainName"),
      "the auxiliary CNI chain is skipped: it needs clusterNetwork to be a file path",
      { hint: "Set clusterNetwork to the default network's config file path" },
    );
  }
  return { input, conf, where, capabilities: declaredCapabilities(input.text) };
}

/**
 * Every error the plugin's loader finds in a Multus config, not only the first. The one
 * error about keys that are missing rather than wrong, "at least one delegate/clusterNetwork",
 * is a consequence when one of those two keys was taken out for being wrong.
 */
function multusConfigErrors(text: string): unknown[] {
  return loadCollectingErrors(text, loadMultusNetConf, {
    keyOf: (err) => configErrorKey(err),
    causes: (err, key) =>
      key === "delegates" && /delegate\/clusterNetwork must be specified/.test(String(err))
        ? [...spellingsOf(text, "delegates"), ...spellingsOf(text, "clusterNetwork")]
        : [key],
  });
}

/** How `key` is spelled in the config's text (keys match case-insensitively). */
function spellingsOf(text: string, key: string): string[] {
  try {
    return Object.keys(parseConfigText(text)).filter((k) => k.toLowerCase() === key.toLowerCase());
  } catch {
    return [key];
  }
}

function declaredCapabilities(text: string): Record<string, boolean> {
  try {
    const caps = getKey(parseConfigText(text), "capabilities");
    if (!isObject(caps)) return {};
    return Object.fromEntries(Object.entries(caps).filter(([, v]) => v === true)) as Record<
      string,
      boolean
    >;
  } catch {
    return {};
  }
}

/**
 * The container runtime reads the Multus config file with a strict JSON parser: comments and
 * trailing commas, which the plugin itself accepts, make the runtime reject the file.
 */
function checkStrictJson(report: Report, input: MultusInput): void {
  const text = input.list?.text ?? input.text;
  try {
    JSON.parse(text);
  } catch (err) {
    const reason = errorMessage(err);
    const pos = /line (\d+) column (\d+)/.exec(reason);
    report.error(
      pos ? within(input.where, `line ${pos[1]} column ${pos[2]}`) : input.where,
      `not strict JSON (${
        reason.replace(/ in JSON at position \d+.*$/, "")
      }): the container runtime cannot load it`,
      { hint: "Remove comments and trailing commas: only the plugin accepts them" },
    );
  }
}

/** Unknown keys of a config the plugin's loader rejected (it stops before listing them). */
function reportUnknownKeysOf(
  report: Report,
  { text, where }: { text: string; where: Where },
): void {
  let parsed: Record<string, unknown>;
  try {
    parsed = parseConfigText(text);
  } catch {
    return;
  }
  const known = new Set(MULTUS_KEYS.map((k) => k.toLowerCase()));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key.toLowerCase())) reportUnknownKey(report, { where: within(where, key), key });
  }
}

function reportUnknownKey(report: Report, { where, key }: { where: Where; key: string }): void {
  const stranger = KNOWN_STRANGERS.get(key.toLowerCase());
  if (stranger) {
    report.warning(where, `key "${key}" ${stranger.message}`, { hint: stranger.hint });
    return;
  }
  const suggestion = closestKey(key, MULTUS_KEYS);
  if (suggestion) {
    report.warning(
      where,
      `unknown key "${key}" is ignored by the plugin; did you mean "${suggestion}"?`,
      { hint: `Rename it to "${suggestion}" (keys match case-insensitively)` },
    );
  } else {
    report.warning(where, `unknown key "${key}" is ignored by the plugin`, {
      hint: "Remove it, or check its spelling against the Multus configuration reference",
    });
  }
}

/**
 * Checks what the Multus config makes ADD run for every pod: the multus binary and the
 * other plugins of its conflist, the static delegates or the cluster network and
 * `defaultNetworks` (resolved and checked). Sets `ctx.cluster`.
 */
export async function checkMultusNetworks(
  ctx: Context,
  loaded: LoadedMultus,
  options: { usesKubernetes: boolean },
): Promise<void> {
  const { conf, where, input } = loaded;
  const { report } = ctx;

  // The runtime runs the multus binary from its own CNI bin dir.
  const self = await ctx.lookupPlugin(conf.type || "multus");
  if (!self.found && MULTUS_TYPES.has(conf.type)) {
    report.warning(within(where, "type"), self.message, {
      hint: "The container runtime must find the multus binary in its CNI bin dir " +
        "(multus install puts it there); pass --bin-dir for the node's bin dir",
    });
  }
  if (input.list) {
    try {
      const list = parseNetworkConfig(input.list.text, "");
      await checkNetworkConfig(ctx, list, {
        where: input.where,
        skipPlugins: [input.list.index],
        pluginsOnly: true,
      });
    } catch (err) {
      report.fromError(input.where, err, { field: true });
    }
  }

  if (options.usesKubernetes && conf.kubeconfig === "") {
    report.warning(
      within(where, "kubeconfig"),
      "kubeconfig is not set: unless the plugin's environment has KUBERNETES_SERVICE_HOST " +
        "and KUBERNETES_SERVICE_PORT, it reads no pods and no NetworkAttachmentDefinitions " +
        "(pod annotations are ignored)",
      { hint: 'Set "kubeconfig" to the plugin\'s kubeconfig (multus install writes one)' },
    );
  }

  if (conf.clusterNetwork === "") {
    const delegates: Delegate[] = [];
    for (const [i, config] of conf.delegates.entries()) {
      await checkNetworkConfig(ctx, config, { where: within(where, `delegates[${i}]`) });
      delegates.push({ name: config.name, config });
    }
    ctx.cluster = {
      master: delegates[0],
      extra: delegates.slice(1),
      fromDefaultNetworks: false,
      multusCapabilities: loaded.capabilities,
    };
    return;
  }
  const master = await resolveNamedNetwork(ctx, conf.clusterNetwork, {
    where: within(where, "clusterNetwork"),
    key: "clusterNetwork",
  });
  const extra: Delegate[] = [];
  for (const [i, name] of conf.defaultNetworks.entries()) {
    const resolved = await resolveNamedNetwork(ctx, name, {
      where: within(where, `defaultNetworks[${i}]`),
      key: "defaultNetworks",
    });
    extra.push(resolved ?? placeholder(name));
  }
  ctx.cluster = {
    master: master ?? placeholder(conf.clusterNetwork),
    extra,
    fromDefaultNetworks: true,
    multusCapabilities: loaded.capabilities,
  };
}

/** A delegate standing for a network that could not be resolved (keeps its interface slot). */
export function placeholder(name: string): Delegate & { unresolved: true } {
  return {
    name,
    config: {
      name,
      cniVersion: "",
      isList: false,
      disableCheck: false,
      disableGC: false,
      plugins: [],
      raw: "",
    },
    unresolved: true,
  };
}
