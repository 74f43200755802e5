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
import { errorMessage, isObject } from "../../util/errors.ts";
import { selectionKey } from "./selection_key.ts";

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
  if (!isObject(element)) {
    fail(`networks[${index}]`, `Cannot parse ${at}: expected an object, got ${kind(element)}`);
  }
  const read = elementReader(knownKeys(element), index, at);
  const name = read.str("name") ?? "";
  if (name === "") fail(read.field("name"), `Cannot parse ${at}: "name" is missing`);
  const selection: NetworkSelection = {
    name,
    namespace: read.str("namespace") || defaultNamespace,
  };
  const atNamed = `${at} ("${name}")`;
  const iface = read.str("interface") || read.str("interfaceRequest");
  if (iface) selection.interface = checkIfName(iface, read.field("interface"), atNamed);
  readAddressRequests(read, atNamed, selection);
  readPluginRequests(read, atNamed, selection);
  return selection;
}

/** The element's known keys in Multus's spelling: they match case-insensitively, as in Go. */
function knownKeys(element: Record<string, unknown>): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(element)) {
    const known = KNOWN_KEYS.get(key.toLowerCase());
    if (known) raw[known] = v;
  }
  return raw;
}

/** Reads one element's values; messages name the element (`at`) and the field. */
interface ElementReader {
  /** The value of `key`; null counts as absent, as in Go. */
  value(key: string): unknown;
  /** The string value of `key`, or undefined; anything else fails. */
  str(key: string): string | undefined;
  /** `networks[i].key`. */
  field(key: string): string;
}

function elementReader(raw: Record<string, unknown>, index: number, at: string): ElementReader {
  const field = (key: string) => `networks[${index}].${key}`;
  return {
    value: (key) => raw[key] ?? undefined,
    str(key) {
      const v = raw[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== "string") {
        fail(field(key), `Cannot parse ${at}: "${key}" must be a string, got ${kind(v)}`);
      }
      return v;
    },
    field,
  };
}

/** The addresses asked for: mac, infiniband-guid, ips, default-route. */
function readAddressRequests(read: ElementReader, at: string, selection: NetworkSelection): void {
  const mac = read.str("mac");
  if (mac !== undefined) {
    if (!isMac(mac, 6)) {
      fail(read.field("mac"), `Cannot parse ${at}: "mac" "${mac}" is not a MAC address`);
    }
    selection.mac = mac;
  }
  const guid = read.str("infiniband-guid");
  if (guid !== undefined) {
    if (!isMac(guid, 8) && !isMac(guid, 20)) {
      fail(
        read.field("infiniband-guid"),
        `Cannot parse ${at}: "infiniband-guid" "${guid}" is not an InfiniBand GUID`,
      );
    }
    selection.infinibandGuid = guid;
  }
  const ips = read.value("ips");
  if (ips !== undefined) {
    selection.ips = stringList(ips, read.field("ips"), at).map((ip, j) => {
      const [addr, prefix] = ip.split("/");
      const family = isIP(addr);
      const prefixOk = prefix === undefined ||
        (/^\d+$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
      if (family === 0 || !prefixOk) {
        fail(
          `${read.field("ips")}[${j}]`,
          `Cannot parse ${at}: "ips" entry "${ip}" is not an IP address or CIDR`,
        );
      }
      return ip;
    });
  }
  const gateways = read.value("default-route");
  if (gateways !== undefined) {
    const field = read.field("default-route");
    selection.defaultRoute = stringList(gateways, field, at).map((gw) => {
      if (isIP(gw) === 0) {
        fail(field, `Cannot parse ${at}: "default-route" entry "${gw}" is not an IP address`);
      }
      return gw;
    });
  }
}

/** What the pod asks of the delegate: portMappings, bandwidth, cni-args, deviceID. */
function readPluginRequests(read: ElementReader, at: string, selection: NetworkSelection): void {
  const portMappings = read.value("portMappings");
  if (portMappings !== undefined) {
    if (!Array.isArray(portMappings)) {
      fail(read.field("portMappings"), `Cannot parse ${at}: "portMappings" must be a list`);
    }
    selection.portMappings = portMappings.map((pm, j) =>
      portMapping(pm, `${read.field("portMappings")}[${j}]`, at)
    );
  }
  const bw = read.value("bandwidth");
  if (bw !== undefined) selection.bandwidth = bandwidth(bw, read.field("bandwidth"), at);
  const args = read.value("cni-args");
  if (args !== undefined) {
    if (typeof args !== "object" || Array.isArray(args)) {
      fail(
        read.field("cni-args"),
        `Cannot parse ${at}: "cni-args" must be an object, got ${kind(args)}`,
      );
    }
    selection.cniArgs = args as Record<string, unknown>;
  }
  const deviceID = read.str("deviceID");
  if (deviceID) selection.deviceID = deviceID;
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
    selection: selectionKey(s),
  };
}
