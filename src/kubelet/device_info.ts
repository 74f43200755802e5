/**
 * @module
 * Device information files (NPWG device-info spec 1.1.0). A device plugin describes each
 * device it allocates in `/var/run/k8s.cni.cncf.io/devinfo/dp/<resource>-<device>-device.json`;
 * for every attachment that got a device we copy that description to the per-attachment CNI
 * file `/var/run/k8s.cni.cncf.io/devinfo/cni/<network>-<containerID>_<ifName>` (every `/`
 * replaced by `-`), whose path plugins receive as `runtimeConfig.CNIDeviceInfoFile` and may
 * update. After ADD the file's JSON becomes the network-status entry's `device-info`; DEL and
 * rollback remove it.
 *
 * This module only builds paths and touches those files: it is cheap to import.
 */

import { dirname, join } from "../util/path.ts";
import { ConfigError, errorMessage, StorageError } from "../util/errors.ts";
import type { Logger } from "../log/logger.ts";
import { writeFileAtomic } from "../util/atomic_write.ts";

/** Directory of the per-attachment CNI device-info files. */
export const DEVICE_INFO_CNI_DIR = "/var/run/k8s.cni.cncf.io/devinfo/cni";

/** Directory of the device plugins' device-info files. */
export const DEVICE_INFO_DP_DIR = "/var/run/k8s.cni.cncf.io/devinfo/dp";

/** The device-info spec version this implementation follows. */
export const DEVICE_INFO_SPEC_VERSION = "1.1.0";

/** A device-info object (spec §"device-info"); kept as read, unknown keys included. */
export interface DeviceInfo {
  /** `pci`, `vdpa`, `vhost-user` or `memif`. */
  type?: string;
  /** Spec version, e.g. `1.1.0`. */
  version?: string;
  [key: string]: unknown;
}

/** The attachment a CNI device-info file belongs to. */
export interface DeviceInfoAttachment {
  /** Delegate name: `<namespace>/<nad>` for NADs, else the CNI config name. */
  network: string;
  /** CNI_CONTAINERID. */
  containerId: string;
  /** The delegate's interface name. */
  ifName: string;
}

/** A device allocated by a device plugin. */
export interface AllocatedDevice {
  /** Extended resource name, e.g. `intel.com/sriov_netdevice`. */
  resourceName: string;
  /** The device ID the kubelet reported, e.g. a PCI address. */
  deviceId: string;
}

/** Directories of the device-info files (tests point them elsewhere). */
export interface DeviceInfoOptions {
  /** Default {@linkcode DEVICE_INFO_CNI_DIR}. */
  cniDir?: string;
  /** Default {@linkcode DEVICE_INFO_DP_DIR}. */
  dpDir?: string;
}

/**
 * Path of the CNI device-info file of an attachment:
 * `<cniDir>/<network>-<containerId>_<ifName>` with every `/` replaced by `-` (Multus's name).
 * Throws {@linkcode ConfigError} when the name could not be a file in that directory.
 *
 * @example
 * ```ts
 * import { deviceInfoPath } from "./device_info.ts";
 * deviceInfoPath({ network: "default/sriov-net", containerId: "abc", ifName: "net1" });
 * // "/var/run/k8s.cni.cncf.io/devinfo/cni/default-sriov-net-abc_net1"
 * ```
 */
export function deviceInfoPath(
  attachment: DeviceInfoAttachment,
  options: Pick<DeviceInfoOptions, "cniDir"> = {},
): string {
  const { network, containerId, ifName } = attachment;
  for (const [what, value] of [["container ID", containerId], ["interface name", ifName]]) {
    if (value === "") {
      throw new ConfigError(
        "CNIDeviceInfoFile",
        `Cannot name the device-info file of network "${network}": the ${what} is empty`,
      );
    }
  }
  const name = `${network}-${containerId}_${ifName}`.replaceAll("/", "-");
  return fileIn(options.cniDir ?? DEVICE_INFO_CNI_DIR, name, `network "${network}"`);
}

/**
 * Path of a device plugin's device-info file:
 * `<dpDir>/<resourceName>-<deviceId>-device.json`, `/` replaced by `-` in both.
 * Throws {@linkcode ConfigError} when the name could not be a file in that directory.
 */
export function devicePluginInfoPath(
  device: AllocatedDevice,
  options: Pick<DeviceInfoOptions, "dpDir"> = {},
): string {
  const name = `${device.resourceName}-${device.deviceId}-device.json`.replaceAll("/", "-");
  return fileIn(
    options.dpDir ?? DEVICE_INFO_DP_DIR,
    name,
    `device "${device.deviceId}" of resource "${device.resourceName}"`,
  );
}

function fileIn(dir: string, name: string, what: string): string {
  const bytes = new TextEncoder().encode(name).length;
  if (name.includes("\0") || name === "." || name === ".." || bytes > 255) {
    throw new ConfigError(
      "CNIDeviceInfoFile",
      `Cannot name the device-info file of ${what}: ${
        JSON.stringify(name)
      } is not a valid file name`,
      { details: "Network names, container IDs and interface names must be short and printable" },
    );
  }
  const path = join(dir, name);
  if (name.includes("/") || dirname(path) !== dirname(join(dir, "_"))) {
    throw new ConfigError(
      "CNIDeviceInfoFile",
      `Cannot name the device-info file of ${what}: ${JSON.stringify(name)} leaves "${dir}"`,
    );
  }
  return path;
}

/**
 * Copies the device plugin's description of `device` to the attachment's CNI device-info file
 * (atomically, mode 0444, directory created 0755) and returns its path; returns undefined,
 * writing nothing, when the device plugin wrote no file for the device (many do not).
 * An existing CNI file is replaced. Throws {@linkcode StorageError} when a file cannot be read
 * or written or the device plugin's file is not a JSON object; Multus ignores these errors,
 * so callers log them and go on. `options.log` is the request's logger.
 */
export async function writeDeviceInfo(
  attachment: DeviceInfoAttachment,
  device: AllocatedDevice,
  options: DeviceInfoOptions & { log: Logger },
): Promise<string | undefined> {
  const { log } = options;
  const source = devicePluginInfoPath(device, options);
  const target = deviceInfoPath(attachment, options);
  let text: string;
  try {
    text = await Deno.readTextFile(source);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      log.debug(
        `no device-info file ${source} from the device plugin of "${device.resourceName}"`,
      );
      return undefined;
    }
    throw new StorageError(
      source,
      `Cannot read the device-info file "${source}": ${errorMessage(err)}`,
      { cause: err },
    );
  }
  if (parseObject(text) === undefined) {
    throw new StorageError(
      source,
      `Cannot use the device-info file "${source}" of the device plugin of "${device.resourceName}": it is not a JSON object`,
    );
  }
  try {
    await writeFileAtomic(target, text, { mode: 0o444, dirMode: 0o755 });
  } catch (err) {
    throw new StorageError(
      target,
      `Cannot write the device-info file "${target}": ${errorMessage(err)}`,
      { cause: err },
    );
  }
  log.debug(`device-info of ${device.deviceId} copied to ${target}`);
  return target;
}

/**
 * The JSON object in the attachment's CNI device-info file, for the network-status entry's
 * `device-info`; undefined when the file is missing or is not a JSON object (logged).
 */
export async function readDeviceInfo(
  attachment: DeviceInfoAttachment,
  options: Pick<DeviceInfoOptions, "cniDir"> & { log: Logger },
): Promise<DeviceInfo | undefined> {
  const { log } = options;
  const path = deviceInfoPath(attachment, options);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      log.warn(`cannot read the device-info file ${path}: ${errorMessage(err)}`);
    }
    return undefined;
  }
  const info = parseObject(text);
  if (info === undefined) log.warn(`the device-info file ${path} is not a JSON object; ignored`);
  return info;
}

/**
 * Removes the attachment's CNI device-info file (DEL, rollback). Returns false when there was
 * none. Throws {@linkcode StorageError} when it exists and cannot be removed.
 */
export async function removeDeviceInfo(
  attachment: DeviceInfoAttachment,
  options: Pick<DeviceInfoOptions, "cniDir"> = {},
): Promise<boolean> {
  const path = deviceInfoPath(attachment, options);
  try {
    await Deno.remove(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw new StorageError(
      path,
      `Cannot remove the device-info file "${path}": ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

function parseObject(text: string): DeviceInfo | undefined {
  try {
    const value = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value;
  } catch {
    // not JSON
  }
  return undefined;
}
