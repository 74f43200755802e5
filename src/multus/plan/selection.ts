/**
 * @module
 * The pod's network selection annotation `k8s.v1.cni.cncf.io/networks` (and the
 * `v1.multus-cni.io/default-network` one): both forms, every field validated, errors that
 * name the pod, the element and the field (a pod that asked for a network must not start
 * without it).
 */

import { ipFamily as isIP } from "../../util/ip.ts";
import { CniErrorCode, ConfigError } from "../../cni/errors.ts";
import { validateIfName } from "../../cni/request.ts";
import type { BandwidthEntry, Delegate, PortMapping } from "./delegate.ts";
import type { NetworkConfig } from "../../cni/network_config.ts";
import { errorMessage } from "../../util/errors.ts";

/** Pod annotation listing the extra networks. */
export const NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks";
/** Pod annotation replacing the cluster default network. */
export const DEFAULT_NETWORK_ANNOTATION = "v1.multus-cni.io/default-network";

/** One network the pod asked for. */
export interface NetworkSelection {
  name: string;
  namespace: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  defaultRoute?: string[];
  portMappings?: PortMapping[];
  bandwidth?: BandwidthEntry;
  infinibandGuid?: string;
  cniArgs?: Record<string, unknown>;
  deviceID?: string;
}

/** Kubernetes' limit on the total size of an object's annotations (TotalAnnotationSizeLimitB). */
const MAX_ANNOTATION_LENGTH = 256 * 1024;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The keys of an element of the JSON form, as Multus spells them (matched case-insensitively). */
export const SELECTION_ELEMENT_KEYS: readonly string[] = [
  "name",
  "namespace",
  "interface",
  "interfaceRequest",
  "ips",
  "mac",
  "default-route",
  "portMappings",
  "bandwidth",
  "infiniband-guid",
  "cni-args",
  "deviceID",
  "ipam-claim-reference",
];
const KNOWN_KEYS = new Map(SELECTION_ELEMENT_KEYS.map((k) => [k.toLowerCase(), k]));

/**
 * Parses a selection annotation value. JSON form when the value contains `[`, `{` or `"`,
 * else the comma form `[ns/]name[@ifname],...`. `where` names the pod and annotation in
 * messages, e.g. `pod "default/web" annotation k8s.v1.cni.cncf.io/networks`.
 */
export function parseSelection(
  value: string,
  options: { defaultNamespace: string; where: string },
): NetworkSelection[] {
  if (value.length > MAX_ANNOTATION_LENGTH) {
    fail(
      "networks",
      `Cannot parse ${options.where}: it is ${value.length} characters long, more than Kubernetes allows for all annotations of a pod together (256 KiB)`,
    );
  }
  if (value.trim() === "") return [];
  if (/[[{"]/.test(value)) return parseJsonForm(value, options);
  return value.split(",").map((item, i) => parseShortItem(item.trim(), i, options));
}

function fail(field: string, message: string, details?: string): never {
  throw new ConfigError(field, message, {
    code: CniErrorCode.InvalidNetworkConfig,
    details: details ??
      "Fix the pod's network selection annotation (see the NPWG network selection format)",
  });
}

function parseShortItem(
  item: string,
  index: number,
  { defaultNamespace, where }: { defaultNamespace: string; where: string },
): NetworkSelection {
  const at = `${where}, element ${index + 1} "${item}"`;
  if (item === "") fail(`networks[${index}]`, `Cannot parse ${at}: the network name is empty`);
  const slash = item.split("/");
  if (slash.length > 2) fail(`networks[${index}]`, `Cannot parse ${at}: more than one "/"`);
  const namespace = slash.length === 2 ? slash[0].trim() : defaultNamespace;
  const rest = slash[slash.length - 1];
  const atParts = rest.split("@");
  if (atParts.length > 2) fail(`networks[${index}]`, `Cannot parse ${at}: more than one "@"`);
  const name = atParts[0].trim();
  const ifname = atParts.length === 2 ? atParts[1].trim() : undefined;
  for (const [field, v] of [["namespace", namespace], ["name", name]] as const) {
    if (!DNS_LABEL.test(v)) {
      fail(
        `networks[${index}].${field}`,
        `Cannot parse ${at}: ${field} "${v}" must consist of lower case alphanumeric characters or "-", and start and end with an alphanumeric character`,
      );
    }
  }
  const selection: NetworkSelection = { name, namespace };
  if (ifname !== undefined) {
    selection.interface = checkIfName(ifname, `networks[${index}].interface`, at);
  }
  return selection;
}

function checkIfName(ifname: string, field: string, at: string): string {
  // The rule libcni applies before running a delegate (15 bytes, Go's whitespace).
  try {
    validateIfName(ifname);
  } catch {
    fail(
      field,
      `Cannot parse ${at}: interface name "${ifname}" must be 1-15 characters (15 bytes at most) without "/", ":" or spaces`,
    );
  }
  return ifname;
}

function parseJsonForm(
  value: string,
  { defaultNamespace, where }: { defaultNamespace: string; where: string },
): NetworkSelection[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    fail("networks", `Cannot parse ${where}: it is not valid JSON (${errorMessage(err)})`);
  }
  if (!Array.isArray(parsed)) {
    fail(
      "networks",
      `Cannot parse ${where}: the JSON form must be a list of objects, got ${kind(parsed)}`,
    );
  }
  return parsed.map((element, i) => parseJsonElement(element, i, { defaultNamespace, where }));
}

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function parseJsonElement(
  element: unknown,
  index: number,
  { defaultNamespace, where }: { defaultNamespace: string; where: string },
): NetworkSelection {
  const at = `${where}, element ${index + 1}`;
  const f = (key: string) => `networks[${index}].${key}`;
  if (element === null || typeof element !== "object" || Array.isArray(element)) {
    fail(`networks[${index}]`, `Cannot parse ${at}: expected an object, got ${kind(element)}`);
  }
  // Keys match case-insensitively, as Multus's Go decoder does.
  const raw: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(element as Record<string, unknown>)) {
    const known = KNOWN_KEYS.get(key.toLowerCase());
    if (known) raw[known] = v;
  }
  const str = (key: string): string | undefined => {
    const v = raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") {
      fail(f(key), `Cannot parse ${at}: "${key}" must be a string, got ${kind(v)}`);
    }
    return v;
  };
  const name = str("name") ?? "";
  if (name === "") fail(f("name"), `Cannot parse ${at}: "name" is missing`);
  const selection: NetworkSelection = { name, namespace: str("namespace") || defaultNamespace };
  const atNamed = `${at} ("${name}")`;

  const iface = str("interface") || str("interfaceRequest");
  if (iface) selection.interface = checkIfName(iface, f("interface"), atNamed);

  const mac = str("mac");
  if (mac !== undefined) {
    if (!isMac(mac, 6)) {
      fail(f("mac"), `Cannot parse ${atNamed}: "mac" "${mac}" is not a MAC address`);
    }
    selection.mac = mac;
  }
  const guid = str("infiniband-guid");
  if (guid !== undefined) {
    if (!isMac(guid, 8) && !isMac(guid, 20)) {
      fail(
        f("infiniband-guid"),
        `Cannot parse ${atNamed}: "infiniband-guid" "${guid}" is not an InfiniBand GUID`,
      );
    }
    selection.infinibandGuid = guid;
  }
  if (raw.ips !== undefined && raw.ips !== null) {
    selection.ips = stringList(raw.ips, f("ips"), atNamed).map((ip, j) => {
      const [addr, prefix] = ip.split("/");
      const family = isIP(addr);
      const prefixOk = prefix === undefined ||
        (/^\d+$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
      if (family === 0 || !prefixOk) {
        fail(
          `${f("ips")}[${j}]`,
          `Cannot parse ${atNamed}: "ips" entry "${ip}" is not an IP address or CIDR`,
        );
      }
      return ip;
    });
  }
  if (raw["default-route"] !== undefined && raw["default-route"] !== null) {
    selection.defaultRoute = stringList(raw["default-route"], f("default-route"), atNamed).map(
      (gw) => {
        if (isIP(gw) === 0) {
          fail(
            f("default-route"),
            `Cannot parse ${atNamed}: "default-route" entry "${gw}" is not an IP address`,
          );
        }
        return gw;
      },
    );
  }
  if (raw.portMappings !== undefined && raw.portMappings !== null) {
    if (!Array.isArray(raw.portMappings)) {
      fail(f("portMappings"), `Cannot parse ${atNamed}: "portMappings" must be a list`);
    }
    selection.portMappings = raw.portMappings.map((pm, j) =>
      portMapping(pm, `${f("portMappings")}[${j}]`, atNamed)
    );
  }
  if (raw.bandwidth !== undefined && raw.bandwidth !== null) {
    selection.bandwidth = bandwidth(raw.bandwidth, f("bandwidth"), atNamed);
  }
  if (raw["cni-args"] !== undefined && raw["cni-args"] !== null) {
    const args = raw["cni-args"];
    if (typeof args !== "object" || Array.isArray(args)) {
      fail(
        f("cni-args"),
        `Cannot parse ${atNamed}: "cni-args" must be an object, got ${kind(args)}`,
      );
    }
    selection.cniArgs = args as Record<string, unknown>;
  }
  const deviceID = str("deviceID");
  if (deviceID) selection.deviceID = deviceID;
  return selection;
}

function stringList(v: unknown, field: string, at: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    fail(field, `Cannot parse ${at}: "${field.split(".").pop()}" must be a list of strings`);
  }
  return v as string[];
}

function isMac(value: string, bytes: number): boolean {
  const hex = "[0-9a-fA-F]{2}";
  const colon = new RegExp(`^${hex}(:${hex}){${bytes - 1}}$`);
  const dash = new RegExp(`^${hex}(-${hex}){${bytes - 1}}$`);
  const dot = new RegExp(`^[0-9a-fA-F]{4}(\\.[0-9a-fA-F]{4}){${bytes / 2 - 1}}$`);
  return colon.test(value) || dash.test(value) || dot.test(value);
}

function portMapping(v: unknown, field: string, at: string): PortMapping {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    fail(field, `Cannot parse ${at}: each "portMappings" entry must be an object`);
  }
  const pm = v as Record<string, unknown>;
  for (const key of ["hostPort", "containerPort"]) {
    const n = pm[key];
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 65535) {
      fail(`${field}.${key}`, `Cannot parse ${at}: "${key}" must be a port number (0-65535)`);
    }
  }
  if (pm.protocol !== undefined && typeof pm.protocol !== "string") {
    fail(`${field}.protocol`, `Cannot parse ${at}: "protocol" must be a string`);
  }
  if (pm.hostIP !== undefined && (typeof pm.hostIP !== "string" || isIP(pm.hostIP) === 0)) {
    fail(`${field}.hostIP`, `Cannot parse ${at}: "hostIP" must be an IP address`);
  }
  return pm as unknown as PortMapping;
}

function bandwidth(v: unknown, field: string, at: string): BandwidthEntry {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    fail(field, `Cannot parse ${at}: "bandwidth" must be an object`);
  }
  const bw = v as Record<string, unknown>;
  const out: BandwidthEntry = {};
  for (const key of ["ingressRate", "ingressBurst", "egressRate", "egressBurst"] as const) {
    const n = bw[key];
    if (n === undefined) continue;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
      fail(
        `${field}.${key}`,
        `Cannot parse ${at}: "bandwidth.${key}" must be a non-negative integer`,
      );
    }
    out[key] = n;
  }
  return out;
}

/** The delegate for a selected network: its config and everything the pod asked of it. */
export function selectionToDelegate(
  s: NetworkSelection,
  options: { config: NetworkConfig; resourceName?: string },
): Delegate {
  return {
    name: `${s.namespace}/${s.name}`,
    config: options.config,
    ifnameRequest: s.interface,
    macRequest: s.mac,
    ipRequest: s.ips,
    portMappings: s.portMappings,
    bandwidth: s.bandwidth,
    infinibandGUID: s.infinibandGuid,
    defaultRoute: s.defaultRoute,
    deviceID: s.deviceID,
    resourceName: options.resourceName,
    cniArgs: s.cniArgs,
  };
}
