/**
 * @module
 * Device IDs for networks backed by a device plugin resource (SR-IOV VFs, DPDK ports…): a
 * NetworkAttachmentDefinition annotated `k8s.v1.cni.cncf.io/resourceName: <resource>` gets
 * one of the devices the kubelet allocated to the pod for that resource. The ID is written
 * into the delegate's configuration as `deviceID` and `pciBusID` (top level of a conf, every
 * plugin of a conflist; all other bytes kept) and set as `delegate.deviceID`, which reaches
 * plugins declaring the `deviceID` capability as `runtimeConfig.deviceID`.
 */

import { ConfigError } from "../../cni/errors.ts";
import { type NetworkConfig, parseNetworkConfig } from "../../cni/network_config.ts";
import { rawArrayElements, RawJson, rawValueAt, setTopLevelKeys } from "../../cni/raw_json.ts";
import { log as rootLog } from "../../log/logger.ts";
import {
  type DeviceSourceOptions,
  podDeviceAllocation,
  type PodRef,
} from "../../kubelet/allocation.ts";
import type { Delegate } from "../plan/delegate.ts";

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
  const log = options.log ?? rootLog;
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
