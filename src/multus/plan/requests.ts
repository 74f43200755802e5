/**
 * @module
 * What the pod asked of a network (ips, mac, portMappings, bandwidth, infiniband-guid) must
 * be honoured or ADD fails: Multus silently gives the pod an interface without it. Requests a result cannot show are checked against
 * the declared capabilities before anything runs; IPs and MAC are checked in the result.
 */

import { CniErrorCode, ConfigError } from "../../cni/errors.ts";
import { type CniResult, convertResult, type ResultCurrent } from "../../cni/result.ts";
import type { Delegate, PlannedDelegate } from "./delegate.ts";

const UNVERIFIABLE: [keyof Delegate, string, string][] = [
  ["portMappings", "portMappings", "portMappings"],
  ["bandwidth", "bandwidth", "bandwidth"],
  ["infinibandGUID", "infinibandGUID", "infiniband-guid"],
];

/**
 * Fails before anything runs when a network is asked for port mappings, bandwidth or an
 * InfiniBand GUID but none of its plugins declares that capability.
 */
export function checkRequestCapabilities(d: Delegate, podLabel: string): void {
  for (const [field, capability, selectionKey] of UNVERIFIABLE) {
    if (d[field] === undefined) continue;
    if (d.config.plugins.some((p) => p.capabilities[capability])) continue;
    throw new ConfigError(
      selectionKey,
      `Cannot attach network "${d.name}" to ${podLabel}: the pod asks for "${selectionKey}" but no plugin of this network declares the "${capability}" capability`,
      {
        code: CniErrorCode.UnsupportedField,
        details:
          `Add "capabilities": {"${capability}": true} to a plugin of the network that honours it, or remove "${selectionKey}" from the pod's network selection`,
      },
    );
  }
}

/** Fails when the result lacks a requested IP address or MAC address. */
export function verifyRequests(d: PlannedDelegate, result: CniResult): void {
  if (!d.ipRequest?.length && !d.macRequest) return;
  const current = convertResult(result, "1.1.0") as ResultCurrent;
  const sandboxIfaces = new Set<number>();
  (current.interfaces ?? []).forEach((iface, i) => {
    if (iface.sandbox) sandboxIfaces.add(i);
  });
  for (const requested of d.ipRequest ?? []) {
    const ip = requested.split("/")[0].toLowerCase();
    const found = (current.ips ?? []).some((entry) => sameIp(entry.address.split("/")[0], ip));
    if (!found) {
      throw new ConfigError(
        "ips",
        `network "${d.name}" did not assign the requested IP ${requested} to ${d.ifName}`,
        {
          code: CniErrorCode.UnsupportedField,
          details:
            `Use an IPAM that honours requested IPs (e.g. "static", with "capabilities": {"ips": true}) for this network, or remove "ips" from the pod's network selection`,
        },
      );
    }
  }
  if (d.macRequest) {
    const mac = d.macRequest.toLowerCase();
    const ifaces = current.interfaces ?? [];
    const found = ifaces.some((iface) =>
      iface.name === d.ifName && iface.mac?.toLowerCase() === mac
    ) || ifaces.some((iface) => iface.sandbox && iface.mac?.toLowerCase() === mac);
    if (!found) {
      throw new ConfigError(
        "mac",
        `network "${d.name}" did not give ${d.ifName} the requested MAC ${d.macRequest}`,
        {
          code: CniErrorCode.UnsupportedField,
          details:
            `Declare "capabilities": {"mac": true} on a plugin that sets MAC addresses (e.g. tuning or macvlan), or remove "mac" from the pod's network selection`,
        },
      );
    }
  }
}

function sameIp(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
