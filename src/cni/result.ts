/**
 * @module
 * CNI results of every version (0.1.0-1.1.0): strict parsing of a plugin's output and
 * conversion between versions exactly as libcni does (specs.md, "Result conversion table").
 */

import { describe } from "../util/errors.ts";
import { parseIp as parseIpBytes } from "../util/ip.ts";
import { CniError, CniErrorCode } from "./errors.ts";

/** A route as libcni keeps it (shared by all versions). */
export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

/** DNS settings of a result. */
export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** An interface of a 0.3.0+ result. */
export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

/** An IP entry of a 0.3.0+ result (`version` only in 0.3.x/0.4.0). */
export interface IpConfig {
  version?: "4" | "6";
  interface?: number;
  address: string;
  gateway?: string;
}

/** A 0.3.0-1.1.0 result. */
export interface ResultCurrent {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IpConfig[];
  routes?: Route[];
  dns?: Dns;
}

/** A 0.1.0/0.2.0 result. */
export interface ResultLegacy {
  cniVersion: string;
  ip4?: { ip: string; gateway?: string; routes?: Route[] };
  ip6?: { ip: string; gateway?: string; routes?: Route[] };
  dns?: Dns;
}

/** Any CNI result; the family is given by `cniVersion`. */
export type CniResult = ResultCurrent | ResultLegacy;

const V02_VERSIONS = ["0.1.0", "0.2.0"];
const V04_VERSIONS = ["0.3.0", "0.3.1", "0.4.0"];
const V1_VERSIONS = ["1.0.0", "1.1.0"];

/** The result type families of libcni (Go packages types020, types040, types100). */
type Family = "V02" | "V04" | "V1";

function familyOf(version: string): Family | undefined {
  if (V02_VERSIONS.includes(version)) return "V02";
  if (V04_VERSIONS.includes(version)) return "V04";
  if (V1_VERSIONS.includes(version)) return "V1";
  return undefined;
}

function isLegacy(result: CniResult): result is ResultLegacy {
  return "ip4" in result || "ip6" in result;
}

/** The version of a result; an unset one is the newest of its shape (libcni GetAsVersion). */
function versionOf(result: CniResult): string {
  if (result.cniVersion) return result.cniVersion;
  return isLegacy(result) ? "0.2.0" : "1.1.0";
}

// ---------------------------------------------------------------------------------------
// Addresses, printed as Go's net.IP / net.IPNet String() does.

/** Parses an IP address as Go's net.ParseIP: 4 bytes for IPv4, 16 for IPv6 (no zone). */
function parseIp(text: string): number[] | undefined {
  return parseIpBytes(text);
}

function isV4Mapped(bytes: number[]): boolean {
  return bytes.length === 16 && bytes.slice(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff && bytes[11] === 0xff;
}

/** Go's IP.String(): dotted IPv4 (also for IPv4-mapped IPv6), else RFC 5952 IPv6. */
function formatIp(bytes: number[]): string {
  if (bytes.length === 4) return bytes.join(".");
  if (isV4Mapped(bytes)) return bytes.slice(12).join(".");
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i] << 8) | bytes[i + 1]);
  // The first longest run of at least two zero words becomes "::".
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (bestStart === -1) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}`;
}

/** Canonical form of an IP address, or undefined when Go's net.ParseIP would reject it. */
function normaliseIp(text: string): string | undefined {
  const bytes = parseIp(text);
  return bytes === undefined ? undefined : formatIp(bytes);
}

/**
 * Canonical form of a CIDR (host bits kept), or undefined when Go's net.ParseCIDR would
 * reject it. An IPv4-mapped IPv6 address prints as IPv4 with the prefix less 96, as Go does.
 */
function normaliseCidr(text: string): string | undefined {
  const slash = text.indexOf("/");
  if (slash === -1) return undefined;
  const bytes = parseIp(text.slice(0, slash));
  const mask = text.slice(slash + 1);
  if (bytes === undefined || !/^[0-9]{1,8}$/.test(mask)) return undefined;
  const prefix = Number(mask);
  if (prefix > bytes.length * 8) return undefined;
  const shown = isV4Mapped(bytes) ? Math.max(0, prefix - 96) : prefix;
  return `${formatIp(bytes)}/${shown}`;
}

/** Whether an address or CIDR is IPv4 (Go's `To4() != nil`, so IPv4-mapped counts). */
function isIpv4(addressOrCidr: string): boolean {
  const slash = addressOrCidr.indexOf("/");
  const bytes = parseIp(slash === -1 ? addressOrCidr : addressOrCidr.slice(0, slash));
  return bytes !== undefined && (bytes.length === 4 || isV4Mapped(bytes));
}

// ---------------------------------------------------------------------------------------
// Decoding: typed and strict like Go's encoding/json into libcni's structs.

type JsonObject = Record<string, unknown>;

function decodeError(message: string): CniError {
  return new CniError(CniErrorCode.DecodeFailure, `Cannot decode CNI result: ${message}`);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A field as Go finds it: exact or case-insensitive key match, the last one wins. */
function field(obj: JsonObject, name: string): unknown {
  const lower = name.toLowerCase();
  let found: unknown = undefined;
  for (const key of Object.keys(obj)) {
    if (key === name || key.toLowerCase() === lower) found = obj[key];
  }
  return found;
}

function optString(obj: JsonObject, name: string, path: string): string | undefined {
  const value = field(obj, name);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    throw decodeError(`${path}.${name} must be a string, got ${describe(value)}`);
  }
  return value;
}

function optInt(obj: JsonObject, name: string, path: string): number | undefined {
  const value = field(obj, name);
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw decodeError(`${path}.${name} must be an integer, got ${describe(value)}`);
  }
  return value;
}

function optStrings(obj: JsonObject, name: string, path: string): string[] | undefined {
  const value = field(obj, name);
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) {
    throw decodeError(`${path}.${name} must be an array, got ${describe(value)}`);
  }
  return value.map((item, i) => {
    if (item === null) return "";
    if (typeof item !== "string") {
      throw decodeError(`${path}.${name}[${i}] must be a string, got ${describe(item)}`);
    }
    return item;
  });
}

function optObject(obj: JsonObject, name: string, path: string): JsonObject | undefined {
  const value = field(obj, name);
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) {
    throw decodeError(`${join(path, name)} must be an object, got ${describe(value)}`);
  }
  return value;
}

function optObjects(obj: JsonObject, name: string, path: string): JsonObject[] {
  const value = field(obj, name);
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw decodeError(`${join(path, name)} must be an array, got ${describe(value)}`);
  }
  return value.map((item, i) => {
    if (!isObject(item)) {
      throw decodeError(`${join(path, name)}[${i}] must be an object, got ${describe(item)}`);
    }
    return item;
  });
}

function join(path: string, name: string): string {
  return path ? `${path}.${name}` : name;
}

function cidrField(obj: JsonObject, name: string, path: string): string {
  const value = field(obj, name);
  const where = join(path, name);
  if (value === undefined) throw decodeError(`missing ${where}`);
  const text = value === null ? "" : value;
  if (typeof text !== "string") {
    throw decodeError(`${where} must be a string, got ${describe(value)}`);
  }
  const cidr = normaliseCidr(text);
  if (cidr === undefined) {
    throw decodeError(`invalid CIDR address ${JSON.stringify(text)} in ${where}`);
  }
  return cidr;
}

function ipField(obj: JsonObject, name: string, path: string): string | undefined {
  const text = optString(obj, name, path);
  if (text === undefined || text === "") return undefined;
  const ip = normaliseIp(text);
  if (ip === undefined) {
    throw decodeError(`invalid IP address ${JSON.stringify(text)} in ${join(path, name)}`);
  }
  return ip;
}

function decodeDns(obj: JsonObject): Dns {
  const src = optObject(obj, "dns", "") ?? {};
  const dns: Dns = {};
  const nameservers = optStrings(src, "nameservers", "dns");
  if (nameservers?.length) dns.nameservers = nameservers;
  const domain = optString(src, "domain", "dns");
  if (domain) dns.domain = domain;
  const search = optStrings(src, "search", "dns");
  if (search?.length) dns.search = search;
  const options = optStrings(src, "options", "dns");
  if (options?.length) dns.options = options;
  return dns;
}

function decodeRoutes(obj: JsonObject, path: string): Route[] {
  return optObjects(obj, "routes", path).map((src, i) => {
    const where = `${join(path, "routes")}[${i}]`;
    const route: Route = { dst: cidrField(src, "dst", where) };
    const gw = ipField(src, "gw", where);
    if (gw !== undefined) route.gw = gw;
    for (const key of ["mtu", "advmss", "priority"] as const) {
      const value = optInt(src, key, where);
      if (value) route[key] = value;
    }
    for (const key of ["table", "scope"] as const) {
      const value = optInt(src, key, where);
      if (value !== undefined) route[key] = value;
    }
    return route;
  });
}

function decodeLegacyIp(
  obj: JsonObject,
  name: "ip4" | "ip6",
): ResultLegacy["ip4"] | undefined {
  const src = optObject(obj, name, "");
  if (src === undefined) return undefined;
  const out: NonNullable<ResultLegacy["ip4"]> = { ip: cidrField(src, "ip", name) };
  const gateway = ipField(src, "gateway", name);
  if (gateway !== undefined) out.gateway = gateway;
  const routes = decodeRoutes(src, name);
  if (routes.length > 0) out.routes = routes;
  return out;
}

function decodeV02(obj: JsonObject, cniVersion: string): ResultLegacy {
  const result: ResultLegacy = { cniVersion: cniVersion || "0.1.0" };
  const ip4 = decodeLegacyIp(obj, "ip4");
  if (ip4) result.ip4 = ip4;
  const ip6 = decodeLegacyIp(obj, "ip6");
  if (ip6) result.ip6 = ip6;
  result.dns = decodeDns(obj);
  return result;
}

function decodeCurrent(obj: JsonObject, cniVersion: string, family: Family): ResultCurrent {
  const result: ResultCurrent = { cniVersion };
  const interfaces = optObjects(obj, "interfaces", "").map((src, i) => {
    const where = `interfaces[${i}]`;
    const intf: Interface = { name: optString(src, "name", where) ?? "" };
    const mac = optString(src, "mac", where);
    if (mac) intf.mac = mac;
    if (family === "V1") {
      const mtu = optInt(src, "mtu", where);
      if (mtu) intf.mtu = mtu;
    }
    const sandbox = optString(src, "sandbox", where);
    if (sandbox) intf.sandbox = sandbox;
    if (family === "V1") {
      const socketPath = optString(src, "socketPath", where);
      if (socketPath) intf.socketPath = socketPath;
      const pciID = optString(src, "pciID", where);
      if (pciID) intf.pciID = pciID;
    }
    return intf;
  });
  if (interfaces.length > 0) result.interfaces = interfaces;
  const ips = optObjects(obj, "ips", "").map((src, i) => {
    const where = `ips[${i}]`;
    const ip = {} as IpConfig;
    if (family === "V04") {
      const version = optString(src, "version", where);
      if (version) ip.version = version as IpConfig["version"];
    }
    const index = optInt(src, "interface", where);
    if (index !== undefined) ip.interface = index;
    ip.address = cidrField(src, "address", where);
    const gateway = ipField(src, "gateway", where);
    if (gateway !== undefined) ip.gateway = gateway;
    return ip;
  });
  if (ips.length > 0) result.ips = ips;
  const routes = decodeRoutes(obj, "");
  if (routes.length > 0) result.routes = routes;
  result.dns = decodeDns(obj);
  return result;
}

/**
 * Decodes a plugin's parsed stdout as libcni does: a non-empty string `cniVersion` in the
 * output wins, else `configVersion` is used; addresses are validated and normalised; unknown
 * keys are dropped. Throws CniError (code 6 / 1) with a message naming the bad field.
 *
 * Plugin output `null` decodes as `{}`. A missing `address`, `ip` or `dst` is an error (libcni
 * would print it as `"<nil>"`).
 */
export function parseResult(output: unknown, configVersion: string): CniResult {
  const raw = output === null ? {} : output;
  if (!isObject(raw)) throw decodeError(`expected a JSON object, got ${describe(raw)}`);
  const obj: JsonObject = { ...raw };
  let version = obj.cniVersion;
  if (typeof version !== "string" || version === "") {
    version = configVersion || "0.1.0";
    delete obj.cniVersion;
    obj.cniVersion = version;
  }
  const family = familyOf(version as string);
  if (family === undefined) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `unsupported CNI result version ${JSON.stringify(version)}`,
    );
  }
  const decoded = optString(obj, "cniVersion", "") ?? "";
  const supported = family === "V02"
    ? ["", ...V02_VERSIONS]
    : family === "V04"
    ? V04_VERSIONS
    : V1_VERSIONS;
  if (!supported.includes(decoded)) {
    throw decodeError(
      `result type supports [${supported.join(" ")}] but unmarshalled CNIVersion is ${
        JSON.stringify(decoded)
      }`,
    );
  }
  return family === "V02" ? decodeV02(obj, decoded) : decodeCurrent(obj, decoded, family);
}

// ---------------------------------------------------------------------------------------
// Conversion: libcni's registered converters.

function cloneDns(dns: Dns | undefined): Dns {
  return structuredClone(dns ?? {});
}

function withList<K extends "interfaces" | "ips" | "routes">(
  target: ResultCurrent,
  key: K,
  list: NonNullable<ResultCurrent[K]>,
): void {
  if (list.length > 0) target[key] = list;
}

/** V02 → V04 (`convertFrom02x`). */
function from02(from: ResultLegacy, toVersion: string): ResultCurrent {
  const out: ResultCurrent = { cniVersion: toVersion };
  const ips: IpConfig[] = [];
  const routes: Route[] = [];
  for (const [ipConf, version] of [[from.ip4, "4"], [from.ip6, "6"]] as const) {
    if (!ipConf) continue;
    const ip: IpConfig = { version, address: ipConf.ip };
    if (ipConf.gateway) ip.gateway = ipConf.gateway;
    ips.push(ip);
    routes.push(...structuredClone(ipConf.routes ?? []));
  }
  withList(out, "ips", ips);
  withList(out, "routes", routes);
  out.dns = cloneDns(from.dns);
  return out;
}

/** V04 → V02 (`convertTo02x`): first IPv4 and IPv6 entries, routes by destination family. */
function to02(from: ResultCurrent, toVersion: string): ResultLegacy {
  let ip4: ResultLegacy["ip4"];
  let ip6: ResultLegacy["ip6"];
  for (const ip of from.ips ?? []) {
    const legacy = ip.gateway ? { ip: ip.address, gateway: ip.gateway } : { ip: ip.address };
    if (ip.version === "4" && !ip4) ip4 = legacy;
    else if (ip.version === "6" && !ip6) ip6 = legacy;
    if (ip4 && ip6) break;
  }
  for (const route of from.routes ?? []) {
    const target = isIpv4(route.dst) ? ip4 : ip6;
    if (!target) continue;
    const copy: Route = route.gw ? { dst: route.dst, gw: route.gw } : { dst: route.dst };
    (target.routes ??= []).push(copy);
  }
  if (!ip4 && !ip6) {
    throw new CniError(CniErrorCode.IncompatibleVersion, "cannot convert: no valid IP addresses");
  }
  const out: ResultLegacy = { cniVersion: toVersion };
  if (ip4) out.ip4 = ip4;
  if (ip6) out.ip6 = ip6;
  out.dns = cloneDns(from.dns);
  return out;
}

function copyInterface(intf: Interface, family: Family): Interface {
  const out: Interface = { name: intf.name };
  if (intf.mac) out.mac = intf.mac;
  if (family === "V1" && intf.mtu) out.mtu = intf.mtu;
  if (intf.sandbox) out.sandbox = intf.sandbox;
  if (family === "V1" && intf.socketPath) out.socketPath = intf.socketPath;
  if (family === "V1" && intf.pciID) out.pciID = intf.pciID;
  return out;
}

/**
 * V04/V1 → V04/V1 (`convertInternal`, `convertFrom04x`, `convertTo04x`, `convertFrom100`):
 * interfaces keep the fields both families have; ips get their `version` from the address
 * when coming from V1 and lose it going to V1; routes and dns are copied whole.
 */
function toCurrent(
  from: ResultCurrent,
  toVersion: string,
  families: { from: Family; to: Family },
): ResultCurrent {
  const out: ResultCurrent = { cniVersion: toVersion };
  const rich = families.from === "V1" && families.to === "V1" ? "V1" : "V04";
  withList(out, "interfaces", (from.interfaces ?? []).map((i) => copyInterface(i, rich)));
  const ips = (from.ips ?? []).map((ip): IpConfig => {
    const copy = {} as IpConfig;
    if (families.to === "V04") {
      copy.version = families.from === "V1" ? (isIpv4(ip.address) ? "4" : "6") : ip.version;
      if (copy.version === undefined) delete copy.version;
    }
    if (ip.interface !== undefined) copy.interface = ip.interface;
    copy.address = ip.address;
    if (ip.gateway) copy.gateway = ip.gateway;
    return copy;
  });
  withList(out, "ips", ips);
  withList(out, "routes", structuredClone(from.routes ?? []));
  out.dns = cloneDns(from.dns);
  return out;
}

/**
 * Converts a result to another version (libcni converters); `""` means 0.1.0.
 * Throws CniError for impossible conversions (`cannot convert: no valid IP addresses`).
 * The same version returns the result itself; every other conversion returns a new object.
 */
export function convertResult(result: CniResult, toVersion: string): CniResult {
  const to = toVersion === "" ? "0.1.0" : toVersion;
  const from = versionOf(result);
  if (from === to) return result;
  const fromFamily = familyOf(from);
  const toFamily = familyOf(to);
  if (fromFamily === undefined || toFamily === undefined) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `no converter for CNI result version ${from} to ${to}`,
    );
  }
  if (fromFamily === "V02") {
    const legacy = result as ResultLegacy;
    if (toFamily === "V02") {
      const out: ResultLegacy = { cniVersion: to };
      if (legacy.ip4) out.ip4 = structuredClone(legacy.ip4);
      if (legacy.ip6) out.ip6 = structuredClone(legacy.ip6);
      out.dns = cloneDns(legacy.dns);
      return out;
    }
    const v04 = from02(legacy, toFamily === "V04" ? to : "0.4.0");
    return toFamily === "V04" ? v04 : toCurrent(v04, to, { from: "V04", to: "V1" });
  }
  const current = result as ResultCurrent;
  if (toFamily === "V02") {
    // A V1 result goes through 0.4.0 first, where its ips get their IP version.
    const v04 = fromFamily === "V1"
      ? toCurrent(current, "0.4.0", { from: "V1", to: "V04" })
      : current;
    return to02(v04, to);
  }
  return toCurrent(current, to, { from: fromFamily, to: toFamily });
}

// ---------------------------------------------------------------------------------------
// Serialisation with libcni's omission rules.

function routeJson(route: Route): JsonObject {
  const out: JsonObject = { dst: route.dst };
  if (route.gw) out.gw = route.gw;
  if (route.mtu) out.mtu = route.mtu;
  if (route.advmss) out.advmss = route.advmss;
  if (route.priority) out.priority = route.priority;
  if (route.table !== undefined && route.table !== null) out.table = route.table;
  if (route.scope !== undefined && route.scope !== null) out.scope = route.scope;
  return out;
}

function dnsJson(dns: Dns | undefined): JsonObject {
  const out: JsonObject = {};
  if (dns?.nameservers?.length) out.nameservers = dns.nameservers;
  if (dns?.domain) out.domain = dns.domain;
  if (dns?.search?.length) out.search = dns.search;
  if (dns?.options?.length) out.options = dns.options;
  return out;
}

function legacyIpJson(ip: NonNullable<ResultLegacy["ip4"]>): JsonObject {
  const out: JsonObject = { ip: ip.ip };
  if (ip.gateway) out.gateway = ip.gateway;
  if (ip.routes?.length) out.routes = ip.routes.map(routeJson);
  return out;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
  return out;
}

/** JSON.stringify plus the escapes Go's encoding/json adds (`<`, `>`, `&`, U+2028, U+2029). */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Serialises a result with libcni's omission rules for its version (compact JSON).
 * V1 output has its keys sorted, as libcni's custom marshaller (through a map) produces.
 */
export function resultToJson(result: CniResult): string {
  const family = familyOf(versionOf(result));
  if (family === undefined) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `unsupported CNI result version ${JSON.stringify(result.cniVersion)}`,
    );
  }
  const out: JsonObject = {};
  if (result.cniVersion) out.cniVersion = result.cniVersion;
  if (family === "V02") {
    const legacy = result as ResultLegacy;
    if (legacy.ip4) out.ip4 = legacyIpJson(legacy.ip4);
    if (legacy.ip6) out.ip6 = legacyIpJson(legacy.ip6);
    out.dns = dnsJson(legacy.dns);
    return goJson(out);
  }
  const current = result as ResultCurrent;
  if (current.interfaces?.length) {
    out.interfaces = current.interfaces.map((intf) => {
      const i: JsonObject = { name: intf.name ?? "" };
      if (intf.mac) i.mac = intf.mac;
      if (family === "V1" && intf.mtu) i.mtu = intf.mtu;
      if (intf.sandbox) i.sandbox = intf.sandbox;
      if (family === "V1" && intf.socketPath) i.socketPath = intf.socketPath;
      if (family === "V1" && intf.pciID) i.pciID = intf.pciID;
      return i;
    });
  }
  if (current.ips?.length) {
    out.ips = current.ips.map((ip) => {
      const o: JsonObject = {};
      if (family === "V04") o.version = ip.version ?? "";
      if (typeof ip.interface === "number") o.interface = ip.interface;
      o.address = ip.address;
      if (ip.gateway) o.gateway = ip.gateway;
      return o;
    });
  }
  if (current.routes?.length) out.routes = current.routes.map(routeJson);
  const dns = dnsJson(current.dns);
  if (family === "V04") {
    out.dns = dns;
    return goJson(out);
  }
  if (Object.keys(dns).length > 0) out.dns = dns;
  return goJson(sortKeys(out));
}
