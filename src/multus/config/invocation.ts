/**
 * @module
 * One run of the plugin: the CNI request, the Multus configuration, the pod it is for, and
 * the per-delegate runtime parameters derived from them (inventory 4.5, 4.6; decisions 11, 12).
 */

import { CniError } from "../../cni/errors.ts";
import type { RuntimeConf } from "../../cni/invoke.ts";
import type { CniRequest } from "../../cni/request.ts";
import type { MultusNetConf } from "./netconf.ts";
import type { PlannedDelegate } from "../plan/delegate.ts";
import type { CachedDelegate, PodIdentity } from "../run/scratch_cache.ts";

/** The request and configuration of this run. */
export interface Invocation {
  request: CniRequest;
  conf: MultusNetConf;
  /** The pod named by CNI_ARGS (K8S_POD_*), when given. */
  pod?: PodIdentity;
  /** K8S_POD_INFRA_CONTAINER_ID from CNI_ARGS ("" when absent). */
  infraContainerId: string;
  /**
   * Set for a DEL whose multus configuration cannot be loaded (`conf` is then the defaults):
   * why, and whether its `cniDir` could still be read from the text.
   */
  unusableConf?: { error: unknown; cniDirKnown: boolean };
}

/** Reads the pod identity from CNI_ARGS (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_UID`). */
export function podFromArgs(args: [string, string][]): {
  pod?: PodIdentity;
  infraContainerId: string;
} {
  const get = (key: string) => args.findLast(([k]) => k === key)?.[1] ?? "";
  const namespace = get("K8S_POD_NAMESPACE");
  const name = get("K8S_POD_NAME");
  const pod = namespace && name ? { namespace, name, uid: get("K8S_POD_UID") } : undefined;
  return { pod, infraContainerId: get("K8S_POD_INFRA_CONTAINER_ID") };
}

/** `pod "ns/name"` when known, else `container "<id>"`, for messages. */
export function podLabel(inv: Pick<Invocation, "pod" | "request">): string {
  if (inv.pod) return `pod "${inv.pod.namespace}/${inv.pod.name}"`;
  return `container "${inv.request.containerId.slice(0, 12)}"`;
}

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
 * only (decision 12); the pod's requests for the others (decision 11).
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
  };
}

/** Wraps an error with what failed and for whom, keeping its CNI code and details. */
export function explain(err: unknown, what: string, details?: string): CniError {
  const code = err instanceof CniError ? err.code : 999;
  const inner = err instanceof Error ? err.message : String(err);
  const innerDetails = err instanceof CniError ? err.details : undefined;
  return new CniError(code, `${what}: ${inner}`, {
    details: [innerDetails, details].filter(Boolean).join("; ") || undefined,
    cause: err,
  });
}
