/**
 * @module
 * CNI ADD: attach every network in order, return the default network's result; on any
 * failure roll back what was attached, in reverse order, so no interface, lease or cache
 * entry is left.
 */

import { CniError, CniErrorCode } from "../../cni/errors.ts";
import { addNetwork, delNetwork } from "../../cni/invoke.ts";
import { validateIfName, validateNetworkName } from "../../cni/request.ts";
import {
  type CniResult,
  convertResult,
  type ResultCurrent,
  resultToJson,
} from "../../cni/result.ts";
import { planInterfaces } from "../plan/delegate.ts";
import { type Invocation, podLabel } from "../config/invocation.ts";
import { delegateArgs, runtimeConfFor } from "../plan/runtime_conf.ts";
import type { AttachedNetwork } from "../plan/plans.ts";
import { errorMessage, explain } from "../../util/errors.ts";
import { planAdd } from "./resolve.ts";
import {
  type CachedDelegate,
  loadScratchCache,
  removeScratchCache,
  saveScratchCache,
} from "./scratch_cache.ts";
import { waitForReadinessIndicator } from "./readiness.ts";
import { checkRequestCapabilities, verifyRequests } from "../plan/requests.ts";
import { applyDefaultRoutes, checkDefaultRouteRequests } from "../plan/default_route.ts";
import {
  deviceInfoFileFor,
  readDeviceInfoFor,
  removeDeviceInfoFor,
  writeDeviceInfoFor,
} from "./device_info_files.ts";

/** Runs ADD and returns the result text for stdout. */
export async function cmdAdd(inv: Invocation): Promise<string> {
  const { conf, request } = inv;
  await refuseIfAttached(inv);
  await waitForReadinessIndicator(inv);
  const plan = await planAdd(inv);
  if (plan.pod) inv.pod = plan.pod;
  if (plan.emptyResult) return emptyResult(inv);

  const args = delegateArgs(inv);
  let planned;
  try {
    planned = planInterfaces(plan.delegates, request.ifName);
  } catch (err) {
    throw explain(err, `Cannot add networks to ${podLabel(inv)}`);
  }
  const delegates: CachedDelegate[] = planned.map((d) => ({ ...d, pod: inv.pod, args }));
  for (const d of delegates) {
    // Names that become part of cache file paths, checked before anything runs: a name with
    // `/` or `..` must not reach the file system.
    try {
      validateNetworkName(d.config.name);
      validateIfName(d.ifName);
    } catch (err) {
      throw explain(err, `Cannot attach network "${d.name}" as ${d.ifName} to ${podLabel(inv)}`);
    }
    checkRequestCapabilities(d, podLabel(inv));
    d.capabilityArgs = runtimeConfFor(inv, d, "ADD").capabilityArgs;
    const deviceInfoFile = await deviceInfoFileFor(inv, d);
    if (deviceInfoFile) d.capabilityArgs.CNIDeviceInfoFile = deviceInfoFile;
  }

  checkDefaultRouteRequests(delegates, podLabel(inv));

  // Before the first delegate runs: a crash from here on leaves DEL all it needs.
  try {
    await saveScratchCache(conf.cniDir, request.containerId, conf.name, delegates, {
      netns: request.netns,
      ifName: request.ifName,
      path: request.path,
    });
  } catch (err) {
    throw explain(err, `Cannot add networks to ${podLabel(inv)}`);
  }

  // From here on every failure rolls back what was attached, through one path.
  const attached: AttachedNetwork[] = [];
  let step = { what: "", attachedSoFar: 0, addFailed: false };
  let output: string;
  let background: Promise<void> | undefined;
  try {
    for (const [i, d] of delegates.entries()) {
      const what = `Cannot attach network "${d.name}" as ${d.ifName} to ${podLabel(inv)}`;
      step = { what, attachedSoFar: i + 1, addFailed: true };
      inv.log.verbose(`ADD ${d.name} as ${d.ifName}`, { network: d.name });
      await writeDeviceInfoFor(inv, d);
      const result = await addNetwork(d.config, runtimeConfFor(inv, d, "ADD"));
      step.addFailed = false;
      attached.push({ delegate: d, result, deviceInfo: await readDeviceInfoFor(inv, d) });
      verifyRequests(d, result);
      inv.log.verbose(`ADD ${d.name} as ${d.ifName} done: ${resultToJson(result)}`, {
        network: d.name,
      });
    }
    const all = delegates.length;
    step = {
      what: `Cannot set the default route of ${podLabel(inv)}`,
      attachedSoFar: all,
      addFailed: false,
    };
    await applyDefaultRoutes(inv, delegates);
    step.what = `Cannot return the result of "${
      delegates[0].name
    }" as version "${conf.cniVersion}"`;
    output = resultToJson(convertResult(attached[0].result, conf.cniVersion));
    background = plan.background?.(attached).catch((err) =>
      inv.log.warn(`could not send events: ${errorMessage(err)}`)
    );
    step.what = `Cannot publish the network status of ${podLabel(inv)}`;
    await plan.publish?.(attached);
  } catch (err) {
    throw await rollBack(
      inv,
      delegates.slice(0, step.attachedSoFar),
      explain(err, step.what),
      step.addFailed,
    );
  }
  await background;
  return output;
}

/**
 * Refuses ADD for a container that already has a scratch cache: an earlier ADD attached it
 * (or is attaching it), and only that cache tells the runtime's DEL what to release. Running
 * the delegates again would fail on the existing interfaces, and rolling back would take the
 * earlier ADD's interfaces and record with it. Nothing is touched.
 */
async function refuseIfAttached(inv: Invocation): Promise<void> {
  const { conf, request } = inv;
  const existing = await loadScratchCache(conf.cniDir, request.containerId, request.ifName);
  if (existing.kind === "absent") return;
  const owner = existing.kind === "found" && existing.network !== undefined
    ? ` through multus network "${existing.network}"`
    : "";
  const record = existing.kind === "found"
    ? `its scratch cache ${existing.path}`
    : `its scratch cache ${existing.path} exists but cannot be read`;
  throw new CniError(
    CniErrorCode.InvalidEnvironment,
    `Cannot add multus network "${conf.name}" to ${
      podLabel(inv)
    }: container "${request.containerId}" is already attached${owner} (${record})`,
    {
      details:
        "The runtime must DEL the container before adding it again; that DEL releases what the earlier ADD attached",
    },
  );
}

/**
 * DELs `delegates` in reverse order, continuing past failures (the last one too when its
 * ADD failed: `lastAddFailed`). Returns `cause` with what
 * could not be released added to its details; the scratch cache is removed only when
 * everything was released (else the runtime's DEL finishes the job from it).
 */
async function rollBack(
  inv: Invocation,
  delegates: CachedDelegate[],
  cause: CniError,
  lastAddFailed = false,
): Promise<CniError> {
  const failures: string[] = [];
  const failed = delegates.length - 1;
  for (const [i, d] of [...delegates.entries()].reverse()) {
    await removeDeviceInfoFor(inv, d);
    try {
      await delNetwork(d.config, runtimeConfFor(inv, d, "DEL"));
    } catch (err) {
      const message = `${d.name} (${d.ifName}): ${errorMessage(err)}`;
      // The delegate whose ADD failed cleans up after itself (CNI spec); its DEL is a
      // courtesy that often fails for the same reason as its ADD.
      if (i === failed && lastAddFailed) {
        inv.log.verbose(`rollback DEL of the failed delegate ${message}`);
      } else failures.push(message);
    }
  }
  if (failures.length === 0) {
    await removeScratchCache(inv.conf.cniDir, inv.request.containerId).catch((err) =>
      failures.push(`scratch cache: ${errorMessage(err)}`)
    );
  }
  const rolledBack = failures.length === 0
    ? "every network attached so far was rolled back"
    : `rollback could not release: ${failures.join("; ")}; the runtime's DEL will retry`;
  inv.log.error(`${cause.message} (${rolledBack})`);
  return new CniError(cause.code, cause.message, {
    details: [cause.details, rolledBack].filter(Boolean).join("; "),
    cause,
  });
}

/** The result for a pod that no longer exists (Multus: success without attaching). */
function emptyResult(inv: Invocation): string {
  const result: ResultCurrent = {
    cniVersion: "1.1.0",
    interfaces: [{ name: inv.request.ifName, sandbox: inv.request.netns }],
    ips: [{ address: "0.0.0.0/0", gateway: "0.0.0.0" }],
  };
  let converted: CniResult = result;
  try {
    converted = convertResult(result, inv.conf.cniVersion);
  } catch (err) {
    throw new CniError(CniErrorCode.Internal, errorMessage(err));
  }
  return resultToJson(converted);
}
