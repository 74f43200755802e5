/**
 * @module
 * The kubelet device manager's checkpoint file
 * (`/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint`): the devices allocated to
 * every container, by pod UID. Multus reads it when the PodResources socket is absent; so do
 * we.
 *
 * Format (kubelet ≥ 1.20): `{"Data":{"PodDeviceEntries":[{"PodUID","ContainerName",
 * "ResourceName","DeviceIDs":{"<numa node>":["id",…]},"AllocResp"}],"RegisteredDevices":{…}},
 * "Checksum":…}`. Older kubelets wrote `DeviceIDs` as a plain list; both are read.
 */

import { errorMessage, isObject, StorageError } from "../util/errors.ts";

/** Where the kubelet keeps its device checkpoint. */
export const DEFAULT_CHECKPOINT_FILE =
  "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint";

/** The devices of one resource allocated to one container. */
export interface CheckpointEntry {
  podUid: string;
  containerName: string;
  resourceName: string;
  /** Device IDs: NUMA nodes in ascending order, each node's IDs in the kubelet's order. */
  deviceIds: string[];
}

/**
 * Reads every entry of the checkpoint file, in file order. Throws {@linkcode StorageError}
 * when the file cannot be read or is not a device checkpoint.
 */
export async function readCheckpoint(path: string = DEFAULT_CHECKPOINT_FILE): Promise<
  CheckpointEntry[]
> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new StorageError(
      path,
      `Cannot read the kubelet device checkpoint "${path}": ${errorMessage(err)}`,
      { cause: err },
    );
  }
  return parseCheckpoint(text, path);
}

/**
 * The entries of the pod with UID `podUid`, in file order. Throws {@linkcode StorageError}
 * (file unreadable or malformed, or `podUid` empty).
 */
export async function checkpointEntriesOf(
  podUid: string,
  options: { file?: string } = {},
): Promise<CheckpointEntry[]> {
  const path = options.file ?? DEFAULT_CHECKPOINT_FILE;
  if (podUid === "") {
    throw new StorageError(
      path,
      `Cannot look up devices in the kubelet device checkpoint "${path}": the pod UID is unknown`,
      { details: "The runtime passes K8S_POD_UID in CNI_ARGS, or the pod is read from the API" },
    );
  }
  return (await readCheckpoint(path)).filter((e) => e.podUid === podUid);
}

/** Parses the checkpoint text. Throws {@linkcode StorageError} naming `path`. */
export function parseCheckpoint(text: string, path: string): CheckpointEntry[] {
  const bad = (reason: string) =>
    new StorageError(path, `Cannot use the kubelet device checkpoint "${path}": ${reason}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new StorageError(
      path,
      `Cannot use the kubelet device checkpoint "${path}": invalid JSON: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  if (!isObject(doc) || !isObject(doc.Data)) throw bad('no "Data" object');
  const entries = doc.Data.PodDeviceEntries;
  if (entries === undefined || entries === null) return [];
  if (!Array.isArray(entries)) throw bad('"Data.PodDeviceEntries" is not a list');
  return entries.map((entry: unknown, i: number): CheckpointEntry => {
    const where = `Data.PodDeviceEntries[${i}]`;
    if (!isObject(entry)) throw bad(`${where} is not an object`);
    const str = (key: string): string => {
      const value = entry[key];
      if (value === undefined || value === null) return "";
      if (typeof value !== "string") throw bad(`${where}.${key} is not a string`);
      return value;
    };
    return {
      podUid: str("PodUID"),
      containerName: str("ContainerName"),
      resourceName: str("ResourceName"),
      deviceIds: deviceIdsOf(entry.DeviceIDs, () => bad(`${where}.DeviceIDs is malformed`)),
    };
  });
}

function deviceIdsOf(value: unknown, bad: () => Error): string[] {
  if (value === undefined || value === null) return [];
  const strings = (list: unknown): string[] => {
    if (list === null) return [];
    if (!Array.isArray(list) || !list.every((id) => typeof id === "string")) throw bad();
    return list;
  };
  if (Array.isArray(value)) return strings(value);
  if (!isObject(value)) throw bad();
  const nodes = Object.keys(value).sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  return nodes.flatMap((node) => strings(value[node]));
}
