/**
 * @module
 * CNI STATUS (asks the default network) and GC (drops our state for attachments the runtime
 * no longer lists, and passes GC on to the delegates).
 */

import { CniErrorCode, ConfigError } from "../../cni/errors.ts";
import { delNetwork, gcNetwork, statusNetwork, type ValidAttachment } from "../../cni/invoke.ts";
import { listCachedAttachments } from "../../cni/result_cache.ts";
import type { NetworkConfig } from "../../cni/network_config.ts";
import type { Invocation } from "../config/invocation.ts";
import { pluginPath, runtimeConfFor } from "../plan/runtime_conf.ts";
import { defaultNetwork } from "./resolve.ts";
import { loadScratchCache, removeScratchCache } from "./scratch_cache.ts";
import { CniError } from "../../cni/errors.ts";
import { validateContainerId } from "../../cni/request.ts";
import { errorMessage } from "../../util/errors.ts";

/** STATUS: the default network's plugins answer for us. */
export async function cmdStatus(inv: Invocation): Promise<void> {
  const master = await defaultNetwork(inv);
  await statusNetwork(master.config, {
    path: pluginPath(inv),
    timeoutMs: inv.conf.delegateTimeoutSeconds * 1000,
    exec: inv.exec,
    log: inv.log,
  });
}

/**
 * Reads the runtime's list of valid attachments from the GC config of multus network
 * `network`. A GC without it is refused: every attachment would look stale.
 */
export function validAttachmentsOf(
  config: Record<string, unknown>,
  network: string,
): ValidAttachment[] {
  const key = "cni.dev/valid-attachments" in config
    ? "cni.dev/valid-attachments"
    : "cni.dev/attachments";
  const list = config[key];
  if (list === undefined || list === null) {
    throw new ConfigError(
      "cni.dev/valid-attachments",
      `Cannot run GC of network "${network}": the configuration has no "cni.dev/valid-attachments" (the attachments still in use); without it every attachment would look stale`,
      {
        details:
          "Nothing was released. The runtime sends this list with GC (CNI 1.1.0); give it, even as [], to release everything of this network",
      },
    );
  }
  if (!Array.isArray(list)) {
    throw new ConfigError(
      key,
      `Cannot run GC of network "${network}": "${key}" must be a list of {"containerID", "ifname"}`,
    );
  }
  return list.map((item, i) => {
    const entry = item as Record<string, unknown>;
    if (typeof entry?.containerID !== "string" || typeof entry?.ifname !== "string") {
      throw new ConfigError(
        `${key}[${i}]`,
        `Cannot run GC of network "${network}": "${key}[${i}]" must have string "containerID" and "ifname"`,
      );
    }
    return { containerID: entry.containerID, ifname: entry.ifname };
  });
}

/**
 * GC of this multus network (the runtime keys attachments by the configuration's `name`, as
 * libcni does): every scratch cache this network wrote for a container the runtime no longer
 * lists is deleted as DEL would (its delegates DELed, the file removed). Caches of other
 * networks sharing the cniDir, caches that do not say which network wrote them (Multus's,
 * ours before the name was recorded) and unreadable ones are left alone: they might belong
 * to another network. Then GC goes to each of this network's delegate networks with every
 * attachment left in the cniDir as valid, whichever network holds it, so a delegate network
 * shared with another multus network keeps the other's attachments.
 */
export async function cmdGc(inv: Invocation, valid: ValidAttachment[]): Promise<void> {
  const { conf } = inv;
  const validIds = new Set(valid.map((a) => a.containerID));
  const networks = new Map<string, NetworkConfig>();
  const remember = (config: NetworkConfig) => networks.set(`${config.name}\n${config.raw}`, config);
  for (const config of conf.delegates) remember(config);
  const failures: string[] = [];
  const released = new Set<string>();

  const recorded: ValidAttachment[] = [];
  for (const containerId of await scratchCacheIds(conf.cniDir)) {
    const cache = await loadScratchCache(conf.cniDir, containerId, "eth0");
    if (cache.kind === "found") {
      for (const d of cache.delegates) {
        recorded.push({ containerID: containerId, ifname: d.ifName });
      }
    }
    if (cache.kind !== "found" || cache.network !== conf.name) {
      if (cache.kind === "found" && cache.network === undefined && !validIds.has(containerId)) {
        inv.log.verbose(
          `GC of "${conf.name}" leaves container ${containerId}: its scratch cache does not say which multus network attached it`,
        );
      }
      continue;
    }
    for (const d of cache.delegates) remember(d.config);
    if (validIds.has(containerId)) continue;
    const stale: Invocation = { ...inv, request: { ...inv.request, containerId, netns: "" } };
    let ok = true;
    for (const d of [...cache.delegates].reverse()) {
      try {
        await delNetwork(d.config, runtimeConfFor(stale, d, "DEL"));
      } catch (err) {
        ok = false;
        failures.push(`${containerId.slice(0, 12)} ${d.name}: ${errorMessage(err)}`);
      }
    }
    if (ok) {
      await removeScratchCache(conf.cniDir, containerId);
      released.add(containerId);
      inv.log.verbose(`GC of "${conf.name}" released stale container ${containerId}`);
    }
  }

  const keep = await attachmentsLeft(conf.cniDir, [...valid, ...recorded], released);
  for (const config of networks.values()) {
    try {
      await gcNetwork(config, {
        path: pluginPath(inv),
        cacheDir: conf.cniDir,
        timeoutMs: conf.delegateTimeoutSeconds * 1000,
        exec: inv.exec,
        log: inv.log,
      }, keep);
    } catch (err) {
      failures.push(`network "${config.name}": ${errorMessage(err)}`);
    }
  }
  if (failures.length > 0) {
    throw new CniError(
      CniErrorCode.Internal,
      `GC of network "${conf.name}" could not release everything: ${failures.join(" / ")}`,
    );
  }
}

/**
 * Every attachment known to be in use or still recorded in `cniDir`: `recorded` (the runtime's
 * list, the scratch caches) and the libcni result entries, except those of the containers
 * this GC released.
 */
async function attachmentsLeft(
  cniDir: string,
  recorded: ValidAttachment[],
  released: Set<string>,
): Promise<ValidAttachment[]> {
  const left = new Map<string, ValidAttachment>();
  const add = (containerID: string, ifname: string) => {
    if (!released.has(containerID)) {
      left.set(`${containerID}\0${ifname}`, { containerID, ifname });
    }
  };
  for (const a of recorded) add(a.containerID, a.ifname);
  for (const a of await listCachedAttachments(cniDir)) add(a.containerId, a.ifName);
  return [...left.values()];
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
