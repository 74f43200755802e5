/**
 * @module
 * The `k8s.v1.cni.cncf.io/network-status` annotation, in Multus's format (what tools that
 * read it expect): one
 * entry per sandbox interface of each delegate's result.
 */

import { convertResult, type Dns, type ResultCurrent } from "../../cni/result.ts";
import type { AttachedNetwork } from "../plan/plans.ts";

/** Pod annotation written after ADD. */
export const NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status";

/** One entry of the annotation. */
export interface NetworkStatus {
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  mtu?: number;
  default?: boolean;
  dns: Dns;
  "device-info"?: unknown;
  gateway?: string[];
}

/** Builds the entries for every attached network, in order. */
export function networkStatuses(attached: AttachedNetwork[]): NetworkStatus[] {
  return attached.flatMap((a) => statusesOf(a, a.deviceInfo));
}

/** The annotation value: `[` + entries indented by 4 spaces, joined by `,` + `]`, as Multus. */
export function formatNetworkStatus(statuses: NetworkStatus[]): string {
  return `[${statuses.map((s) => JSON.stringify(s, null, 4)).join(",")}]`;
}

function statusesOf(a: AttachedNetwork, deviceInfo: unknown): NetworkStatus[] {
  const result = convertResult(a.result, "1.1.0") as ResultCurrent;
  const ifaces = result.interfaces ?? [];
  const ips = result.ips ?? [];
  // A default route without `gw` goes via the IP's gateway (CNI spec); Multus prints "<nil>".
  const gateways = (result.routes ?? [])
    .filter((r) => isDefaultDst(r.dst))
    .map((r) => r.gw ?? gatewayOfFamily(ips, r.dst))
    .filter((gw): gw is string => gw !== undefined);
  const dns = compactDns(result.dns);
  const base = (name: string) => {
    const s: NetworkStatus = { name, dns };
    return s;
  };

  if (ifaces.length === 1) {
    const s = base(a.delegate.name);
    const iface = ifaces[0];
    if (iface.sandbox) {
      s.interface = iface.name;
      if (iface.mac) s.mac = iface.mac;
      if (iface.mtu) s.mtu = iface.mtu;
    }
    return [
      finish(s, ips.map((ip) => bare(ip.address)), a.delegate.isMaster, deviceInfo, gateways),
    ];
  }

  const entries: { index: number; status: NetworkStatus; ips: string[] }[] = [];
  ifaces.forEach((iface, index) => {
    if (!iface.sandbox) return;
    const s = base(a.delegate.name);
    s.interface = iface.name;
    if (iface.mac) s.mac = iface.mac;
    if (iface.mtu) s.mtu = iface.mtu;
    entries.push({ index, status: s, ips: [] });
  });
  if (entries.length === 0) return [];
  for (const ip of ips) {
    const target = ip.interface !== undefined
      ? entries.find((e) => e.index === ip.interface)
      : entries[entries.length - 1];
    target?.ips.push(bare(ip.address));
  }
  let defaultIndex = -1;
  if (a.delegate.isMaster) {
    const withGw = ips.find((ip) => ip.gateway && entries.some((e) => e.index === ip.interface));
    defaultIndex = withGw ? entries.findIndex((e) => e.index === withGw.interface) : 0;
  }
  return entries.map((e, i) => finish(e.status, e.ips, i === defaultIndex, deviceInfo, gateways));
}

function finish(
  s: NetworkStatus,
  ips: string[],
  isDefault: boolean,
  deviceInfo: unknown,
  gateways: string[],
): NetworkStatus {
  // Key order as Multus: name, interface, ips, mac, mtu, default, dns, device-info, gateway.
  const out: NetworkStatus = { name: s.name } as NetworkStatus;
  if (s.interface) out.interface = s.interface;
  if (ips.length) out.ips = ips;
  if (s.mac) out.mac = s.mac;
  if (s.mtu) out.mtu = s.mtu;
  if (isDefault) out.default = true;
  out.dns = s.dns;
  if (deviceInfo !== undefined) out["device-info"] = deviceInfo;
  if (gateways.length) out.gateway = gateways;
  return out;
}

function gatewayOfFamily(
  ips: { address: string; gateway?: string }[],
  dst: string,
): string | undefined {
  const v6 = dst.includes(":");
  return ips.find((ip) => ip.gateway && ip.gateway.includes(":") === v6)?.gateway;
}

function bare(address: string): string {
  return address.split("/")[0];
}

function isDefaultDst(dst: string): boolean {
  const ip = dst.split("/")[0];
  return ip === "0.0.0.0" || ip === "::";
}

function compactDns(dns: Dns | undefined): Dns {
  const out: Dns = {};
  if (dns?.nameservers?.length) out.nameservers = dns.nameservers;
  if (dns?.domain) out.domain = dns.domain;
  if (dns?.search?.length) out.search = dns.search;
  if (dns?.options?.length) out.options = dns.options;
  return out;
}
