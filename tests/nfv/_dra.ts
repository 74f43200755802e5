/**
 * @module
 * DRA fixtures shared by the plugin's and the daemon's DRA tests: the stand-in `sriov` plugin
 * installed in a CNI bin dir, its record of calls, ResourceSlices and ResourceClaims as the
 * test API server serves them, and the DRA requests of its log.
 */

import { join } from "node:path";
import { REPO_ROOT } from "../helpers/plugin_run.ts";
import type { TestApiServer } from "../k8s_api/server.ts";

/** Installs the stand-in `sriov` plugin (it records every call) in `binDir`. */
export async function installSriovStandin(binDir: string): Promise<void> {
  await Deno.copyFile(join(REPO_ROOT, "tests", "nfv", "sriov_standin.sh"), join(binDir, "sriov"));
  await Deno.chmod(join(binDir, "sriov"), 0o755);
}

/**
 * A NAD in namespace nfv for the stand-in `sriov` plugin on the device-plugin resource
 * `resource`; `config` is the rest of its configuration.
 */
export function sriovNad(name: string, resource: string, config: Record<string, unknown>) {
  return {
    metadata: {
      name,
      namespace: "nfv",
      annotations: { "k8s.v1.cni.cncf.io/resourceName": resource },
    },
    spec: { config: JSON.stringify({ cniVersion: "1.0.0", type: "sriov", ...config }) },
  };
}

/** One call the stand-in recorded (its environment and the configuration it got). */
export interface SriovCall {
  command: string;
  containerId: string;
  ifName: string;
  config: { deviceID?: string; runtimeConfig?: { deviceID?: string } };
}

/** The calls the stand-in recorded in `record`, oldest first; none when it never ran. */
export async function sriovCalls(record: string): Promise<SriovCall[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(record);
  } catch {
    return [];
  }
  return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/**
 * A ResourceSlice of `driver` on `nodeName`, one pool of its own; devices are
 * [name, attributes], each attribute `k8s.cni.cncf.io/<key>` with a string value.
 */
export function resourceSlice(
  name: string,
  nodeName: string,
  driver: string,
  devices: [string, Record<string, string>][],
) {
  return {
    metadata: { name },
    spec: {
      driver,
      nodeName,
      pool: { name: nodeName, generation: 1, resourceSliceCount: 1 },
      devices: devices.map(([device, attrs]) => ({
        name: device,
        attributes: Object.fromEntries(
          Object.entries(attrs).map(([k, v]) => [`k8s.cni.cncf.io/${k}`, { string: v }]),
        ),
      })),
    },
  };
}

/**
 * A ResourceClaim in namespace nfv allocated from the pool `pool` (results are
 * [request, driver, device]; none: not allocated), reserved for `reservedFor` when given.
 */
export function resourceClaim(
  name: string,
  pool: string,
  results?: [string, string, string][],
  reservedFor?: { uid: string }[],
) {
  return {
    metadata: { name, namespace: "nfv" },
    spec: { devices: { requests: [] } },
    status: results
      ? {
        allocation: {
          devices: {
            results: results.map(([request, driver, device]) => ({
              request,
              driver,
              pool,
              device,
            })),
          },
        },
        ...(reservedFor
          ? { reservedFor: reservedFor.map((p) => ({ resource: "pods", name: "x", uid: p.uid })) }
          : {}),
      }
      : {},
  };
}

/** The DRA requests of the server's log: `verb path?query`. */
export function draRequests(api: TestApiServer): string[] {
  return api.requests().filter((r) => r.path.startsWith("/apis/resource.k8s.io/")).map((r) =>
    `${r.verb} ${r.path}${r.query ? `?${decodeURIComponent(r.query)}` : ""}`
  );
}
