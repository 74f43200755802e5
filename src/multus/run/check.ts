/**
 * @module
 * CNI CHECK: runs CHECK on every attached delegate that speaks 0.4.0 or later.
 */

import { checkNetwork } from "../../cni/invoke.ts";
import { versionAtLeast } from "../../cni/version.ts";
import { planInterfaces } from "../plan/delegate.ts";
import { type Invocation, podLabel } from "../config/invocation.ts";
import { runtimeConfFor } from "../plan/runtime_conf.ts";
import { explain } from "../../util/errors.ts";
import { staticNetworks } from "./resolve.ts";
import { type CachedDelegate, loadScratchCache } from "./scratch_cache.ts";

/** Runs CHECK; throws the first delegate's error, naming the network. */
export async function cmdCheck(inv: Invocation): Promise<void> {
  const { conf, request } = inv;
  const cache = await loadScratchCache(conf.cniDir, request.containerId, request.ifName);
  const delegates: CachedDelegate[] = cache.kind === "found"
    ? cache.delegates
    : planInterfaces(staticNetworks(inv), request.ifName);
  for (const d of delegates) {
    if (!versionAtLeast(d.config.cniVersion, "0.4.0")) {
      inv.log.verbose(
        `CHECK skips ${d.name}: its cniVersion ${d.config.cniVersion || "0.1.0"} has no CHECK`,
      );
      continue;
    }
    try {
      await checkNetwork(d.config, runtimeConfFor(inv, d, "CHECK"));
    } catch (err) {
      throw explain(err, `CHECK of network "${d.name}" (${d.ifName}) for ${podLabel(inv)} failed`);
    }
  }
}
