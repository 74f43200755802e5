/**
 * @module
 * Kubernetes mode: the pod is read once, its networks resolved (cluster network, default
 * networks, the default-network and networks annotations, NADs fetched concurrently) before
 * anything is attached; the network-status annotation is written in one request afterwards.
 */

import { CniError, CniErrorCode, ConfigError } from "../../cni/errors.ts";
import {
  type NetworkConfig,
  parseNetworkConfig,
  withTopLevelKeys,
} from "../../cni/network_config.ts";
import { RawJson, setTopLevelKeys } from "../../cni/raw_json.ts";
import { convertResult, type ResultCurrent } from "../../cni/result.ts";
import { K8sApiError } from "../../k8s/errors.ts";
import type { NetworkAttachmentDefinition, Pod } from "../../k8s/types.ts";
import { findConfigByName, loadConfigFromPath } from "../config/conf_dir.ts";
import type { Delegate } from "../plan/delegate.ts";
import { type Invocation, type KubeSession, podLabel } from "../config/invocation.ts";
import { errorMessage, explain } from "../../util/errors.ts";
import {
  formatNetworkStatus,
  NETWORK_STATUS_ANNOTATION,
  networkStatuses,
} from "./network_status.ts";
import type { AddPlan, AttachedNetwork, DelRebuild } from "../plan/plans.ts";
import {
  DEFAULT_NETWORK_ANNOTATION,
  NETWORKS_ANNOTATION,
  type NetworkSelection,
  parseSelection,
  selectionToDelegate,
} from "../plan/selection.ts";

/** Longest wait for events at the end of ADD; they never fail or slow ADD beyond this. */
const EVENT_WAIT_MS = 1000;

/** Plans ADD in Kubernetes mode. */
export async function planKubernetesAdd(inv: Invocation): Promise<AddPlan> {
  const kube = await inv.kube();
  let pod: Pod | undefined;
  if (kube && inv.pod) pod = await getPodForAdd(inv, kube);
  const delegates = await resolveNetworks(inv, kube, pod, { forAdd: true });
  const identity = pod
    ? { namespace: inv.pod!.namespace, name: inv.pod!.name, uid: pod.metadata.uid ?? inv.pod!.uid }
    : inv.pod;
  if (identity && delegates.some((d) => d.resourceName)) {
    const { assignDeviceIds } = await import("./device_ids.ts");
    const { ApiDraObjects } = await import("./dra_objects.ts");
    await assignDeviceIds(identity, delegates, {
      podResourcesSocket: inv.conf.podResourcesSocket,
      checkpointFile: inv.conf.deviceCheckpointFile,
      log: inv.log,
      dra: kube && pod ? { pod, objects: new ApiDraObjects(kube.client) } : undefined,
    });
  }
  const plan: AddPlan = { delegates, pod: identity };
  if (kube && pod) {
    const podObject = pod;
    if (!inv.conf.systemNamespaces.includes(inv.pod!.namespace)) {
      plan.publish = async (attached) => {
        const value = formatNetworkStatus(networkStatuses(attached));
        await kube.setPodAnnotations(podObject, { [NETWORK_STATUS_ANNOTATION]: value });
      };
    }
    plan.background = (attached) =>
      withCap(sendAddedEvents({ kube, pod: podObject, attached }), EVENT_WAIT_MS);
  }
  return plan;
}

/**
 * Networks for a DEL without a readable scratch cache: rebuilt from the API when the pod can
 * be read; otherwise (or when the pod's networks cannot be rebuilt) only what is known
 * without the API (static delegates, cluster network file). `incomplete` says when the API
 * could not be asked and a later retry may know more.
 */
export async function planKubernetesDelWithoutCache(inv: Invocation): Promise<DelRebuild> {
  let kube: KubeSession | undefined;
  let pod: Pod | undefined;
  let incomplete: string | undefined;
  try {
    kube = await inv.kube();
    if (kube && inv.pod) pod = await kube.readPod(inv.pod.namespace, inv.pod.name);
  } catch (err) {
    inv.log.warn(
      `DEL of ${podLabel(inv)}: cannot read the pod (${
        errorMessage(err)
      }); deleting the networks known without the API`,
    );
    if (apiUnavailable(err)) incomplete = `cannot read the pod: ${errorMessage(err)}`;
    kube = undefined;
  }
  if (pod && inv.pod?.uid && pod.metadata.uid && pod.metadata.uid !== inv.pod.uid) pod = undefined;
  try {
    return {
      delegates: await resolveNetworks(inv, pod ? kube : undefined, pod, { forAdd: false }),
      incomplete,
    };
  } catch (err) {
    inv.log.warn(
      `DEL of ${podLabel(inv)}: cannot rebuild the networks (${errorMessage(err)})`,
    );
    if (apiUnavailable(err)) incomplete ??= errorMessage(err);
    if (!pod) return { delegates: [], incomplete };
  }
  // The pod's own networks cannot be rebuilt: those the configuration names alone can be.
  try {
    return {
      delegates: await resolveNetworks(inv, undefined, undefined, { forAdd: false }),
      incomplete,
    };
  } catch (err) {
    inv.log.warn(
      `DEL of ${podLabel(inv)}: cannot rebuild the cluster network (${errorMessage(err)})`,
    );
    return { delegates: [], incomplete };
  }
}

/** True when `err` (or its cause) is an API failure that may pass on its own. */
function apiUnavailable(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof K8sApiError) return e.retryable;
  }
  return false;
}

/** The cluster default network (STATUS, GC and planning). */
export async function resolveClusterNetwork(inv: Invocation): Promise<Delegate> {
  const kube = await inv.kube().catch(() => undefined);
  return await resolveNamedNetwork(inv, kube, inv.conf.clusterNetwork, "clusterNetwork");
}

async function getPodForAdd(inv: Invocation, kube: KubeSession): Promise<Pod> {
  const { namespace, name, uid } = inv.pod!;
  let pod: Pod;
  try {
    pod = await kube.readPod(namespace, name);
  } catch (err) {
    if (err instanceof K8sApiError && err.notFound) {
      throw new CniError(
        CniErrorCode.UnknownContainer,
        `Cannot add networks to pod "${namespace}/${name}": the pod does not exist in the API server`,
        {
          details: "The pod was deleted or recreated; the runtime will retry with the new pod",
          cause: err,
        },
      );
    }
    throw err;
  }
  const apiUid = pod.metadata.uid ?? "";
  const source = pod.metadata.annotations?.["kubernetes.io/config.source"];
  const isStatic = source !== undefined && source !== "api";
  if (uid && apiUid && uid !== apiUid && !isStatic) {
    throw new CniError(
      CniErrorCode.UnknownContainer,
      `Cannot add networks to pod "${namespace}/${name}": expected pod UID "${uid}" but the API server has "${apiUid}"`,
      {
        details:
          "The pod was replaced by a new one with the same name; the runtime will set up the new pod",
      },
    );
  }
  return pod;
}

/** Resolves every network of the pod, in order; nothing runs before all are known. */
async function resolveNetworks(
  inv: Invocation,
  kube: KubeSession | undefined,
  pod: Pod | undefined,
  { forAdd }: { forAdd: boolean },
): Promise<Delegate[]> {
  const { conf } = inv;
  const delegates: Delegate[] = [];
  if (conf.clusterNetwork !== "") {
    delegates.push(await resolveNamedNetwork(inv, kube, conf.clusterNetwork, "clusterNetwork"));
    const podNamespace = inv.pod?.namespace;
    if (!podNamespace || !conf.systemNamespaces.includes(podNamespace)) {
      for (const name of conf.defaultNetworks) {
        delegates.push(await resolveNamedNetwork(inv, kube, name, "defaultNetworks"));
      }
    }
  } else {
    for (const config of conf.delegates) delegates.push({ name: config.name, config });
  }
  if (!pod || !kube) return delegates;

  const annotations = pod.metadata.annotations ?? {};
  const podNs = inv.pod!.namespace;
  const defaultNetwork = annotations[DEFAULT_NETWORK_ANNOTATION];
  if (defaultNetwork !== undefined) {
    const where = `pod "${podNs}/${inv.pod!.name}" annotation ${DEFAULT_NETWORK_ANNOTATION}`;
    const selections = parseSelection(defaultNetwork, {
      defaultNamespace: conf.multusNamespace,
      where,
    });
    if (selections.length !== 1) {
      throw new ConfigError(
        DEFAULT_NETWORK_ANNOTATION,
        `Cannot use ${where}: it must name exactly one network, found ${selections.length}`,
      );
    }
    const master = await delegateFromSelection(inv, kube, pod, selections[0], forAdd);
    delegates[0] = master;
  }

  const networks = annotations[NETWORKS_ANNOTATION];
  if (networks !== undefined) {
    const where = `pod "${podNs}/${inv.pod!.name}" annotation ${NETWORKS_ANNOTATION}`;
    const selections = parseSelection(networks, { defaultNamespace: podNs, where });
    for (const s of selections) checkNamespaceIsolation(inv, s);
    const extra = await mapConcurrently(
      selections,
      NAD_READS_IN_FLIGHT,
      (s) => delegateFromSelection(inv, kube, pod, s, forAdd),
    );
    delegates.push(...extra);
  }
  return delegates;
}

function checkNamespaceIsolation(inv: Invocation, s: NetworkSelection): void {
  const { conf } = inv;
  const podNs = inv.pod!.namespace;
  if (!conf.namespaceIsolation || s.namespace === podNs) return;
  if (conf.globalNamespaces.includes(s.namespace)) return;
  throw new ConfigError(
    "namespace",
    `Cannot attach network "${s.namespace}/${s.name}" to ${
      podLabel(inv)
    }: namespace isolation is on and pods in "${podNs}" may only use networks of their own namespace or of ${
      JSON.stringify(conf.globalNamespaces)
    }`,
    {
      details:
        `Create the NetworkAttachmentDefinition in namespace "${podNs}", or add "${s.namespace}" to globalNamespaces in the multus configuration`,
    },
  );
}

/** A NAD named in an annotation → delegate, with the pod's requests. */
async function delegateFromSelection(
  inv: Invocation,
  kube: KubeSession,
  pod: Pod,
  s: NetworkSelection,
  forAdd: boolean,
): Promise<Delegate> {
  const label = `${s.namespace}/${s.name}`;
  let nad: NetworkAttachmentDefinition;
  try {
    nad = await kube.readNad(s.namespace, s.name);
  } catch (err) {
    if (err instanceof K8sApiError && err.notFound) {
      const message =
        `cannot find a network-attachment-definition (${s.name}) in namespace (${s.namespace})`;
      if (forAdd) {
        await withCap(
          kube.postEvent(pod, { type: "Warning", reason: "NoNetworkFound", message }),
          EVENT_WAIT_MS,
        );
      }
      throw new ConfigError(
        "networks",
        `Cannot attach network "${label}" to ${
          podLabel(inv)
        }: the NetworkAttachmentDefinition "${s.name}" does not exist in namespace "${s.namespace}"`,
        {
          details:
            `Create it (kubectl -n ${s.namespace} get network-attachment-definitions), or fix the name in the pod's ${NETWORKS_ANNOTATION} annotation`,
          cause: err,
        },
      );
    }
    throw explain(err, `Cannot attach network "${label}" to ${podLabel(inv)}`);
  }
  let config = await nadConfig(inv, nad, label);
  if (s.cniArgs) {
    try {
      config = withCniArgs(config, s.cniArgs, label);
    } catch (err) {
      throw explain(err, `Cannot attach network "${label}" to ${podLabel(inv)}`);
    }
  }
  return selectionToDelegate(s, {
    config,
    resourceName: nad.metadata.annotations?.["k8s.v1.cni.cncf.io/resourceName"],
  });
}

/** The CNI config of a NAD: `spec.config` (name injected when missing) or the file in confDir. */
async function nadConfig(
  inv: Invocation,
  nad: NetworkAttachmentDefinition,
  label: string,
): Promise<NetworkConfig> {
  const text = nad.spec?.config ?? "";
  if (text.trim() === "") {
    const found = await findConfigByName(inv.conf.confDir, nad.metadata.name);
    if (!found) {
      throw new ConfigError(
        "spec.config",
        `Cannot attach network "${label}" to ${
          podLabel(inv)
        }: the NetworkAttachmentDefinition has no spec.config and no file in ${inv.conf.confDir} has "name": "${nad.metadata.name}"`,
        {
          details:
            `Put the CNI configuration in spec.config, or a config file named "${nad.metadata.name}" in ${inv.conf.confDir} on every node`,
        },
      );
    }
    return found;
  }
  const where = `NetworkAttachmentDefinition "${label}" spec.config`;
  let config: NetworkConfig;
  try {
    config = parseNetworkConfig(text, where);
  } catch (err) {
    throw new ConfigError(
      "spec.config",
      `Cannot attach network "${label}" to ${podLabel(inv)}: ${errorMessage(err)}`,
      {
        details: `Fix spec.config of the NetworkAttachmentDefinition (kubectl -n ${
          label.split("/")[0]
        } edit network-attachment-definition ${nad.metadata.name})`,
        cause: err,
      },
    );
  }
  if (config.name === "") config = withTopLevelKeys(config, { name: nad.metadata.name }, where);
  return config;
}

/** Merges the selection's `cni-args` into `args.cni` of the config (every plugin of a list). */
function withCniArgs(
  config: NetworkConfig,
  cniArgs: Record<string, unknown>,
  label: string,
): NetworkConfig {
  const merge = (raw: string): string => {
    const parsed = JSON.parse(raw) as Record<string, unknown>;
    const args = (parsed.args && typeof parsed.args === "object")
      ? parsed.args as Record<string, unknown>
      : {};
    const cni = (args.cni && typeof args.cni === "object")
      ? args.cni as Record<string, unknown>
      : {};
    return setTopLevelKeys(raw, { args: { ...args, cni: { ...cni, ...cniArgs } } });
  };
  const where = `network "${label}" with cni-args`;
  if (!config.isList) return parseNetworkConfig(merge(config.raw), where);
  const plugins = config.plugins.map((p) => merge(p.raw));
  return parseNetworkConfig(
    setTopLevelKeys(config.raw, { plugins: new RawJson(`[${plugins.join(",")}]`) }),
    where,
  );
}

/**
 * A network named in the Multus config (`clusterNetwork`, `defaultNetworks`): a path; else a
 * NAD in multusNamespace (when the API is reachable); else a config name in confDir.
 */
async function resolveNamedNetwork(
  inv: Invocation,
  kube: KubeSession | undefined,
  value: string,
  key: string,
): Promise<Delegate> {
  const { conf } = inv;
  if (value.includes("/")) {
    const config = await loadConfigFromPath(value, key);
    return { name: config.name, config };
  }
  if (kube) {
    try {
      const nad = await kube.readNad(conf.multusNamespace, value);
      const label = `${conf.multusNamespace}/${value}`;
      return { name: label, config: await nadConfig(inv, nad, label) };
    } catch (err) {
      if (err instanceof K8sApiError && !err.notFound) {
        const pod = inv.pod ? ` for ${podLabel(inv)}` : "";
        throw explain(
          err,
          `Cannot read the ${key} network "${conf.multusNamespace}/${value}"${pod}`,
        );
      }
      if (!(err instanceof K8sApiError)) throw err;
    }
  }
  const config = await findConfigByName(conf.confDir, value);
  if (!config) {
    throw new ConfigError(
      key,
      `Cannot find the ${key} network "${value}": no NetworkAttachmentDefinition "${conf.multusNamespace}/${value}"${
        kube ? "" : " (no API access)"
      } and no config named "${value}" in ${conf.confDir}`,
      {
        details:
          `Create the NAD in ${conf.multusNamespace}, put the config in ${conf.confDir}, or set ${key} to the config file's path`,
      },
    );
  }
  return { name: config.name, config };
}

/** `AddedInterface` events, concurrently. */
async function sendAddedEvents(
  { kube, pod, attached }: { kube: KubeSession; pod: Pod; attached: AttachedNetwork[] },
): Promise<void> {
  await Promise.all(attached.map(async ({ delegate, result }) => {
    const current = convertResult(result, "1.1.0") as ResultCurrent;
    if (!current.interfaces?.length && !current.ips?.length) return;
    const ips = (current.ips ?? []).map((ip) => ip.address).join(" ");
    const message = `Add ${delegate.ifName} [${ips}] from ${delegate.name}`;
    await kube.postEvent(pod, { type: "Normal", reason: "AddedInterface", message });
  }));
}

/**
 * NAD reads in flight at once: enough to overlap their latencies, few enough that a pod
 * listing thousands of networks cannot exhaust file descriptors or flood the API server.
 */
const NAD_READS_IN_FLIGHT = 16;

/** `Promise.all(items.map(fn))` with at most `limit` calls running; stops at the first error. */
async function mapConcurrently<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function withCap(work: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const cap = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([work.catch(() => {}), cap]);
  } finally {
    clearTimeout(timer);
  }
}
