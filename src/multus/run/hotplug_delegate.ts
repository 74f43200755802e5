/**
 * @module
 * Multus's `/delegate` API (what multus-dynamic-networks-controller calls): one delegate, its
 * configuration given by the caller, ADDed to or DELeted from a running sandbox. Unlike
 * Multus's, the sandbox's scratch cache follows (a network added here is released by the
 * runtime's DEL of the pod), the default network's interface is refused, and a failed ADD
 * is rolled back. The caller writes the network-status annotation (as with Multus).
 */

import { CniError, CniErrorCode } from "../../cni/errors.ts";
import { addNetwork, checkNetwork, delNetwork } from "../../cni/invoke.ts";
import type { NetworkConfig } from "../../cni/network_config.ts";
import { validateIfName, validateNetworkName } from "../../cni/request.ts";
import type { CniResult } from "../../cni/result.ts";
import { errorMessage, explain } from "../../util/errors.ts";
import { type Invocation, podLabel } from "../config/invocation.ts";
import { withCniArgs } from "../kube/networks.ts";
import type { CachedDelegate } from "../plan/delegate.ts";
import { verifyRequests } from "../plan/requests.ts";
import { capabilityArgsFor, delegateArgs, runtimeConfFor } from "../plan/runtime_conf.ts";
import { loadScratchCache, saveScratchCache, type ScratchCacheState } from "./scratch_cache.ts";

/** Multus's `DelegateInterfaceAttributes`. */
export interface InterfaceAttributes {
  ips?: string[];
  mac?: string;
  cniArgs?: Record<string, unknown>;
}

/**
 * Runs a `/delegate` request for `inv` (its request names the container, netns, interface
 * and pod). Returns the result for ADD, undefined for DEL and CHECK.
 */
export async function runDelegateRequest(
  inv: Invocation,
  config: NetworkConfig,
  attributes: InterfaceAttributes | undefined,
): Promise<CniResult | undefined> {
  const { request } = inv;
  const cache = await loadScratchCache(inv.conf.cniDir, request.containerId, request.ifName);
  const master = cache.kind === "found" ? cache.delegates.find((d) => d.isMaster) : undefined;
  // The controller sends no CNI_PATH (as Multus's): the plugins are where the runtime's ADD
  // of this sandbox found them.
  if (request.path.length === 0 && cache.kind === "found" && cache.sandbox) {
    inv.request = { ...request, path: cache.sandbox.path };
  }
  const what = `network "${config.name}" (${request.ifName}) of ${podLabel(inv)}`;
  if (master && master.ifName === request.ifName) {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      `Cannot ${request.command} ${what}: ${request.ifName} is the pod's default network`,
      { details: "The default network is attached and detached by the runtime only" },
    );
  }
  switch (request.command) {
    case "ADD":
      return await delegateAdd(inv, cache, config, attributes, what);
    case "DEL":
      await delegateDel(inv, cache, config, what);
      return undefined;
    case "CHECK": {
      const d = toDelegate(inv, config, undefined);
      await checkNetwork(config, runtimeConfFor(inv, d, "CHECK"));
      return undefined;
    }
    default:
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        `Cannot run ${request.command} through /delegate: ADD, DEL and CHECK are taken`,
      );
  }
}

function toDelegate(
  inv: Invocation,
  config: NetworkConfig,
  attributes: InterfaceAttributes | undefined,
): CachedDelegate {
  const d: CachedDelegate = {
    name: config.name,
    config,
    ifName: inv.request.ifName,
    ifnameRequest: inv.request.ifName,
    isMaster: false,
    ipRequest: attributes?.ips?.length ? attributes.ips : undefined,
    macRequest: attributes?.mac || undefined,
    pod: inv.pod,
    args: delegateArgs(inv),
  };
  d.capabilityArgs = capabilityArgsFor(d, {});
  return d;
}

async function delegateAdd(
  inv: Invocation,
  cache: ScratchCacheState,
  given: NetworkConfig,
  attributes: InterfaceAttributes | undefined,
  what: string,
): Promise<CniResult> {
  let config = given;
  try {
    validateNetworkName(config.name);
    validateIfName(inv.request.ifName);
    if (attributes?.cniArgs) config = withCniArgs(config, attributes.cniArgs, config.name);
  } catch (err) {
    throw explain(err, `Cannot add ${what}`);
  }
  const d = toDelegate(inv, config, attributes);
  const found = cache.kind === "found" ? cache : undefined;
  if (found?.delegates.some((x) => x.ifName === d.ifName)) {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      `Cannot add ${what}: the pod has an interface ${d.ifName} already`,
      { details: "DEL it first, or give the new network another interface name" },
    );
  }
  const save = (delegates: CachedDelegate[]) =>
    saveScratchCache(
      inv.conf.cniDir,
      inv.request.containerId,
      found!.network ?? inv.conf.name,
      delegates,
      found!.sandbox,
    );
  // Recorded before it runs, so the runtime's DEL of the pod releases it.
  if (found) await save([...found.delegates, d]);
  try {
    const result = await addNetwork(config, runtimeConfFor(inv, d, "ADD"));
    verifyRequests(d, result);
    return result;
  } catch (err) {
    const cause = explain(err, `Cannot add ${what}`);
    let rolledBack = "it was rolled back";
    try {
      await delNetwork(config, runtimeConfFor(inv, d, "DEL"));
      if (found) await save(found.delegates);
    } catch (e) {
      rolledBack = `its rollback failed (${errorMessage(e)}); the pod's DEL releases it`;
    }
    throw new CniError(cause.code, cause.message, {
      details: [cause.details, rolledBack].filter(Boolean).join("; "),
      cause,
    });
  }
}

async function delegateDel(
  inv: Invocation,
  cache: ScratchCacheState,
  given: NetworkConfig,
  what: string,
): Promise<void> {
  const found = cache.kind === "found" ? cache : undefined;
  const cached = found?.delegates.find((x) => !x.isMaster && x.ifName === inv.request.ifName);
  // The parameters of the ADD, when the cache has them: DEL must repeat them.
  const d = cached ?? toDelegate(inv, given, undefined);
  try {
    await delNetwork(d.config, runtimeConfFor(inv, d, "DEL"));
  } catch (err) {
    throw explain(err, `Cannot delete ${what}`);
  }
  if (found && cached) {
    await saveScratchCache(
      inv.conf.cniDir,
      inv.request.containerId,
      found.network ?? inv.conf.name,
      found.delegates.filter((x) => x !== cached),
      found.sandbox,
    );
  }
}
