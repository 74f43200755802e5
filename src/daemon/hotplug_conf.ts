/**
 * @module
 * The multus configuration the daemon runs hot-plug and `/delegate` requests with: no
 * runtime request carries one, so it is the daemon configuration's netconf keys (`cniDir`,
 * `binDir`, `kubeconfig`, `namespaceIsolation`, ...), as Multus's daemon does.
 */

import { setTopLevelKeys } from "../cni/raw_json.ts";
import type { ConfOverlay } from "../multus/config/conf_overlay.ts";
import { loadMultusNetConf, type MultusNetConf } from "../multus/config/netconf.ts";

/** The daemon's netconf keys as a configuration named `network`. */
export function hotplugNetConf(overlay: ConfOverlay, network: string): MultusNetConf {
  // clusterNetwork is required of a configuration but never used by hot-plug, which leaves
  // the default network alone; the daemon's own key, when set, wins.
  const base = JSON.stringify({
    cniVersion: "1.0.0",
    name: network,
    type: "multus",
    clusterNetwork: "hot-plug",
  });
  return loadMultusNetConf(setTopLevelKeys(base, overlay));
}
