/**
 * @module
 * What each delegate is run with: its CNI_ARGS, capability arguments, plugin search path and
 * the rest of libcni's runtime parameters, derived from the invocation.
 */

import type { RuntimeConf } from "../../cni/invoke.ts";
import type { Invocation } from "../config/invocation.ts";
import type { CachedDelegate, PlannedDelegate } from "./delegate.ts";

/**
 * CNI_ARGS for delegates: Multus's five base pairs, then the runtime's pairs not already
 * present (an empty base value is filled in place). Multus repeats duplicates; we do not.
 */
export function delegateArgs(inv: Invocation): [string, string][] {
  const base: [string, string][] = [
    ["IgnoreUnknown", "true"],
    ["K8S_POD_NAMESPACE", inv.pod?.namespace ?? ""],
    ["K8S_POD_NAME", inv.pod?.name ?? ""],
    ["K8S_POD_INFRA_CONTAINER_ID", inv.infraContainerId],
    ["K8S_POD_UID", inv.pod?.uid ?? ""],
  ];
  for (const [key, value] of inv.request.args) {
    const existing = base.find(([k]) => k === key);
    if (!existing) base.push([key, value]);
    else if (existing[1] === "" && value !== "") existing[1] = value;
  }
  return base;
}

/**
 * Capability arguments of a delegate: the runtime's `runtimeConfig` for the default network
 * only (a port mapping or bandwidth limit meant for the pod's main interface must not land
 * on every extra one); the pod's requests for the others.
 */
export function capabilityArgsFor(
  d: PlannedDelegate,
  runtimeConfig: Record<string, unknown>,
): Record<string, unknown> {
  if (d.isMaster) return { ...runtimeConfig };
  const caps: Record<string, unknown> = {};
  if (d.portMappings?.length) caps.portMappings = d.portMappings;
  if (d.bandwidth) caps.bandwidth = d.bandwidth;
  if (d.ipRequest?.length) caps.ips = d.ipRequest;
  if (d.macRequest) caps.mac = d.macRequest;
  if (d.infinibandGUID) caps.infinibandGUID = d.infinibandGUID;
  if (d.deviceID) caps.deviceID = d.deviceID;
  return caps;
}

/** Plugin search path: `CNI_PATH` then `binDir`, without repeats. */
export function pluginPath(inv: Invocation): string[] {
  return [...new Set([...inv.request.path, inv.conf.binDir].filter((p) => p !== ""))];
}

/** The runtime parameters for one delegate and command. */
export function runtimeConfFor(
  inv: Invocation,
  d: CachedDelegate,
  command: "ADD" | "DEL" | "CHECK",
): RuntimeConf {
  const args = d.args ? d.args.map(([k, v]) => [k, v] as [string, string]) : delegateArgs(inv);
  if (command === "ADD") {
    if (d.macRequest) args.push(["MAC", d.macRequest]);
    if (d.ipRequest?.length) args.push(["IP", d.ipRequest.join(",")]);
  }
  return {
    containerId: inv.request.containerId,
    netns: inv.request.netns,
    ifName: d.ifName,
    args,
    capabilityArgs: d.capabilityArgs ?? capabilityArgsFor(d, inv.conf.runtimeConfig),
    path: pluginPath(inv),
    cacheDir: inv.conf.cniDir,
    timeoutMs: inv.conf.delegateTimeoutSeconds * 1000,
    exec: inv.exec,
    log: inv.log,
  };
}
