/**
 * @module
 * libcni's results cache: `<cacheDir>/results/<network>-<containerId>-<ifName>`, format
 * `cniCacheV1`, so tools that read libcni caches understand ours.
 */

import { join } from "../util/path.ts";
import { StorageError } from "./errors.ts";
import { validateContainerId, validateIfName, validateNetworkName } from "./request.ts";
import { removeStaleTempFiles, writeFileAtomic } from "../util/atomic_write.ts";
import type { Logger } from "../log/logger.ts";
import { errorMessage, isObject } from "../util/errors.ts";

/** One cached attachment. */
export interface CachedAttachment {
  containerId: string;
  ifName: string;
  networkName: string;
  /** The network configuration text (stored base64 as libcni does). */
  config: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  /** The final ADD result, in the version the last plugin returned. */
  result?: unknown;
}

/** The `kind` of libcni's cache files. */
export const CACHE_KIND = "cniCacheV1";

/**
 * The cache file of an attachment. Every component is validated first (network name,
 * container id and interface name rules) so no value can escape the cache directory.
 */
export function resultCachePath(
  cacheDir: string,
  attachment: Pick<CachedAttachment, "networkName" | "containerId" | "ifName">,
): string {
  validateNetworkName(attachment.networkName);
  validateContainerId(attachment.containerId);
  validateIfName(attachment.ifName);
  return join(
    cacheDir,
    "results",
    `${attachment.networkName}-${attachment.containerId}-${attachment.ifName}`,
  );
}

/** Writes the cache entry atomically (file 0600, directory 0700). */
export async function writeCachedResult(cacheDir: string, entry: CachedAttachment): Promise<void> {
  const path = resultCachePath(cacheDir, entry);
  try {
    await writeFileAtomic(path, serializeEntry(entry), { mode: 0o600, dirMode: 0o700 });
  } catch (err) {
    throw new StorageError(
      path,
      `cannot write the result cache file "${path}": ${errorMessage(err)}`,
      { cause: err, details: "check that the CNI cache directory is writable and not full" },
    );
  }
}

/**
 * Reads a cache entry; undefined when absent or unreadable (legacy bare results accepted),
 * which is said on `log` (the request's logger).
 */
export async function readCachedResult(
  cacheDir: string,
  key: Pick<CachedAttachment, "networkName" | "containerId" | "ifName">,
  log: Logger,
): Promise<CachedAttachment | undefined> {
  const path = resultCachePath(cacheDir, key);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      log.verbose(`cannot read the result cache file "${path}": ${errorMessage(err)}`);
    }
    return undefined;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    log.verbose(`ignoring the result cache file "${path}": it is not JSON`);
    return undefined;
  }
  if (!isObject(data)) {
    log.verbose(`ignoring the result cache file "${path}": it is not a JSON object`);
    return undefined;
  }
  if (data.kind === CACHE_KIND) {
    const entry = decodeEntry(data);
    if (entry) return entry;
    log.verbose(`ignoring the result cache file "${path}": malformed ${CACHE_KIND} entry`);
    return undefined;
  }
  // A legacy cache file is the bare result.
  return { ...pickKey(key), config: "", result: data };
}

/** Removes a cache entry, and the temp file of a write the plugin was killed in; absent is fine. */
export async function removeCachedResult(
  cacheDir: string,
  key: Pick<CachedAttachment, "networkName" | "containerId" | "ifName">,
): Promise<void> {
  const path = resultCachePath(cacheDir, key);
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new StorageError(
        path,
        `cannot remove the result cache file "${path}": ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }
  await removeStaleTempFiles(path);
}

/** Lists valid cache entries (sorted by file name), optionally only one container's. */
export async function listCachedAttachments(
  cacheDir: string,
  filter: { containerId?: string } = {},
): Promise<CachedAttachment[]> {
  const dir = join(cacheDir, "results");
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || entry.name.startsWith(".")) continue;
      if (filter.containerId !== undefined && !entry.name.includes(`-${filter.containerId}-`)) {
        continue;
      }
      names.push(entry.name);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw new StorageError(
      dir,
      `cannot list the result cache directory "${dir}": ${errorMessage(err)}`,
      { cause: err },
    );
  }
  names.sort();
  const out: CachedAttachment[] = [];
  for (const name of names) {
    let data: unknown;
    try {
      data = JSON.parse(await Deno.readTextFile(join(dir, name)));
    } catch {
      continue;
    }
    if (!isObject(data) || data.kind !== CACHE_KIND) continue;
    const entry = decodeEntry(data);
    if (!entry || entry.ifName === "" || entry.networkName === "") continue;
    if (filter.containerId !== undefined && entry.containerId !== filter.containerId) continue;
    out.push(entry);
  }
  return out;
}

/**
 * The file text, as libcni's `json.Marshal(cachedInfo)` writes it: struct fields in order,
 * empty optional ones omitted, map keys sorted, HTML characters escaped.
 */
function serializeEntry(entry: CachedAttachment): string {
  const file: Record<string, unknown> = {
    kind: CACHE_KIND,
    containerId: entry.containerId,
    config: encodeBase64(new TextEncoder().encode(entry.config)),
    ifName: entry.ifName,
    networkName: entry.networkName,
  };
  if (entry.netns) file.netns = entry.netns;
  if (entry.cniArgs && entry.cniArgs.length > 0) file.cniArgs = entry.cniArgs;
  if (entry.capabilityArgs && Object.keys(entry.capabilityArgs).length > 0) {
    file.capabilityArgs = sortKeys(entry.capabilityArgs);
  }
  if (isObject(entry.result) && Object.keys(entry.result).length > 0) {
    file.result = sortKeys(entry.result);
  }
  return goEscape(JSON.stringify(file));
}

function decodeEntry(data: Record<string, unknown>): CachedAttachment | undefined {
  const { containerId, config, ifName, networkName, netns, cniArgs, capabilityArgs, result } = data;
  if (typeof containerId !== "string" && containerId !== undefined) return undefined;
  if (typeof ifName !== "string" && ifName !== undefined) return undefined;
  if (typeof networkName !== "string" && networkName !== undefined) return undefined;
  if (typeof netns !== "string" && netns !== undefined) return undefined;
  let configText = "";
  if (typeof config === "string") {
    try {
      configText = new TextDecoder().decode(decodeBase64(config));
    } catch {
      return undefined;
    }
  } else if (config !== undefined && config !== null) {
    return undefined;
  }
  const entry: CachedAttachment = {
    containerId: containerId ?? "",
    ifName: ifName ?? "",
    networkName: networkName ?? "",
    config: configText,
  };
  if (netns) entry.netns = netns;
  if (Array.isArray(cniArgs)) {
    const pairs = cniArgs.filter((p): p is [string, string] =>
      Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string"
    );
    if (pairs.length !== cniArgs.length) return undefined;
    if (pairs.length > 0) entry.cniArgs = pairs;
  }
  if (isObject(capabilityArgs)) entry.capabilityArgs = capabilityArgs;
  if (isObject(result)) entry.result = result;
  return entry;
}

function pickKey(
  key: Pick<CachedAttachment, "networkName" | "containerId" | "ifName">,
): Pick<CachedAttachment, "networkName" | "containerId" | "ifName"> {
  return { containerId: key.containerId, ifName: key.ifName, networkName: key.networkName };
}

/** Go marshals maps with sorted keys, at every depth. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
  return out;
}

/** Go's `json.Marshal` escapes `<`, `>`, `&`, U+2028 and U+2029 (only ever inside strings). */
function goEscape(json: string): string {
  return json.replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
