/**
 * @module
 * The per-container scratch cache `<cniDir>/<containerId>`: everything DEL needs (delegates,
 * interface names, CNI_ARGS, capability arguments, pod identity), written before the first
 * delegate runs. The file keeps Multus's format (a JSON array of DelegateNetConf objects with
 * the config in `Bytes`) plus keys of ours, so a cache written by Multus is deleted correctly
 * after an upgrade, and Multus can read ours after a downgrade. One key of ours names the
 * multus network (the configuration `name`, which the runtime keys attachments by) that wrote
 * the file: GC of one network must not release another's. Caches without it (written by
 * Multus or before we recorded it) belong to an unknown network.
 */

import { join } from "../../util/path.ts";
import { StorageError } from "../../cni/errors.ts";
import { parseNetworkConfig } from "../../cni/network_config.ts";
import { validateContainerId } from "../../cni/request.ts";
import { removeStaleTempFiles, writeFileAtomic } from "../../util/atomic_write.ts";
import type { CachedDelegate } from "../plan/delegate.ts";
import type { PodIdentity } from "../config/invocation.ts";
import { errorMessage } from "../../util/errors.ts";

export type { CachedDelegate };

/** Path of a container's scratch cache; the container id is validated first. */
export function scratchCachePath(cniDir: string, containerId: string): string {
  validateContainerId(containerId);
  return join(cniDir, containerId);
}

/**
 * The sandbox a cache belongs to, as the runtime's ADD named it: what a later change of the
 * pod's networks (hot-plug) needs to run delegates in it.
 */
export interface SandboxRecord {
  /** `CNI_NETNS`. */
  netns: string;
  /** `CNI_IFNAME` of the default network. */
  ifName: string;
  /** `CNI_PATH`. */
  path: string[];
}

/**
 * Writes the scratch cache atomically (file 0600, directory 0700); `network` is the multus
 * configuration's `name`, recorded in every entry, as is `sandbox` when given.
 */
export async function saveScratchCache(
  cniDir: string,
  containerId: string,
  network: string,
  delegates: CachedDelegate[],
  sandbox?: SandboxRecord,
): Promise<void> {
  const path = scratchCachePath(cniDir, containerId);
  const entries = delegates.map((d) => toMultusEntry(d, network, sandbox));
  try {
    await writeFileAtomic(path, JSON.stringify(entries), { mode: 0o600, dirMode: 0o700 });
  } catch (err) {
    throw new StorageError(
      path,
      `Cannot save the delegates to ${path}: ${errorMessage(err)}`,
      {
        cause: err,
        details:
          `Check that ${cniDir} is writable and not full (cniDir in the multus configuration)`,
      },
    );
  }
}

/** What reading the scratch cache found. */
export type ScratchCacheState =
  | { kind: "absent" }
  | { kind: "corrupt"; path: string; reason: string }
  | {
    kind: "found";
    path: string;
    delegates: CachedDelegate[];
    /** The multus network that wrote the file; undefined for caches that do not say. */
    network?: string;
    /** The sandbox, for caches written since it is recorded. */
    sandbox?: SandboxRecord;
  };

/**
 * Reads a container's scratch cache. Entries written by Multus (no `ifName`) get their
 * interface names as Multus computes them from `cniIfName`.
 */
export async function loadScratchCache(
  cniDir: string,
  containerId: string,
  cniIfName: string,
): Promise<ScratchCacheState> {
  const path = scratchCachePath(cniDir, containerId);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { kind: "absent" };
    return { kind: "corrupt", path, reason: errorMessage(err) };
  }
  try {
    const entries = JSON.parse(text);
    if (!Array.isArray(entries) || entries.length === 0) {
      return { kind: "corrupt", path, reason: "not a non-empty JSON array" };
    }
    const delegates = entries.map((e, i) => fromMultusEntry(e, i, cniIfName));
    const network = entries[0]?.[NETWORK_KEY];
    return {
      kind: "found",
      path,
      delegates,
      network: typeof network === "string" && network !== "" ? network : undefined,
      sandbox: sandboxOf(entries[0]?.[SANDBOX_KEY]),
    };
  } catch (err) {
    return { kind: "corrupt", path, reason: errorMessage(err) };
  }
}

/**
 * Removes a container's scratch cache, and the temp file of a write the plugin was killed in;
 * absent is fine.
 */
export async function removeScratchCache(cniDir: string, containerId: string): Promise<void> {
  const path = scratchCachePath(cniDir, containerId);
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new StorageError(path, `Cannot remove ${path}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }
  await removeStaleTempFiles(path);
}

/**
 * Key of the multus network's name in each entry. Go's encoding/json matches keys
 * case-insensitively; no field of Multus's DelegateNetConf has this name, so Multus ignores it.
 */
const NETWORK_KEY = "multusNetwork";
/** Key of the sandbox record in each entry (ours; Multus ignores it). */
const SANDBOX_KEY = "sandbox";

function sandboxOf(value: unknown): SandboxRecord | undefined {
  if (!value || typeof value !== "object") return undefined;
  const r = value as Record<string, unknown>;
  if (typeof r.netns !== "string" || r.netns === "" || typeof r.ifName !== "string") {
    return undefined;
  }
  const path = Array.isArray(r.path) ? r.path.filter((p) => typeof p === "string") : [];
  return { netns: r.netns, ifName: r.ifName, path };
}

function toMultusEntry(
  d: CachedDelegate,
  network: string,
  sandbox: SandboxRecord | undefined,
): Record<string, unknown> {
  const c = d.config;
  const conf = c.isList
    ? { cniVersion: c.cniVersion, name: c.name }
    : { cniVersion: c.cniVersion, name: c.name, type: c.plugins[0].type };
  const confList = c.isList
    ? { cniVersion: c.cniVersion, name: c.name, plugins: c.plugins.map((p) => ({ type: p.type })) }
    : {};
  const entry: Record<string, unknown> = {
    Conf: conf,
    ConfList: confList,
    Name: d.name,
    ifnameRequest: d.ifnameRequest,
    macRequest: d.macRequest,
    infinibandGUIDRequest: d.infinibandGUID,
    ipRequest: d.ipRequest,
    "default-route": d.defaultRoute,
    IsFilterV4Gateway: false,
    IsFilterV6Gateway: false,
    deviceID: d.deviceID,
    resourceName: d.resourceName,
    Bytes: new TextEncoder().encode(c.raw).toBase64(),
    // Ours (ignored by Multus):
    [NETWORK_KEY]: network,
    ifName: d.ifName,
    isMaster: d.isMaster,
    portMappings: d.portMappings,
    bandwidth: d.bandwidth,
    args: d.args,
    capabilityArgs: d.capabilityArgs,
    pod: d.pod,
    selection: d.selection,
    [SANDBOX_KEY]: sandbox,
  };
  for (const key of Object.keys(entry)) if (entry[key] === undefined) delete entry[key];
  return entry;
}

function fromMultusEntry(e: unknown, index: number, cniIfName: string): CachedDelegate {
  if (e === null || typeof e !== "object") throw new Error(`entry ${index} is not an object`);
  const r = e as Record<string, unknown>;
  if (typeof r.Bytes !== "string") throw new Error(`entry ${index} has no "Bytes"`);
  const raw = new TextDecoder().decode(Uint8Array.fromBase64(r.Bytes));
  const config = parseNetworkConfig(raw, `cached delegate ${index}`);
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const ifnameRequest = str(r.ifnameRequest);
  const isMaster = typeof r.isMaster === "boolean" ? r.isMaster : index === 0;
  return {
    name: str(r.Name) ?? config.name,
    config,
    ifnameRequest,
    macRequest: str(r.macRequest),
    infinibandGUID: str(r.infinibandGUIDRequest),
    ipRequest: Array.isArray(r.ipRequest) ? r.ipRequest.map(String) : undefined,
    defaultRoute: Array.isArray(r["default-route"]) ? r["default-route"].map(String) : undefined,
    deviceID: str(r.deviceID),
    resourceName: str(r.resourceName),
    portMappings: Array.isArray(r.portMappings) ? r.portMappings : undefined,
    bandwidth: r.bandwidth && typeof r.bandwidth === "object" ? r.bandwidth : undefined,
    ifName: str(r.ifName) ?? ifnameRequest ?? (index === 0 ? cniIfName : `net${index}`),
    isMaster,
    args: Array.isArray(r.args) ? (r.args as [string, string][]) : undefined,
    capabilityArgs: r.capabilityArgs && typeof r.capabilityArgs === "object"
      ? (r.capabilityArgs as Record<string, unknown>)
      : undefined,
    pod: r.pod && typeof r.pod === "object" ? (r.pod as PodIdentity) : undefined,
    selection: str(r.selection),
  };
}
