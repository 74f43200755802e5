/**
 * @module
 * Device IDs for networks backed by a device resource (SR-IOV VFs, DPDK ports…): a
 * NetworkAttachmentDefinition annotated `k8s.v1.cni.cncf.io/resourceName: <resource>` gets
 * one of the devices allocated to the pod for that resource: by the kubelet (device plugins)
 * or through the pod's DRA resource claims (devices published with the attributes
 * `k8s.cni.cncf.io/resourceName` and `k8s.cni.cncf.io/deviceID`). The ID is written
 * into the delegate's configuration as `deviceID` and `pciBusID` (top level of a conf, every
 * plugin of a conflist; all other bytes kept) and set as `delegate.deviceID`, which reaches
 * plugins declaring the `deviceID` capability as `runtimeConfig.deviceID`.
 */

import { ConfigError } from "../../cni/errors.ts";
import { type NetworkConfig, parseNetworkConfig } from "../../cni/network_config.ts";
import { rawArrayElements, RawJson, rawValueAt, setTopLevelKeys } from "../../cni/raw_json.ts";
import { log as rootLog } from "../../log/logger.ts";
import {
  type DeviceAllocation,
  type DeviceSourceOptions,
  podDeviceAllocation,
  type PodRef,
} from "../../kubelet/allocation.ts";
import type { Pod } from "../../k8s/types.ts";
import type { Delegate } from "../plan/delegate.ts";
import { type DraAllocation, podDraDevices, podHasClaims } from "./dra_devices.ts";
import type { DraObjects } from "./dra_objects.ts";

/** Where a pod's devices are read: the kubelet and, for a pod with resource claims, DRA. */
export interface DeviceIdOptions extends DeviceSourceOptions {
  /** The pod object and where its claims and slices are read; without it, device plugins only. */
  dra?: { pod: Pod; objects: DraObjects };
}

/** One device of the pod's pool for networks, and where it came from (for the log). */
interface PoolDevice {
  id: string;
  from: string;
}

/**
 * Gives every delegate with a `resourceName` a device ID from the devices allocated to this
 * pod: delegates in order, across all networks, each ID used once (two networks on the
 * same resource get its first and second device). The devices of a resource are those of the
 * pod's resource claims first (claims in the pod's status order, each claim's allocation in
 * order), then the kubelet's device-plugin devices; the kubelet is asked only when the claims
 * do not cover every such network (a pod without claims: always). The ID is injected into
 * the delegate's config (`deviceID`, `pciBusID`) and set as `delegate.deviceID`, replacing a
 * `deviceID` the pod's selection asked for (logged, as Multus does). Nothing is changed
 * unless every delegate gets a device.
 *
 * Throws {@linkcode ConfigError} naming the pod, network and resource when too few devices
 * were allocated (and the claims, for a pod with claims), and {@linkcode CniError} when the
 * allocation cannot be read.
 */
export async function assignDeviceIds(
  pod: PodRef,
  delegates: Delegate[],
  options: DeviceIdOptions = {},
): Promise<void> {
  const wanted = delegates.filter((d) => d.resourceName);
  if (wanted.length === 0) return;
  const log = options.log ?? rootLog;
  const podText = `pod "${pod.namespace}/${pod.name}"`;

  let dra: DraAllocation | undefined;
  if (options.dra && podHasClaims(options.dra.pod)) {
    dra = await podDraDevices(options.dra.pod, options.dra.objects, {
      networks: wanted.map((d) => d.name),
      resources: new Set(wanted.map((d) => d.resourceName!)),
      log,
    });
  }
  const pool = new Map<string, PoolDevice[]>();
  for (const [resource, devices] of dra?.devices ?? []) {
    pool.set(resource, devices.map((d) => ({ id: d.id, from: `resource claim "${d.claim}"` })));
  }
  let kubelet: DeviceAllocation | undefined;
  if (dra && covers(pool, wanted)) {
    log.debug(
      `the resource claims of ${podText} give every device network a device; the kubelet is not asked`,
    );
  } else {
    kubelet = await podDeviceAllocation(pod, options);
    for (const [resource, ids] of kubelet.devices) {
      let list = pool.get(resource);
      if (!list) pool.set(resource, list = []);
      for (const id of ids) {
        if (!list.some((d) => d.id === id)) list.push({ id, from: `the ${kubelet.source}` });
      }
    }
  }

  const used = new Map<string, number>();
  const planned: { delegate: Delegate; device: PoolDevice; config: NetworkConfig }[] = [];
  for (const d of wanted) {
    const resource = d.resourceName!;
    const devices = pool.get(resource) ?? [];
    const index = used.get(resource) ?? 0;
    if (index >= devices.length) {
      throw tooFewDevices({ delegate: d, podText, devices, index, kubelet, dra });
    }
    used.set(resource, index + 1);
    const device = devices[index];
    const config = injectDeviceId(d.config, device.id, `network "${d.name}"`);
    planned.push({ delegate: d, device, config });
  }
  for (const { delegate, device, config } of planned) {
    if (delegate.deviceID && delegate.deviceID !== device.id) {
      log.warn(
        `network "${delegate.name}": the pod asked for deviceID "${delegate.deviceID}" but the network's resource "${delegate.resourceName}" provides "${device.id}"; using "${device.id}"`,
      );
    }
    delegate.deviceID = device.id;
    delegate.config = config;
    log.verbose(
      `network "${delegate.name}" gets device "${device.id}" of "${delegate.resourceName}" (from ${device.from})`,
    );
  }
}

/** True when the pool has a device for every delegate, counted per resource. */
function covers(pool: Map<string, PoolDevice[]>, wanted: Delegate[]): boolean {
  const needed = new Map<string, number>();
  for (const d of wanted) needed.set(d.resourceName!, (needed.get(d.resourceName!) ?? 0) + 1);
  return [...needed].every(([resource, n]) => (pool.get(resource)?.length ?? 0) >= n);
}

function tooFewDevices(
  what: {
    delegate: Delegate;
    podText: string;
    devices: PoolDevice[];
    index: number;
    kubelet?: DeviceAllocation;
    dra?: DraAllocation;
  },
): ConfigError {
  const { delegate: d, podText, devices, index, kubelet, dra } = what;
  const resource = d.resourceName!;
  let counts: string;
  if (!dra) {
    const known = kubelet && !kubelet.podKnown ? `; the ${kubelet.source} has no entry for it` : "";
    counts = `${devices.length} allocated, ${index} used by earlier networks${known}`;
  } else {
    const fromClaims = dra.devices.get(resource)?.length ?? 0;
    const claims = dra.claims.map((c) => `"${c}"`).join(", ");
    const claimWord = dra.claims.length === 1 ? "claim" : "claims";
    counts = `${fromClaims} from its resource ${claimWord} ${claims}, ${
      devices.length - fromClaims
    } from the kubelet's device plugins, ${index} used by earlier networks`;
    if (dra.skipped.length > 0) counts += `; not published for networks: ${dra.skipped.join("; ")}`;
  }
  const request = dra
    ? `Allocate one device with the attributes "k8s.cni.cncf.io/resourceName" = "${resource}" and "k8s.cni.cncf.io/deviceID" in the pod's resource claims, or request "${resource}" in the pod's container resources, for every network of the pod that uses it`
    : `Request "${resource}" in the pod's container resources (requests and limits), one device for every network of the pod that uses it`;
  return new ConfigError(
    "k8s.v1.cni.cncf.io/resourceName",
    `Cannot attach network "${d.name}" to ${podText}: it asks for a device of "${resource}" but ${
      dra ? "the pod has none left" : "the kubelet allocated none left to this pod"
    } (${counts})`,
    { details: request },
  );
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
