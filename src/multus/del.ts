/**
 * @module
 * CNI DEL (decision 9): works from the scratch cache alone; idempotent; succeeds with the
 * netns, the pod or the API server gone; continues past a failing delegate and reports only
 * what really could not be released.
 */

import { CniError, CniErrorCode } from "../cni/errors.ts";
import { delNetwork } from "../cni/invoke.ts";
import { log } from "../log/logger.ts";
import { type Delegate, planInterfaces } from "./delegate.ts";
import { type Invocation, podLabel, runtimeConfFor } from "./invocation.ts";
import { planDelWithoutCache } from "./resolve.ts";
import { removeDeviceInfoFor } from "./device_info_files.ts";
import { type CachedDelegate, loadScratchCache, removeScratchCache } from "./scratch_cache.ts";

/** Runs DEL; resolves when everything known was released. */
export async function cmdDel(inv: Invocation): Promise<void> {
  const { conf, request } = inv;
  const cache = await loadScratchCache(conf.cniDir, request.containerId, request.ifName);
  let delegates: CachedDelegate[];
  if (cache.kind === "found") {
    delegates = cache.delegates;
    const cachedPod = delegates.find((d) => d.pod)?.pod;
    if (!inv.pod && cachedPod) inv.pod = cachedPod;
  } else {
    if (cache.kind === "corrupt") {
      log.error(`ignoring unreadable scratch cache ${cache.path}: ${cache.reason}`);
    }
    let fallback: Delegate[];
    try {
      fallback = await planDelWithoutCache(inv);
    } catch (err) {
      log.warn(
        `DEL of ${podLabel(inv)}: no scratch cache and the networks cannot be rebuilt (${
          (err as Error).message
        }); nothing known to delete`,
      );
      fallback = [];
    }
    delegates = planInterfaces(fallback, request.ifName);
  }

  const failures: string[] = [];
  let firstError: unknown;
  for (const d of [...delegates].reverse()) {
    await removeDeviceInfoFor(inv, d);
    try {
      log.verbose(`DEL ${d.name} (${d.ifName})`, { network: d.name });
      await delNetwork(d.config, runtimeConfFor(inv, d, "DEL"));
    } catch (err) {
      firstError ??= err;
      failures.push(`network "${d.name}" (${d.ifName}): ${(err as Error).message}`);
      log.error(`DEL ${d.name} (${d.ifName}) failed: ${(err as Error).message}`, {
        network: d.name,
      });
    }
  }

  // Networks rebuilt without a cache may never have been attached by us: their failures are
  // reported in the log only, so a pod whose ADD never ran cannot stick in Terminating.
  if (failures.length > 0 && cache.kind !== "found") {
    log.warn(`DEL of ${podLabel(inv)} without a scratch cache: ${failures.join(" / ")}`);
  } else if (failures.length > 0) {
    const code = firstError instanceof CniError ? firstError.code : CniErrorCode.Internal;
    throw new CniError(
      code,
      `Cannot release every network of ${podLabel(inv)}: ${failures.join(" / ")}`,
      {
        details:
          "The other networks were released; the scratch cache is kept so the runtime's next DEL retries only after the cause is fixed",
      },
    );
  }
  // Also when absent: a temp file of a write the plugin was killed in may be left.
  try {
    await removeScratchCache(conf.cniDir, request.containerId);
  } catch (err) {
    // Every network is released: a cache file that cannot go (read-only disk) must not keep
    // the pod terminating (decision 9); DEL again or GC removes it later.
    log.error(`DEL of ${podLabel(inv)} released every network, but: ${(err as Error).message}`);
  }
}
