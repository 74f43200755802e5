/**
 * @module
 * The Multus network configuration (the plugin's own stdin): every Multus key with its
 * default, matched case-insensitively as Go's encoding/json does, its types checked
 * (`util/json_check.ts`).
 * Delegate configurations are kept as their original text: re-serialised through a schema,
 * a delegate would lose the keys the schema does not know.
 */

import { ConfigError } from "../../cni/errors.ts";
import { type NetworkConfig, parseNetworkConfig } from "../../cni/network_config.ts";
import { rawArrayElements } from "../../cni/raw_json.ts";
import { parseConfigText } from "../../cni/request.ts";
import { type LogLevel, parseLogLevel } from "../../log/logger.ts";
import { checkJson, type JsonIssue, type JsonType } from "../../util/json_check.ts";
import { valueAt } from "../../util/json_path.ts";

/** Rotation settings of the log file (Multus `logOptions`). */
export interface LogOptions {
  maxAge?: number;
  maxSize?: number;
  maxBackups?: number;
  compress?: boolean;
}

/** The validated Multus configuration with defaults applied. */
export interface MultusNetConf {
  cniVersion: string;
  name: string;
  type: string;
  kubeconfig: string;
  /** Static delegates (first = cluster default network); ignored when clusterNetwork is set. */
  delegates: NetworkConfig[];
  clusterNetwork: string;
  defaultNetworks: string[];
  confDir: string;
  cniDir: string;
  binDir: string;
  logFile: string;
  /** undefined when not set (Multus default: panic). */
  logLevel?: LogLevel;
  logToStderr: boolean;
  logOptions: LogOptions;
  readinessIndicatorFile: string;
  namespaceIsolation: boolean;
  globalNamespaces: string[];
  systemNamespaces: string[];
  multusNamespace: string;
  auxiliaryCNIChainName: string;
  retryDeleteOnError: boolean;
  /** What the runtime passed in `runtimeConfig` (reaches the default network only). */
  runtimeConfig: Record<string, unknown>;
  /** Ours: per-delegate timeout. */
  delegateTimeoutSeconds: number;
  /** Ours: how long ADD waits for the readiness indicator file (Multus: 45 s). */
  readinessIndicatorTimeoutSeconds: number;
  /** Ours: total budget for Kubernetes API calls of one command. */
  apiTimeoutSeconds: number;
  /** Ours: the kubelet PodResources socket (device IDs of SR-IOV and DPDK networks). */
  podResourcesSocket: string;
  /** Ours: the device plugins' checkpoint file, used when the socket is absent. */
  deviceCheckpointFile: string;
  /** Ours: device-info directory (`dp/` written by device plugins, `cni/` by us). */
  deviceInfoDir: string;
  /** Keys we do not know, as spelled (for `multus validate`). */
  unknownKeys: string[];
  /** Warnings found while loading (e.g. an unknown log level, kept as Multus does). */
  warnings: string[];
}

const optionalString: JsonType = { kind: "string", optional: true };
const optionalBool: JsonType = { kind: "boolean", optional: true };
const optionalNumber: JsonType = { kind: "number", optional: true };
const anything: JsonType = { kind: "unknown" };
const stringList: JsonType = { kind: "array", items: { kind: "string" } };

/** The keys' types; the canonical spelling is the key here. */
const NETCONF_TYPES: Record<keyof RawNetConf, JsonType> = {
  cniVersion: optionalString,
  name: optionalString,
  type: optionalString,
  capabilities: { kind: "record", values: { kind: "boolean" }, optional: true },
  runtimeConfig: { kind: "record", values: anything, optional: true, nullable: true },
  prevResult: anything,
  ipam: anything,
  dns: anything,
  args: anything,
  kubeconfig: optionalString,
  delegates: {
    kind: "array",
    items: { kind: "record", values: anything },
    optional: true,
    nullable: true,
  },
  clusterNetwork: optionalString,
  defaultNetworks: { ...stringList, optional: true, nullable: true },
  confDir: optionalString,
  cniDir: optionalString,
  binDir: optionalString,
  logFile: optionalString,
  logLevel: optionalString,
  logToStderr: optionalBool,
  logOptions: {
    kind: "object",
    fields: {
      maxAge: optionalNumber,
      maxSize: optionalNumber,
      maxBackups: optionalNumber,
      compress: optionalBool,
    },
    optional: true,
    nullable: true,
  },
  readinessindicatorfile: optionalString,
  namespaceIsolation: optionalBool,
  globalNamespaces: { kind: "union", options: [{ kind: "string" }, stringList], optional: true },
  systemNamespaces: { ...stringList, optional: true, nullable: true },
  multusNamespace: optionalString,
  auxiliaryCNIChainName: optionalString,
  retryDeleteOnError: optionalBool,
  daemonSocketDir: optionalString,
  delegateTimeoutSeconds: optionalNumber,
  readinessIndicatorTimeoutSeconds: optionalNumber,
  apiTimeoutSeconds: optionalNumber,
  podResourcesSocket: optionalString,
  deviceCheckpointFile: optionalString,
  deviceInfoDir: optionalString,
};

/** The configuration as given, once its keys have the types of {@linkcode NETCONF_TYPES}. */
interface RawNetConf {
  cniVersion?: string;
  name?: string;
  type?: string;
  capabilities?: Record<string, boolean>;
  runtimeConfig?: Record<string, unknown> | null;
  prevResult?: unknown;
  ipam?: unknown;
  dns?: unknown;
  args?: unknown;
  kubeconfig?: string;
  delegates?: Record<string, unknown>[] | null;
  clusterNetwork?: string;
  defaultNetworks?: string[] | null;
  confDir?: string;
  cniDir?: string;
  binDir?: string;
  logFile?: string;
  logLevel?: string;
  logToStderr?: boolean;
  logOptions?: LogOptions | null;
  readinessindicatorfile?: string;
  namespaceIsolation?: boolean;
  globalNamespaces?: string | string[];
  systemNamespaces?: string[] | null;
  multusNamespace?: string;
  auxiliaryCNIChainName?: string;
  retryDeleteOnError?: boolean;
  daemonSocketDir?: string;
  delegateTimeoutSeconds?: number;
  readinessIndicatorTimeoutSeconds?: number;
  apiTimeoutSeconds?: number;
  podResourcesSocket?: string;
  deviceCheckpointFile?: string;
  deviceInfoDir?: string;
}

/** Every key the configuration may have, in its canonical spelling. */
export const NETCONF_KEYS: readonly string[] = Object.keys(NETCONF_TYPES);

const CANONICAL_KEYS: Map<string, string> = new Map(
  NETCONF_KEYS.map((key) => [key.toLowerCase(), key]),
);

/** Multus's defaults for every key the netconf may leave out. */
export const NETCONF_DEFAULTS = {
  confDir: "/etc/cni/multus/net.d",
  cniDir: "/var/lib/cni/multus",
  binDir: "/opt/cni/bin",
  multusNamespace: "kube-system",
  systemNamespaces: ["kube-system"],
  globalNamespaces: ["default"],
  delegateTimeoutSeconds: 120,
  readinessIndicatorTimeoutSeconds: 45,
  apiTimeoutSeconds: 30,
  podResourcesSocket: "/var/lib/kubelet/pod-resources/kubelet.sock",
  deviceCheckpointFile: "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint",
  deviceInfoDir: "/var/run/k8s.cni.cncf.io/devinfo",
} as const;

/**
 * Parses and validates the Multus configuration text. Throws ConfigError naming the field,
 * what was expected and what was found.
 */
export function loadMultusNetConf(text: string): MultusNetConf {
  const parsed = parseConfigText(text);
  const { canonical, spelling, unknownKeys } = canonicalizeKeys(parsed);
  const [issue] = checkJson(canonical, { kind: "object", fields: NETCONF_TYPES });
  if (issue) {
    const field = formatPath(issue.path, spelling);
    throw new ConfigError(
      field,
      `Cannot load the multus configuration: ${describeIssue(issue, field, canonical)}`,
      {
        details: "Fix this key in the multus configuration file (00-multus.conf) on the node",
      },
    );
  }
  const raw = canonical as RawNetConf;
  const warnings: string[] = [];

  let logLevel: LogLevel | undefined;
  if (raw.logLevel) {
    logLevel = parseLogLevel(raw.logLevel);
    if (!logLevel) {
      warnings.push(
        `unknown logLevel "${raw.logLevel}" ignored: use one of debug, verbose, error, panic`,
      );
    }
  }

  const clusterNetwork = raw.clusterNetwork ?? "";
  let delegates: NetworkConfig[] = [];
  if (raw.delegates && raw.delegates.length > 0) {
    const key = spelling.get("delegates") ?? "delegates";
    const texts = rawArrayElements(jsonText(text), [key]) ?? [];
    delegates = texts.map((t, i) => parseNetworkConfig(t, `${key}[${i}]`));
  }
  if (delegates.length === 0 && clusterNetwork === "") {
    throw new ConfigError(
      "delegates",
      "Cannot load the multus configuration: at least one delegate/clusterNetwork must be specified",
      {
        details: 'Set "clusterNetwork" to the default network\'s config, or list it in "delegates"',
      },
    );
  }

  for (
    const [key, value] of [
      ["delegateTimeoutSeconds", raw.delegateTimeoutSeconds],
      ["readinessIndicatorTimeoutSeconds", raw.readinessIndicatorTimeoutSeconds],
      ["apiTimeoutSeconds", raw.apiTimeoutSeconds],
    ] as const
  ) {
    if (value !== undefined && !(value > 0)) {
      throw new ConfigError(
        key,
        `Cannot load the multus configuration: "${key}" must be a positive number of seconds, got ${value}`,
      );
    }
  }

  return buildNetConf(raw, { delegates, clusterNetwork, logLevel, unknownKeys, warnings });
}

/**
 * The configuration a DEL falls back to when stdin is unusable: every default, no network,
 * the scratch caches in `cniDir` (see {@linkcode recoverCniDir}).
 */
export function fallbackNetConf(cniDir: string = NETCONF_DEFAULTS.cniDir): MultusNetConf {
  return buildNetConf({ cniDir }, {
    delegates: [],
    clusterNetwork: "",
    unknownKeys: [],
    warnings: [],
  });
}

/**
 * Where the scratch caches are according to a configuration text that cannot be loaded: its
 * `cniDir` (any case, the last one winning, as loading does), or the default when the text
 * is a whole JSON object without one. Undefined when the text does not tell: `cniDir` of
 * the wrong type, or text that is not JSON and names no single `cniDir` (cut short before it,
 * or naming several).
 */
export function recoverCniDir(text: string): string | undefined {
  let parsed: Record<string, unknown> | undefined;
  try {
    parsed = parseConfigText(text);
  } catch {
    parsed = undefined;
  }
  if (parsed) {
    const value = canonicalizeKeys(parsed).canonical.cniDir;
    if (value === undefined || value === null || value === "") return NETCONF_DEFAULTS.cniDir;
    return typeof value === "string" ? value : undefined;
  }
  const values = new Set<string>();
  for (const match of text.matchAll(/"cniDir"\s*:\s*("(?:[^"\\]|\\.)*")/gi)) {
    try {
      values.add(JSON.parse(match[1]));
    } catch {
      return undefined;
    }
  }
  if (values.size !== 1) return undefined;
  const [value] = values;
  return value === "" ? NETCONF_DEFAULTS.cniDir : value;
}

function buildNetConf(
  raw: RawNetConf,
  parts: {
    delegates: NetworkConfig[];
    clusterNetwork: string;
    logLevel?: LogLevel;
    unknownKeys: string[];
    warnings: string[];
  },
): MultusNetConf {
  const { delegates, clusterNetwork, logLevel, unknownKeys, warnings } = parts;
  return {
    cniVersion: raw.cniVersion ?? "",
    name: raw.name ?? "",
    type: raw.type ?? "",
    kubeconfig: raw.kubeconfig ?? "",
    delegates,
    clusterNetwork,
    defaultNetworks: raw.defaultNetworks ?? [],
    confDir: raw.confDir || NETCONF_DEFAULTS.confDir,
    cniDir: raw.cniDir || NETCONF_DEFAULTS.cniDir,
    binDir: raw.binDir || NETCONF_DEFAULTS.binDir,
    logFile: raw.logFile ?? "",
    logLevel,
    logToStderr: raw.logToStderr ?? true,
    logOptions: raw.logOptions ?? {},
    readinessIndicatorFile: raw.readinessindicatorfile ?? "",
    namespaceIsolation: raw.namespaceIsolation ?? false,
    globalNamespaces: parseGlobalNamespaces(raw.globalNamespaces),
    systemNamespaces: raw.systemNamespaces ?? [...NETCONF_DEFAULTS.systemNamespaces],
    multusNamespace: raw.multusNamespace || NETCONF_DEFAULTS.multusNamespace,
    auxiliaryCNIChainName: raw.auxiliaryCNIChainName ?? "",
    retryDeleteOnError: raw.retryDeleteOnError ?? false,
    runtimeConfig: raw.runtimeConfig ?? {},
    delegateTimeoutSeconds: raw.delegateTimeoutSeconds ?? NETCONF_DEFAULTS.delegateTimeoutSeconds,
    readinessIndicatorTimeoutSeconds: raw.readinessIndicatorTimeoutSeconds ??
      NETCONF_DEFAULTS.readinessIndicatorTimeoutSeconds,
    apiTimeoutSeconds: raw.apiTimeoutSeconds ?? NETCONF_DEFAULTS.apiTimeoutSeconds,
    podResourcesSocket: raw.podResourcesSocket || NETCONF_DEFAULTS.podResourcesSocket,
    deviceCheckpointFile: raw.deviceCheckpointFile || NETCONF_DEFAULTS.deviceCheckpointFile,
    deviceInfoDir: raw.deviceInfoDir || NETCONF_DEFAULTS.deviceInfoDir,
    unknownKeys,
    warnings,
  };
}

/** The text to cut delegate configurations from: JSON as given, comments stripped if any. */
function jsonText(text: string): string {
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(parseConfigText(text));
  }
}

/**
 * Maps keys to their canonical spelling, case-insensitively; a later key wins over an
 * earlier one that differs only in case (Go encoding/json).
 */
function canonicalizeKeys(parsed: Record<string, unknown>): {
  canonical: Record<string, unknown>;
  spelling: Map<string, string>;
  unknownKeys: string[];
} {
  const canonical: Record<string, unknown> = {};
  const spelling = new Map<string, string>();
  const unknownKeys: string[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    const known = CANONICAL_KEYS.get(key.toLowerCase());
    if (known) {
      canonical[known] = value;
      spelling.set(known, key);
    } else {
      unknownKeys.push(key);
    }
  }
  return { canonical, spelling, unknownKeys };
}

function parseGlobalNamespaces(value: string | string[] | undefined): string[] {
  if (value === undefined || value === "") return [...NETCONF_DEFAULTS.globalNamespaces];
  const list = Array.isArray(value) ? value : value.split(",");
  return list.map((ns) => ns.trim()).filter((ns) => ns !== "");
}

function formatPath(path: readonly PropertyKey[], spelling: Map<string, string>): string {
  let out = "";
  path.forEach((part, i) => {
    if (typeof part === "number") out += `[${part}]`;
    else {
      const name = i === 0 ? spelling.get(String(part)) ?? String(part) : String(part);
      out += out === "" ? name : `.${name}`;
    }
  });
  return out || "(top level)";
}

function describeIssue(
  issue: JsonIssue,
  field: string,
  input: Record<string, unknown>,
): string {
  const found = valueAt(input, issue.path);
  if (issue.code === "invalid_type") {
    return `"${field}" must be ${article(issue.expected)}, got ${describeValue(found)}`;
  }
  return `"${field}" has the wrong type, got ${describeValue(found)}`;
}

function article(expected: string): string {
  if (expected === "array") return "a list";
  if (expected === "object" || expected === "record") return "an object";
  return `a ${expected}`;
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 60))}`;
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}
