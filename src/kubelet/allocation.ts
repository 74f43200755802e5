/**
 * @module
 * The devices the kubelet allocated to a pod, as a map resource name → device IDs (what
 * Multus's kubeletclient returns). Read, as in Multus, from the kubelet PodResources API when
 * its socket exists, else from the kubelet's device checkpoint file. Knows nothing of
 * networks: `multus/kube/device_ids.ts` hands the IDs to delegates.
 */

import { CodedError, ConfigError, errorCode, errorMessage } from "../util/errors.ts";
import { log as rootLog, type Logger } from "../log/logger.ts";
import { checkpointEntriesOf, DEFAULT_CHECKPOINT_FILE } from "./checkpoint.ts";
import {
  DEFAULT_POD_RESOURCES_SOCKET,
  fetchPodResources,
  type PodResources,
  PodResourcesError,
} from "./pod_resources.ts";

/** The pod whose devices are looked up. */
export interface PodRef {
  namespace: string;
  name: string;
  /** Pod UID: needed for the checkpoint file. */
  uid: string;
}

/** Where the kubelet's allocations are read. */
export interface DeviceSourceOptions {
  /** The kubelet PodResources socket (default `/var/lib/kubelet/pod-resources/kubelet.sock`). */
  podResourcesSocket?: string;
  /** The kubelet device checkpoint (default `/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint`). */
  checkpointFile?: string;
  /** Deadline of the PodResources look-up in ms (default 5000). */
  timeoutMs?: number;
  /** The request's logger (default: the root logger). */
  log?: Logger;
}

/** The devices the kubelet allocated to a pod, and where that was read. */
export interface DeviceAllocation {
  /** `PodResources Get`, `PodResources List` or `checkpoint`. */
  source: "PodResources Get" | "PodResources List" | "checkpoint";
  /** True when the source knew the pod at all. */
  podKnown: boolean;
  /** Resource name → device IDs, every container in order, each ID once. */
  devices: Map<string, string[]>;
}

/**
 * Reads the devices the kubelet allocated to `pod`: PodResources API (`Get`, else `List`),
 * or the checkpoint file when the socket does not exist. Device IDs per resource are in
 * allocation order: containers in the order reported, each container's devices NUMA node by
 * NUMA node in the kubelet's order. Throws {@linkcode CodedError} when neither source can be
 * read.
 */
export async function podDeviceAllocation(
  pod: PodRef,
  options: DeviceSourceOptions = {},
): Promise<DeviceAllocation> {
  const podText = `pod "${pod.namespace}/${pod.name}"`;
  if (pod.namespace === "" || pod.name === "") {
    throw new ConfigError(
      "K8S_POD_NAME",
      "Cannot find the devices the kubelet allocated: the pod name or namespace is unknown",
      { details: "The runtime must pass K8S_POD_NAMESPACE and K8S_POD_NAME in CNI_ARGS" },
    );
  }
  const socket = options.podResourcesSocket ?? DEFAULT_POD_RESOURCES_SOCKET;
  try {
    const found = await fetchPodResources(pod, {
      socket,
      timeoutMs: options.timeoutMs,
      log: options.log,
    });
    return {
      source: found.method === "Get" ? "PodResources Get" : "PodResources List",
      podKnown: found.pod !== undefined,
      devices: devicesOfPod(found.pod),
    };
  } catch (err) {
    if (!(err instanceof PodResourcesError && err.socketMissing)) {
      const message = errorMessage(err);
      throw wrap(err, `Cannot find the devices the kubelet allocated to ${podText}: ${message}`);
    }
    (options.log ?? rootLog).debug(`${err.message}; reading the kubelet device checkpoint instead`);
  }
  const file = options.checkpointFile ?? DEFAULT_CHECKPOINT_FILE;
  try {
    const entries = await checkpointEntriesOf(pod.uid, { file });
    const devices = new Map<string, string[]>();
    for (const e of entries) addDevices(devices, e.resourceName, e.deviceIds);
    return { source: "checkpoint", podKnown: entries.length > 0, devices };
  } catch (err) {
    throw wrap(
      err,
      `Cannot find the devices the kubelet allocated to ${podText}: the kubelet PodResources socket "${socket}" does not exist and ${
        lowerFirst(errorMessage(err))
      }`,
      "Check that the kubelet runs on this node and that its pod-resources and device-plugins directories are visible to the plugin",
    );
  }
}

function devicesOfPod(pod: PodResources | undefined): Map<string, string[]> {
  const devices = new Map<string, string[]>();
  for (const container of pod?.containers ?? []) {
    // One entry per resource and NUMA node, NUMA nodes in the kubelet's map order: sort
    // each resource's entries by NUMA node (stable) so the order does not change between calls.
    const byResource = new Map<string, { numa: number; ids: string[] }[]>();
    for (const d of container.devices) {
      const list = byResource.get(d.resourceName) ?? [];
      list.push({ numa: d.numaNodes.length ? Math.min(...d.numaNodes) : -1, ids: d.deviceIds });
      byResource.set(d.resourceName, list);
    }
    for (const [resource, list] of byResource) {
      list.sort((a, b) => a.numa - b.numa);
      for (const entry of list) addDevices(devices, resource, entry.ids);
    }
  }
  return devices;
}

function addDevices(devices: Map<string, string[]>, resource: string, ids: string[]): void {
  if (resource === "") return;
  let list = devices.get(resource);
  if (!list) devices.set(resource, list = []);
  for (const id of ids) if (id !== "" && !list.includes(id)) list.push(id);
}

/** A coded error with `message`, keeping the code and details of `err`. */
function wrap(err: unknown, message: string, details?: string): CodedError {
  const innerDetails = err instanceof CodedError ? err.details : undefined;
  return new CodedError(errorCode(err), message, { details: innerDetails ?? details, cause: err });
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
