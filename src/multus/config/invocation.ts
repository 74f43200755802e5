/**
 * @module
 * One run of the plugin: the CNI request, the Multus configuration, the pod it is for, and
 * the per-delegate runtime parameters derived from them (inventory 4.5, 4.6; decisions 11, 12).
 */

import type { CniRequest } from "../../cni/request.ts";
import type { MultusNetConf } from "./netconf.ts";

/** Who the attachment belongs to. */
export interface PodIdentity {
  namespace: string;
  name: string;
  uid: string;
}

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
