/**
 * @module
 * CNI STATUS (asks the default network) and GC (drops our state for attachments the runtime
 * no longer lists, and passes GC on to the delegates).
 */

import { CniErrorCode, ConfigError } from "../cni/errors.ts";
import { delNetwork, gcNetwork, statusNetwork, type ValidAttachment } from "../cni/invoke.ts";
import type { NetworkConfig } from "../cni/network_config.ts";
import { log } from "../log/logger.ts";
import { type Invocation, pluginPath, runtimeConfFor } from "./invocation.ts";
import { defaultNetwork } from "./resolve.ts";
import { loadScratchCache, removeScratchCache } from "./scratch_cache.ts";
import { CniError } from "../cni/errors.ts";
import { validateContainerId } from "../cni/request.ts";

/** STATUS: the default network's plugins answer for us. */
export async function cmdStatus(inv: Invocation): Promise<void> {
  const master = await defaultNetwork(inv);
  await statusNetwork(master.config, {
    path: pluginPath(inv),
    timeoutMs: inv.conf.delegateTimeoutSeconds * 1000,
  });
}

/** Reads the runtime's list of valid attachments from the GC config. */
export function validAttachmentsOf(config: Record<string, unknown>): ValidAttachment[] {
  const key = "cni.dev/valid-attachments" in config
    ? "cni.dev/valid-attachments"
    : "cni.dev/attachments";
  const list = config[key] ?? [];
  if (!Array.isArray(list)) {
    throw new ConfigError(key, `"${key}" must be a list of {"containerID", "ifname"}`);
  }
  return list.map((item, i) => {
    const entry = item as Record<string, unknown>;
    if (typeof entry?.containerID !== "string" || typeof entry?.ifname !== "string") {
      throw new ConfigError(
        `${key}[${i}]`,
        `"${key}[${i}]" must have string "containerID" and "ifname"`,
      );
    }
    return { containerID: entry.containerID, ifname: entry.ifname };
  });
}

/**
 * GC: every scratch cache of a container the runtime no longer lists is deleted as DEL would
 * (its delegates DELed, the file removed); then GC goes to each network still in use, with
 * the attachments that remain valid for it.
 */
export async function cmdGc(inv: Invocation, valid: ValidAttachment[]): Promise<void> {
  const { conf } = inv;
  const validIds = new Set(valid.map((a) => a.containerID));
  const networks = new Map<string, { config: NetworkConfig; valid: ValidAttachment[] }>();
  const failures: string[] = [];
  const remember = (config: NetworkConfig, attachment?: ValidAttachment) => {
    const key = `${config.name}\n${config.raw}`;
    const entry = networks.get(key) ?? { config, valid: [] };
    if (attachment) entry.valid.push(attachment);
    networks.set(key, entry);
  };
  for (const config of conf.delegates) remember(config);

  for (const containerId of await scratchCacheIds(conf.cniDir)) {
    const cache = await loadScratchCache(conf.cniDir, containerId, "eth0");
    if (cache.kind !== "found") continue;
    if (validIds.has(containerId)) {
      for (const d of cache.delegates) {
        remember(d.config, { containerID: containerId, ifname: d.ifName });
      }
      continue;
    }
    const stale: Invocation = { ...inv, request: { ...inv.request, containerId, netns: "" } };
    let released = true;
    for (const d of [...cache.delegates].reverse()) {
      try {
        await delNetwork(d.config, runtimeConfFor(stale, d, "DEL"));
      } catch (err) {
        released = false;
        failures.push(`${containerId.slice(0, 12)} ${d.name}: ${(err as Error).message}`);
      }
    }
    if (released) {
      await removeScratchCache(conf.cniDir, containerId);
      log.verbose(`GC released stale container ${containerId}`);
    }
  }

  for (const { config, valid } of networks.values()) {
    try {
      await gcNetwork(config, {
        path: pluginPath(inv),
        cacheDir: conf.cniDir,
        timeoutMs: conf.delegateTimeoutSeconds * 1000,
      }, valid);
    } catch (err) {
      failures.push(`network "${config.name}": ${(err as Error).message}`);
    }
  }
  if (failures.length > 0) {
    throw new CniError(
      CniErrorCode.Internal,
      `GC could not release everything: ${failures.join(" / ")}`,
    );
  }
}

/** Container ids that have a scratch cache in `cniDir`. */
async function scratchCacheIds(cniDir: string): Promise<string[]> {
  const ids: string[] = [];
  try {
    for await (const entry of Deno.readDir(cniDir)) {
      if (!entry.isFile || entry.name.startsWith(".")) continue;
      try {
        validateContainerId(entry.name);
        ids.push(entry.name);
      } catch {
        // not a container id: not ours
      }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return ids.sort();
}
