/**
 * @module
 * Which networks a pod gets. Delegates mode: the static `delegates` list. Kubernetes mode
 * (a kubeconfig is configured): the cluster network plus the pod's annotations, resolved
 * through the API before anything runs (see `k8s_networks.ts`).
 */

import type { CniResult } from "../../cni/result.ts";
import type { Delegate } from "../plan/delegate.ts";
import type { Invocation } from "../config/invocation.ts";
import type { PodIdentity } from "./scratch_cache.ts";

/** A delegate attached by ADD, with its result. */
export interface AttachedNetwork {
  delegate: Delegate & { ifName: string; isMaster: boolean };
  result: CniResult;
  /** The device-info (spec 1.1.0) of the device handed to the delegate, when known. */
  deviceInfo?: unknown;
}

/** What ADD must do for this pod. */
export interface AddPlan {
  delegates: Delegate[];
  /** The pod, with its UID from the API when it was looked up. */
  pod?: PodIdentity;
  /** Runs after every delegate succeeded (network-status); a failure rolls ADD back. */
  publish?: (attached: AttachedNetwork[]) => Promise<void>;
  /** Extra work that must not delay ADD (events); awaited with a short cap at the end. */
  background?: (attached: AttachedNetwork[]) => Promise<void>;
  /** Set when ADD must succeed without attaching anything (the pod no longer exists). */
  emptyResult?: boolean;
}

/** Networks to add for this invocation. */
export async function planAdd(inv: Invocation): Promise<AddPlan> {
  if (usesKubernetes(inv)) {
    const { planKubernetesAdd } = await import("../kube/networks.ts");
    return await planKubernetesAdd(inv);
  }
  return { delegates: staticDelegates(inv), pod: inv.pod };
}

/** The networks a DEL without a readable scratch cache can rebuild. */
export interface DelRebuild {
  delegates: Delegate[];
  /**
   * Set when the pod's own networks may be missing because the API server could not be asked
   * (a retry later may find them): what went wrong.
   */
  incomplete?: string;
}

/**
 * Networks to delete when the scratch cache is absent or unreadable: in delegates mode the
 * configured delegates; in Kubernetes mode the networks rebuilt from the API when it
 * answers, as Multus does (a cache lost with the node's disk), else those known without it.
 */
export async function planDelWithoutCache(inv: Invocation): Promise<DelRebuild> {
  if (usesKubernetes(inv)) {
    const { planKubernetesDelWithoutCache } = await import("../kube/networks.ts");
    return await planKubernetesDelWithoutCache(inv);
  }
  return { delegates: staticDelegates(inv) };
}

/** The static delegates of delegates mode (CHECK without a cache). */
export function staticNetworks(inv: Invocation): Delegate[] {
  return staticDelegates(inv);
}

/** The cluster default network (STATUS, GC). */
export async function defaultNetwork(inv: Invocation): Promise<Delegate> {
  if (inv.conf.clusterNetwork !== "") {
    const { resolveClusterNetwork } = await import("../kube/networks.ts");
    return await resolveClusterNetwork(inv);
  }
  return staticDelegates(inv)[0];
}

/** True when networks come from the Kubernetes API (kubeconfig or in-cluster variables). */
export function usesKubernetes(inv: Invocation): boolean {
  return inv.conf.kubeconfig !== "" || inv.conf.clusterNetwork !== "" ||
    (Deno.env.get("KUBERNETES_SERVICE_HOST") !== undefined &&
      Deno.env.get("KUBERNETES_SERVICE_PORT") !== undefined);
}

function staticDelegates(inv: Invocation): Delegate[] {
  return inv.conf.delegates.map((config) => ({ name: config.name, config }));
}
