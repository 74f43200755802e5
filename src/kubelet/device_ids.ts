/**
 * @module
 * Device IDs for networks backed by a device plugin resource (SR-IOV VFs, DPDK ports…): a
 * NetworkAttachmentDefinition annotated `k8s.v1.cni.cncf.io/resourceName: <resource>` gets
 * one of the devices the kubelet allocated to the pod for that resource. The ID is written
 * into the delegate's configuration as `deviceID` and `pciBusID` (top level of a conf, every
 * plugin of a conflist; all other bytes kept) and set as `delegate.deviceID`, which reaches
 * plugins declaring the `deviceID` capability as `runtimeConfig.deviceID`.
 *
 * The allocation comes, as in Multus, from the kubelet PodResources API when its socket
 * exists, else from the kubelet's device checkpoint file.
 */

import { CniError, ConfigError } from "../cni/errors.ts";
import { type NetworkConfig, parseNetworkConfig } from "../cni/network_config.ts";
import { rawArrayElements, RawJson, rawValueAt, setTopLevelKeys } from "../cni/raw_json.ts";
import { log } from "../log/logger.ts";
import type { Delegate } from "../multus/plan/delegate.ts";
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
 * NUMA node in the kubelet's order. Throws {@linkcode CniError} when neither source can be
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
    const found = await fetchPodResources(pod, { socket, timeoutMs: options.timeoutMs });
    return {
      source: found.method === "Get" ? "PodResources Get" : "PodResources List",
      podKnown: found.pod !== undefined,
      devices: devicesOfPod(found.pod),
    };
  } catch (err) {
    if (!(err instanceof PodResourcesError && err.socketMissing)) {
      const message = err instanceof Error ? err.message : String(err);
      throw wrap(err, `Cannot find the devices the kubelet allocated to ${podText}: ${message}`);
    }
    log.debug(`${err.message}; reading the kubelet device checkpoint instead`);
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
        lowerFirst(err instanceof Error ? err.message : String(err))
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

/** A CniError with `message`, keeping the code and details of `err`. */
function wrap(err: unknown, message: string, details?: string): CniError {
  const code = err instanceof CniError ? err.code : 999;
  const innerDetails = err instanceof CniError ? err.details : undefined;
  return new CniError(code, message, { details: innerDetails ?? details, cause: err });
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/**
 * Gives every delegate with a `resourceName` a device ID from the kubelet's allocation for
 * this pod: delegates in order, across all networks, each ID used once (two networks on the
 * same resource get its first and second device). The ID is injected into the delegate's
 * config (`deviceID`, `pciBusID`) and set as `delegate.deviceID`, replacing a `deviceID` the
 * pod's selection asked for (logged, as Multus does). Nothing is changed unless every
 * delegate gets a device.
 *
 * Throws {@linkcode ConfigError} naming the pod, network and resource when the kubelet
 * allocated too few devices, and {@linkcode CniError} when the allocation cannot be read.
 */
export async function assignDeviceIds(
  pod: PodRef,
  delegates: Delegate[],
  options: DeviceSourceOptions = {},
): Promise<void> {
  const wanted = delegates.filter((d) => d.resourceName);
  if (wanted.length === 0) return;
  const allocation = await podDeviceAllocation(pod, options);
  const podText = `pod "${pod.namespace}/${pod.name}"`;
  const used = new Map<string, number>();
  const planned: { delegate: Delegate; id: string; config: NetworkConfig }[] = [];
  for (const d of wanted) {
    const resource = d.resourceName!;
    const ids = allocation.devices.get(resource) ?? [];
    const index = used.get(resource) ?? 0;
    if (index >= ids.length) {
      const known = allocation.podKnown ? "" : `; the ${allocation.source} has no entry for it`;
      throw new ConfigError(
        "k8s.v1.cni.cncf.io/resourceName",
        `Cannot attach network "${d.name}" to ${podText}: it asks for a device of "${resource}" but the kubelet allocated none left to this pod (${ids.length} allocated, ${index} used by earlier networks${known})`,
        {
          details:
            `Request "${resource}" in the pod's container resources (requests and limits), one device for every network of the pod that uses it`,
        },
      );
    }
    used.set(resource, index + 1);
    const id = ids[index];
    const config = injectDeviceId(d.config, id, `network "${d.name}"`);
    planned.push({ delegate: d, id, config });
  }
  for (const { delegate, id, config } of planned) {
    if (delegate.deviceID && delegate.deviceID !== id) {
      log.warn(
        `network "${delegate.name}": the pod asked for deviceID "${delegate.deviceID}" but the network's resource "${delegate.resourceName}" provides "${id}"; using "${id}"`,
      );
    }
    delegate.deviceID = id;
    delegate.config = config;
    log.verbose(
      `network "${delegate.name}" gets device "${id}" of "${delegate.resourceName}" (from the ${allocation.source})`,
    );
  }
}

/**
 * Returns the configuration with `deviceID` and `pciBusID` set to `deviceId` at the top level
 * of a conf or in every plugin of a conflist; every other byte of the text is kept.
 * `where` names the configuration in errors.
 */
export function injectDeviceId(
  config: NetworkConfig,
  deviceId: string,
  where: string,
): NetworkConfig {
  const values = { deviceID: deviceId, pciBusID: deviceId };
  const raw = config.isList ? setInEveryPlugin(config.raw, values) : setTopLevelKeys(
    config.raw,
    values,
  );
  return parseNetworkConfig(raw, where);
}

/** Sets top-level keys in every element of `plugins`, keeping the bytes around them. */
function setInEveryPlugin(raw: string, values: Record<string, unknown>): string {
  const arrayText = rawValueAt(raw, ["plugins"]);
  const elements = rawArrayElements(raw, ["plugins"]);
  if (arrayText === undefined || elements === undefined) return raw;
  let edited: string | undefined = "[";
  let cursor = 1;
  for (const element of elements) {
    let at = arrayText.indexOf(element, cursor);
    while (at !== -1 && !SEPARATOR.test(arrayText.slice(cursor, at))) {
      at = arrayText.indexOf(element, at + 1);
    }
    if (at === -1) {
      edited = undefined; // cannot happen: the elements were read from this text
      break;
    }
    edited += arrayText.slice(cursor, at) + setTopLevelKeys(element, values);
    cursor = at + element.length;
  }
  if (edited === undefined) {
    edited = `[${elements.map((e) => setTopLevelKeys(e, values)).join(",")}]`;
  } else {
    edited += arrayText.slice(cursor);
  }
  let marker = "__nfv_plugins__";
  while (raw.includes(marker)) marker += "_";
  const text = edited;
  return setTopLevelKeys(raw, { plugins: new RawJson(marker) }).replace(marker, () => text);
}

/** What may stand between array elements: whitespace, commas and JSONC comments. */
const SEPARATOR = /^(?:\s|,|\/\/[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*$/;
