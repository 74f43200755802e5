/**
 * @module
 * Which networks a pod gets. Delegates mode: the static `delegates` list. Kubernetes mode
 * (a kubeconfig is configured): the cluster network plus the pod's annotations, resolved
 * through the API before anything runs (see `multus/kube/networks.ts`).
 */

import type { Delegate } from "../plan/delegate.ts";
import type { Invocation } from "../config/invocation.ts";
import type { AddPlan, DelRebuild } from "../plan/plans.ts";

/** Networks to add for this invocation. */
export async function planAdd(inv: Invocation): Promise<AddPlan> {
  if (usesKubernetes(inv)) {
    const { planKubernetesAdd } = await import("../kube/networks.ts");
    return await planKubernetesAdd(inv);
  }
  return { delegates: staticDelegates(inv), pod: inv.pod };
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
export function usesKubernetes(inv: Pick<Invocation, "conf" | "env">): boolean {
  return inv.conf.kubeconfig !== "" || inv.conf.clusterNetwork !== "" ||
    (inv.env.KUBERNETES_SERVICE_HOST !== undefined &&
      inv.env.KUBERNETES_SERVICE_PORT !== undefined);
}

function staticDelegates(inv: Invocation): Delegate[] {
  return inv.conf.delegates.map((config) => ({ name: config.name, config }));
}
