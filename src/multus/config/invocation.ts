/**
 * @module
 * One request: the CNI request, the Multus configuration, the pod it is for, and the values
 * it works with (its logger, its API session, the way delegates are run). Everything a
 * request needs travels in this value; nothing outlives it but what its creator shares.
 */

import type { Exec } from "../../cni/exec.ts";
import type { CniRequest } from "../../cni/request.ts";
import type { KubeClient, PodEventOptions } from "../../k8s/client.ts";
import type { NetworkAttachmentDefinition, Pod } from "../../k8s/types.ts";
import type { Logger } from "../../log/logger.ts";
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
  /** The environment the request came with (in-cluster API variables are read from it). */
  env: Record<string, string | undefined>;
  /** This request's logger: its lines name the container and pod; sinks are shared. */
  log: Logger;
  /**
   * This request's API session, opened on first use (the same one every time); undefined
   * without API access. Rejects when the configured access cannot be used.
   */
  kube: () => Promise<KubeSession | undefined>;
  /** How delegate plugins are found and run (a fake in unit tests). */
  exec: Exec;
}

/**
 * A request's session with the API server (`multus/kube/session.ts`): the client, and reads
 * made once per request.
 */
export interface KubeSession {
  /** The client (a daemon's is shared by its requests). */
  readonly client: KubeClient;
  /** Reads a NetworkAttachmentDefinition once per request. */
  readNad(namespace: string, name: string): Promise<NetworkAttachmentDefinition>;
  /**
   * Reads the pod once per request (the read may have been started early). A daemon may
   * answer from its watch cache: then the pod is trimmed to the fields the plugin uses.
   */
  readPod(namespace: string, name: string): Promise<Pod>;
  /** Sets (string) or removes (null) annotations of `pod`, as read with `readPod`. */
  setPodAnnotations(pod: Pod, annotations: Record<string, string | null>): Promise<void>;
  /**
   * Posts an event about the pod: at once in the thin plugin, through a bounded queue off
   * the request's path in a daemon. Never throws; a lost event is logged.
   */
  postEvent(pod: Pod, event: PodEventOptions): Promise<void>;
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
