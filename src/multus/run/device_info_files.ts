/**
 * @module
 * Device-info files (device-info spec 1.1.0) of the networks that got a device: the path
 * handed to the delegate as `CNIDeviceInfoFile`, the copy of the device plugin's file before
 * ADD, its content for network-status, and its removal on DEL and rollback. The NFV module
 * is loaded only for delegates with a device.
 */

import type { PlannedDelegate } from "../plan/delegate.ts";
import type { Invocation } from "../config/invocation.ts";
import { errorMessage } from "../../util/errors.ts";

function options(inv: Invocation) {
  return {
    cniDir: `${inv.conf.deviceInfoDir}/cni`,
    dpDir: `${inv.conf.deviceInfoDir}/dp`,
    log: inv.log,
  };
}

function attachment(inv: Invocation, d: PlannedDelegate) {
  return { network: d.name, containerId: inv.request.containerId, ifName: d.ifName };
}

/** The `CNIDeviceInfoFile` of an extra network with a device (Multus: not the default network). */
export async function deviceInfoFileFor(
  inv: Invocation,
  d: PlannedDelegate,
): Promise<string | undefined> {
  if (!d.deviceID || d.isMaster) return undefined;
  const { deviceInfoPath } = await import("../../kubelet/device_info.ts");
  return deviceInfoPath(attachment(inv, d), options(inv));
}

/** Copies the device plugin's file for the delegate's device; failures are only logged. */
export async function writeDeviceInfoFor(inv: Invocation, d: PlannedDelegate): Promise<void> {
  if (!d.deviceID || !d.resourceName || d.isMaster) return;
  const { writeDeviceInfo } = await import("../../kubelet/device_info.ts");
  try {
    await writeDeviceInfo(attachment(inv, d), {
      resourceName: d.resourceName,
      deviceId: d.deviceID,
    }, options(inv));
  } catch (err) {
    inv.log.warn(`device-info of ${d.name} (${d.ifName}) not written: ${errorMessage(err)}`, {
      network: d.name,
    });
  }
}

/** The device-info of the delegate's device, for network-status; undefined when none. */
export async function readDeviceInfoFor(inv: Invocation, d: PlannedDelegate): Promise<unknown> {
  if (!d.deviceID || d.isMaster) return undefined;
  const { readDeviceInfo } = await import("../../kubelet/device_info.ts");
  try {
    return await readDeviceInfo(attachment(inv, d), options(inv));
  } catch (err) {
    inv.log.warn(`device-info of ${d.name} (${d.ifName}) unreadable: ${errorMessage(err)}`, {
      network: d.name,
    });
    return undefined;
  }
}

/** Removes the delegate's device-info file (DEL, rollback); absent is fine. */
export async function removeDeviceInfoFor(inv: Invocation, d: PlannedDelegate): Promise<void> {
  if (!d.deviceID || d.isMaster) return;
  const { removeDeviceInfo } = await import("../../kubelet/device_info.ts");
  try {
    await removeDeviceInfo(attachment(inv, d), options(inv));
  } catch (err) {
    inv.log.warn(`device-info of ${d.name} (${d.ifName}) not removed: ${errorMessage(err)}`, {
      network: d.name,
    });
  }
}
