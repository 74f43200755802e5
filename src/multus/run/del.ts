/**
 * @module
 * CNI DEL, which must not leave a pod stuck in Terminating: works from the scratch cache alone; idempotent; succeeds with the
 * netns, the pod or the API server gone; continues past a failing delegate and reports only
 * what really could not be released. Without a readable cache it deletes what the
 * configuration and the API rebuild; a cache that exists but cannot be read is kept, and DEL
 * fails when it could release nothing in its place.
 */

import { CniError, CniErrorCode } from "../../cni/errors.ts";
import { delNetwork } from "../../cni/invoke.ts";
import { assignInterfaceNames } from "../plan/delegate.ts";
import { type Invocation, podLabel } from "../config/invocation.ts";
import { runtimeConfFor } from "../plan/runtime_conf.ts";
import { planDelWithoutCache } from "./resolve.ts";
import { removeDeviceInfoFor } from "./device_info_files.ts";
import { type CachedDelegate, loadScratchCache, removeScratchCache } from "./scratch_cache.ts";
import { errorMessage } from "../../util/errors.ts";

/** Runs DEL; resolves when everything known was released. */
export async function cmdDel(inv: Invocation): Promise<void> {
  const { conf, request } = inv;
  const cache = await loadScratchCache(conf.cniDir, request.containerId, request.ifName);
  if (cache.kind === "found") {
    const cachedPod = cache.delegates.find((d) => d.pod)?.pod;
    if (!inv.pod && cachedPod) inv.pod = cachedPod;
    const outcome = await deleteAll(inv, cache.delegates);
    if (outcome.failures.length > 0) {
      const first = outcome.firstError;
      throw new CniError(
        first instanceof CniError ? first.code : CniErrorCode.Internal,
        `Cannot release every network of ${podLabel(inv)}: ${outcome.failures.join(" / ")}`,
        {
          details:
            "The other networks were released; the scratch cache is kept so the runtime's next DEL retries only after the cause is fixed",
        },
      );
    }
    await removeCache(inv);
    return;
  }

  if (cache.kind === "corrupt") {
    await deleteInPlaceOfCorruptCache(inv, cache.path, cache.reason);
    return;
  }

  if (inv.unusableConf) {
    if (!inv.unusableConf.cniDirKnown) throw cniDirUnknown(inv);
    inv.log.warn(
      `DEL of ${
        podLabel(inv)
      }: no scratch cache in ${conf.cniDir} and no usable configuration to rebuild the networks from; nothing known to delete`,
    );
    await removeCache(inv);
    return;
  }
  const rebuilt = await rebuild(inv);
  const outcome = await deleteAll(inv, rebuilt.delegates);
  // Networks rebuilt without a cache may never have been attached by us: their failures are
  // reported in the log only, so a pod whose ADD never ran cannot stick in Terminating.
  if (outcome.failures.length > 0) {
    inv.log.warn(
      `DEL of ${podLabel(inv)} without a scratch cache: ${outcome.failures.join(" / ")}`,
    );
  }
  // Also when absent: a temp file of a write the plugin was killed in may be left.
  await removeCache(inv);
}

/**
 * The cache exists, so something was attached, but it cannot say what: delete what the
 * configuration and the API rebuild, keep the file (evidence, and no ADD may reuse the
 * container id), and fail when nothing could be released or the API could not be asked.
 */
async function deleteInPlaceOfCorruptCache(
  inv: Invocation,
  path: string,
  reason: string,
): Promise<void> {
  const what = `Cannot release the networks of ${
    podLabel(inv)
  }: its scratch cache ${path} cannot be read (${reason})`;
  inv.log.error(`${what}; the file is kept, deleting the networks that can be rebuilt instead`);
  const rebuilt: Rebuilt = inv.unusableConf ? { delegates: [] } : await rebuild(inv);
  if (rebuilt.delegates.length === 0) {
    const source = inv.unusableConf
      ? `the multus configuration is unusable (${errorMessage(inv.unusableConf.error)})`
      : "no network could be rebuilt from the configuration or the API";
    throw new CniError(CniErrorCode.IoFailure, `${what}, and ${source}`, {
      details:
        `The file is kept and the runtime retries DEL. Fix the configuration or the API access, or release the pod's interfaces and IP addresses by hand and remove ${path}`,
    });
  }
  const outcome = await deleteAll(inv, rebuilt.delegates);
  if (outcome.released === 0) {
    const first = outcome.firstError;
    throw new CniError(
      first instanceof CniError ? first.code : CniErrorCode.Internal,
      `${what}, and none of the networks rebuilt in its place could be deleted: ${
        outcome.failures.join(" / ")
      }`,
      { details: `The file is kept and the runtime retries DEL` },
    );
  }
  if (rebuilt.incomplete) {
    throw new CniError(
      CniErrorCode.TryAgainLater,
      `${what}, and the pod's own networks cannot be known until the API server answers (${rebuilt.incomplete})`,
      {
        details:
          `The networks of the multus configuration were released; the runtime retries DEL, which releases the pod's networks once the API server answers`,
      },
    );
  }
  if (outcome.failures.length > 0) {
    inv.log.warn(`DEL of ${podLabel(inv)}: ${outcome.failures.join(" / ")}`);
  }
  inv.log.error(
    `DEL of ${
      podLabel(inv)
    } released the networks rebuilt in place of ${path}; the file is kept for inspection (remove it once the pod's interfaces and addresses are known to be gone)`,
  );
}

/** Networks rebuilt for DEL, with their interface names. */
interface Rebuilt {
  delegates: CachedDelegate[];
  incomplete?: string;
}

/** What the configuration and the API rebuild; a planning error rebuilds nothing. */
async function rebuild(inv: Invocation): Promise<Rebuilt> {
  try {
    const rebuilt = await planDelWithoutCache(inv);
    // A plan whose interface names clash was refused at ADD, before anything was attached.
    return {
      ...rebuilt,
      delegates: assignInterfaceNames(rebuilt.delegates, inv.request.ifName),
    };
  } catch (err) {
    inv.log.warn(
      `DEL of ${podLabel(inv)}: the networks cannot be rebuilt (${errorMessage(err)})`,
    );
    return { delegates: [] };
  }
}

/** DELs every delegate in reverse order, continuing past failures. */
async function deleteAll(
  inv: Invocation,
  delegates: CachedDelegate[],
): Promise<{ released: number; failures: string[]; firstError?: unknown }> {
  const failures: string[] = [];
  let firstError: unknown;
  let released = 0;
  for (const d of [...delegates].reverse()) {
    await removeDeviceInfoFor(inv, d);
    try {
      inv.log.verbose(`DEL ${d.name} (${d.ifName})`, { network: d.name });
      await delNetwork(d.config, runtimeConfFor(inv, d, "DEL"));
      released++;
    } catch (err) {
      firstError ??= err;
      failures.push(`network "${d.name}" (${d.ifName}): ${errorMessage(err)}`);
      inv.log.error(`DEL ${d.name} (${d.ifName}) failed: ${errorMessage(err)}`, {
        network: d.name,
      });
    }
  }
  return { released, failures, firstError };
}

/** Removes the scratch cache once everything is released; a failure here is only logged. */
async function removeCache(inv: Invocation): Promise<void> {
  try {
    await removeScratchCache(inv.conf.cniDir, inv.request.containerId);
  } catch (err) {
    // Every network is released: a cache file that cannot go (read-only disk) must not keep
    // the pod terminating; DEL again or GC removes it later.
    inv.log.error(`DEL of ${podLabel(inv)} released every network, but: ${errorMessage(err)}`);
  }
}

/** A DEL whose configuration does not say where the scratch caches are, none in the default. */
function cniDirUnknown(inv: Invocation): CniError {
  const cause = inv.unusableConf!.error;
  return new CniError(
    cause instanceof CniError ? cause.code : CniErrorCode.InvalidNetworkConfig,
    `Cannot delete the networks of ${podLabel(inv)}: the multus configuration is unusable (${
      errorMessage(cause)
    }) and does not say where the scratch caches are (cniDir); ${inv.conf.cniDir} has none for container "${inv.request.containerId}"`,
    {
      details:
        "Fix the multus configuration on the node; the runtime retries DEL, which then releases the networks",
    },
  );
}
