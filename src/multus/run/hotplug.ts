/**
 * @module
 * Hot-plug of one sandbox: the networks the pod's networks annotation names now, against
 * those the scratch cache says were attached from it. A removed element is DELeted alone, a
 * new one resolved as ADD resolves it and ADDed alone (the next free `netN` or its requested
 * name), a changed one (same network, other interface or requests) both. The default network
 * (and the configuration's own networks) are never touched. Every new element is resolved
 * before any is attached, and attaching is all or nothing: a failure rolls back what this
 * pass attached. The scratch cache is rewritten after each step, before a delegate runs, so
 * the runtime's DEL always releases everything. The network-status annotation is then made to
 * list what is attached, in one write.
 */

import { CniError, CniErrorCode } from "../../cni/errors.ts";
import type { Exec } from "../../cni/exec.ts";
import { addNetwork, delNetwork } from "../../cni/invoke.ts";
import { validateIfName, validateNetworkName } from "../../cni/request.ts";
import { parseResult } from "../../cni/result.ts";
import { readCachedResult } from "../../cni/result_cache.ts";
import type { Pod } from "../../k8s/types.ts";
import type { Logger } from "../../log/logger.ts";
import { errorMessage, explain } from "../../util/errors.ts";
import type { Invocation, KubeSession, PodIdentity } from "../config/invocation.ts";
import type { MultusNetConf } from "../config/netconf.ts";
import {
  formatNetworkStatus,
  NETWORK_STATUS_ANNOTATION,
  type NetworkStatus,
  networkStatuses,
} from "../kube/network_status.ts";
import { resolveSelectedNetworks } from "../kube/networks.ts";
import type { Delegate } from "../plan/delegate.ts";
import type { AttachedNetwork } from "../plan/plans.ts";
import { checkRequestCapabilities, verifyRequests } from "../plan/requests.ts";
import { runtimeConfFor } from "../plan/runtime_conf.ts";
import { NETWORKS_ANNOTATION, type NetworkSelection, parseSelection } from "../plan/selection.ts";
import { selectionKey } from "../plan/selection_key.ts";
import {
  deviceInfoFileFor,
  readDeviceInfoFor,
  removeDeviceInfoFor,
  writeDeviceInfoFor,
} from "./device_info_files.ts";
import { type CachedDelegate, type SandboxRecord, saveScratchCache } from "./scratch_cache.ts";

/**
 * Put before the element of a delegate whose rollback failed: it matches no element, so the
 * next pass detaches it again.
 */
const ROLLBACK_MARK = "rollback:";

/** A sandbox as its scratch cache describes it. */
export interface Sandbox {
  containerId: string;
  /** The multus network (configuration `name`) that attached it. */
  network: string;
  sandbox: SandboxRecord;
  /** Every attached delegate, in order; the first is the default network. */
  delegates: CachedDelegate[];
}

/** The pod of a sandbox, as its cache names it (undefined when the cache does not say). */
export function sandboxPod(s: Pick<Sandbox, "delegates">): PodIdentity | undefined {
  return s.delegates.find((d) => d.pod)?.pod;
}

/** What {@linkcode sandboxInvocation} needs besides the sandbox. */
export interface SandboxInvocationOptions {
  conf: MultusNetConf;
  env: Record<string, string | undefined>;
  log: Logger;
  kube: () => Promise<KubeSession | undefined>;
  exec: Exec;
}

/**
 * The invocation delegates of `sandbox` run with: its container, netns, interface and plugin
 * path as the runtime's ADD gave them, and that ADD's CNI_ARGS.
 */
export function sandboxInvocation(sandbox: Sandbox, o: SandboxInvocationOptions): Invocation {
  const args = sandbox.delegates[0]?.args ?? [];
  const pod = sandboxPod(sandbox);
  return {
    request: {
      command: "ADD",
      containerId: sandbox.containerId,
      netns: sandbox.sandbox.netns,
      ifName: sandbox.sandbox.ifName,
      args,
      path: sandbox.sandbox.path,
    },
    conf: o.conf,
    pod,
    infraContainerId: args.findLast(([k]) => k === "K8S_POD_INFRA_CONTAINER_ID")?.[1] ?? "",
    env: o.env,
    log: o.log,
    kube: o.kube,
    exec: o.exec,
  };
}

/** What the annotation asks for that is not attached, and what is attached but not asked for. */
export interface NetworkChanges {
  /** Attached from the annotation, no longer (or no longer so) named by it; in cache order. */
  detach: CachedDelegate[];
  /** Elements of the annotation not attached; in annotation order. */
  attach: NetworkSelection[];
}

/** The networks annotation of `pod`, parsed; throws a ConfigError naming the pod and field. */
export function desiredNetworks(pod: Pod, podId: PodIdentity): NetworkSelection[] {
  const value = pod.metadata.annotations?.[NETWORKS_ANNOTATION];
  if (value === undefined) return [];
  return parseSelection(value, {
    defaultNamespace: podId.namespace,
    where: `pod "${podId.namespace}/${podId.name}" annotation ${NETWORKS_ANNOTATION}`,
  });
}

/**
 * Compares the attached delegates with the desired elements. Only delegates attached from
 * the annotation (those whose cache entry keeps the element) take part; each desired element
 * is matched with one attached delegate of the same canonical element.
 */
export function compareNetworks(
  attached: CachedDelegate[],
  desired: NetworkSelection[],
): NetworkChanges {
  const pool = new Map<string, CachedDelegate[]>();
  for (const d of attached) {
    if (d.isMaster || d.selection === undefined) continue;
    const list = pool.get(d.selection) ?? [];
    list.push(d);
    pool.set(d.selection, list);
  }
  const attach: NetworkSelection[] = [];
  for (const s of desired) {
    const match = pool.get(selectionKey(s));
    if (match?.length) match.shift();
    else attach.push(s);
  }
  const left = new Set([...pool.values()].flat());
  return { detach: attached.filter((d) => left.has(d)), attach };
}

/** What one pass over a sandbox did. */
export interface HotplugOutcome {
  /** Delegates DELeted. */
  detached: CachedDelegate[];
  /** Delegates ADDed (and kept). */
  attached: AttachedNetwork[];
  /** True when the network-status annotation was written. */
  statusWritten: boolean;
  /** The first failure; what was done before it is in the lists above. */
  error?: CniError;
}

/** Where a pass gets the pod and the API from. */
export interface HotplugContext {
  /** The pod as the API has it now (UID already checked against the cache). */
  pod: Pod;
  kube: KubeSession;
}

/**
 * Brings one sandbox's networks to what the pod's annotation names, then the network-status
 * annotation to what is attached. Never throws for a failed step: the outcome carries it
 * (the caller retries the pass later; a pass with nothing to do only repairs the status).
 */
export async function reconcileSandbox(
  inv: Invocation,
  sandbox: Sandbox,
  ctx: HotplugContext,
): Promise<HotplugOutcome> {
  const outcome: HotplugOutcome = { detached: [], attached: [], statusWritten: false };
  const podId = inv.pod!;
  let changes: NetworkChanges;
  try {
    changes = compareNetworks(sandbox.delegates, desiredNetworks(ctx.pod, podId));
  } catch (err) {
    outcome.error = explain(err, `Cannot hot-plug networks of pod "${podLabelOf(podId)}"`);
    return outcome;
  }
  const current = [...sandbox.delegates];
  const save = (delegates: CachedDelegate[]) =>
    saveScratchCache(inv.conf.cniDir, sandbox.containerId, sandbox.network, delegates, {
      ...sandbox.sandbox,
    });

  // Removed (and changed) elements first: a changed element may want its old name back.
  for (const d of [...changes.detach].reverse()) {
    try {
      inv.log.verbose(`hot-plug: DEL ${d.name} (${d.ifName})`, { network: d.name });
      await removeDeviceInfoFor(inv, d);
      await delNetwork(d.config, runtimeConfFor(inv, d, "DEL"));
    } catch (err) {
      outcome.error = explain(
        err,
        `Cannot detach network "${d.name}" (${d.ifName}) from pod "${podLabelOf(podId)}"`,
      );
      break;
    }
    current.splice(current.indexOf(d), 1);
    outcome.detached.push(d);
    try {
      await save(current);
    } catch (err) {
      outcome.error = explain(err, `Cannot record the detach of "${d.name}" (${d.ifName})`);
      break;
    }
  }

  if (!outcome.error && changes.attach.length > 0) {
    const added = await attachAll(inv, sandbox, current, changes.attach, ctx, save);
    if (added.error) outcome.error = added.error;
    else {
      outcome.attached = added.attached;
      current.push(...added.attached.map((a) => a.delegate as CachedDelegate));
    }
  }

  try {
    outcome.statusWritten = await publishStatus(inv, sandbox.containerId, current, ctx);
  } catch (err) {
    outcome.error ??= explain(
      err,
      `Cannot publish the network status of pod "${podLabelOf(podId)}"`,
    );
  }
  return outcome;
}

/**
 * Resolves every element, then attaches each in order; on a failure DELs what this pass
 * attached, in reverse order, and restores the cache. A delegate whose rollback DEL failed
 * stays in the cache marked so that the next pass detaches it again (and the runtime's DEL
 * releases it in any case).
 */
async function attachAll(
  inv: Invocation,
  sandbox: Sandbox,
  current: CachedDelegate[],
  selections: NetworkSelection[],
  ctx: HotplugContext,
  save: (delegates: CachedDelegate[]) => Promise<void>,
): Promise<{ attached: AttachedNetwork[]; error?: CniError }> {
  const podId = inv.pod!;
  const who = `pod "${podLabelOf(podId)}"`;
  let planned: CachedDelegate[];
  try {
    const resolved = await resolveSelectedNetworks(inv, ctx.kube, ctx.pod, selections);
    await assignDevices(inv, podId, current, resolved);
    planned = await planNew(inv, sandbox, current, resolved, who);
  } catch (err) {
    return { attached: [], error: explain(err, `Cannot hot-plug networks of ${who}`) };
  }

  // Recorded before any delegate runs: a crash from here on leaves the runtime's DEL all it
  // needs.
  try {
    await save([...current, ...planned]);
  } catch (err) {
    return { attached: [], error: explain(err, `Cannot hot-plug networks of ${who}`) };
  }
  const attached: AttachedNetwork[] = [];
  for (const d of planned) {
    try {
      inv.log.verbose(`hot-plug: ADD ${d.name} as ${d.ifName}`, { network: d.name });
      await writeDeviceInfoFor(inv, d);
      const result = await addNetwork(d.config, runtimeConfFor(inv, d, "ADD"));
      attached.push({ delegate: d, result, deviceInfo: await readDeviceInfoFor(inv, d) });
      verifyRequests(d, result);
    } catch (err) {
      const cause = explain(err, `Cannot attach network "${d.name}" as ${d.ifName} to ${who}`);
      const tried = planned.slice(0, planned.indexOf(d) + 1);
      const stuck = await rollBack(inv, tried, d);
      const kept = stuck.map((s) => ({ ...s, selection: `${ROLLBACK_MARK}${s.selection ?? ""}` }));
      await save([...current, ...kept]).catch((e) =>
        inv.log.error(`hot-plug: cannot restore the scratch cache: ${errorMessage(e)}`)
      );
      const rolledBack = stuck.length === 0
        ? "every network attached by this change was rolled back"
        : `rollback could not release ${
          stuck.map((s) => `${s.name} (${s.ifName})`).join(", ")
        }; the next pass or the runtime's DEL retries`;
      return {
        attached: [],
        error: new CniError(cause.code, cause.message, {
          details: [cause.details, rolledBack].filter(Boolean).join("; "),
          cause,
        }),
      };
    }
  }
  return { attached };
}

/** Interface names, arguments and capability arguments of the new delegates, checked. */
async function planNew(
  inv: Invocation,
  sandbox: Sandbox,
  current: CachedDelegate[],
  resolved: Delegate[],
  who: string,
): Promise<CachedDelegate[]> {
  const used = new Set([sandbox.sandbox.ifName, ...current.map((d) => d.ifName)]);
  for (const d of resolved) if (d.ifnameRequest) used.add(d.ifnameRequest);
  const taken = new Map(current.map((d) => [d.ifName, d.name]));
  const args = sandbox.delegates[0]?.args;
  const planned: CachedDelegate[] = [];
  for (const d of resolved) {
    let ifName = d.ifnameRequest;
    if (ifName) {
      const owner = taken.get(ifName) ??
        planned.find((p) => p.ifName === ifName)?.name;
      if (owner !== undefined) {
        throw new CniError(
          CniErrorCode.InvalidNetworkConfig,
          `Cannot attach network "${d.name}" as ${ifName} to ${who}: network "${owner}" has that interface`,
          { details: 'Give it another interface name (network@ifname or "interface")' },
        );
      }
    } else {
      let n = 1;
      while (used.has(`net${n}`)) n++;
      ifName = `net${n}`;
      used.add(ifName);
    }
    const p: CachedDelegate = { ...d, ifName, isMaster: false, pod: inv.pod, args };
    try {
      validateNetworkName(p.config.name);
      validateIfName(p.ifName);
    } catch (err) {
      throw explain(err, `Cannot attach network "${p.name}" as ${p.ifName} to ${who}`);
    }
    checkRequestCapabilities(p, who);
    p.capabilityArgs = runtimeConfFor(inv, p, "ADD").capabilityArgs;
    const deviceInfoFile = await deviceInfoFileFor(inv, p);
    if (deviceInfoFile) p.capabilityArgs.CNIDeviceInfoFile = deviceInfoFile;
    planned.push(p);
  }
  return planned;
}

/**
 * Device IDs for new delegates on a device plugin resource: the pod's allocation handed out
 * in order over the attached delegates then the new ones, so a new network never gets a
 * device an attached one has.
 */
async function assignDevices(
  inv: Invocation,
  podId: PodIdentity,
  current: CachedDelegate[],
  resolved: Delegate[],
): Promise<void> {
  if (!resolved.some((d) => d.resourceName)) return;
  const { assignDeviceIds } = await import("../kube/device_ids.ts");
  const inUse = current.filter((d) => d.resourceName && d.deviceID);
  const placeholders: Delegate[] = inUse.map((d) => ({ ...d }));
  await assignDeviceIds(podId, [...placeholders, ...resolved], {
    podResourcesSocket: inv.conf.podResourcesSocket,
    checkpointFile: inv.conf.deviceCheckpointFile,
    log: inv.log,
  });
  const used = new Set(inUse.map((d) => d.deviceID));
  for (const d of resolved) {
    if (d.deviceID && used.has(d.deviceID)) {
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `Cannot attach network "${d.name}": device ${d.deviceID} of "${d.resourceName}" is in use by another network of the pod`,
        { details: "Request one more device of that resource for the pod" },
      );
    }
  }
}

/** DELs `delegates` in reverse order; returns those that could not be released. */
async function rollBack(
  inv: Invocation,
  delegates: CachedDelegate[],
  failed: CachedDelegate,
): Promise<CachedDelegate[]> {
  const stuck: CachedDelegate[] = [];
  for (const d of [...delegates].reverse()) {
    await removeDeviceInfoFor(inv, d);
    try {
      await delNetwork(d.config, runtimeConfFor(inv, d, "DEL"));
    } catch (err) {
      // The delegate whose ADD failed cleans up after itself (CNI spec).
      if (d === failed) {
        inv.log.verbose(`hot-plug: rollback DEL of ${d.name}: ${errorMessage(err)}`);
      } else stuck.push(d);
    }
  }
  return stuck;
}

/** The network-status entries to keep and the delegates whose entries are missing. */
interface StatusPlan {
  before?: string;
  kept: NetworkStatus[];
  missing: CachedDelegate[];
}

/**
 * What the pod's network-status lacks or has too many against `delegates`: entries of
 * networks no longer attached go, entries of networks attached from the annotation but not
 * listed are missing; the rest is kept as it is.
 */
function statusPlan(pod: Pod, delegates: CachedDelegate[], log?: Logger): StatusPlan {
  const before = pod.metadata.annotations?.[NETWORK_STATUS_ANNOTATION];
  let entries: NetworkStatus[] = [];
  if (before !== undefined) {
    try {
      const parsed = JSON.parse(before);
      if (Array.isArray(parsed)) entries = parsed;
    } catch {
      log?.warn(`hot-plug: the pod's ${NETWORK_STATUS_ANNOTATION} is not JSON; rewriting it`);
    }
  }
  const attachedAs = new Set(delegates.map((d) => `${d.name}\n${d.ifName}`));
  const names = new Set(delegates.map((d) => d.name));
  const managed = delegates.filter((d) => !d.isMaster && d.selection !== undefined);
  const managedNames = new Set(managed.map((d) => d.name));
  // An entry goes when its network is no longer attached, or when hot-plug manages that
  // network and the interface is no longer one of it.
  const kept = entries.filter((e) =>
    names.has(e.name) &&
    (!managedNames.has(e.name) || e.interface === undefined ||
      attachedAs.has(`${e.name}\n${e.interface}`))
  );
  const listed = new Set(kept.map((e) => `${e.name}\n${e.interface ?? ""}`));
  // A delegate whose rollback failed is not attached as far as the pod should know.
  const missing = managed.filter((d) =>
    !d.selection!.startsWith(ROLLBACK_MARK) && !listed.has(`${d.name}\n${d.ifName}`)
  );
  return { before, kept, missing };
}

/**
 * True when a pass over `sandbox` has something to do for `pod` as seen (a cached copy):
 * networks to attach or detach, a network-status to correct, or an annotation that cannot
 * be read (its error is reported by the pass). Reads nothing.
 */
export function needsPass(sandbox: Sandbox, pod: Pod, conf: MultusNetConf): boolean {
  const podId = sandboxPod(sandbox);
  if (!podId) return false;
  try {
    const changes = compareNetworks(sandbox.delegates, desiredNetworks(pod, podId));
    if (changes.attach.length > 0 || changes.detach.length > 0) return true;
  } catch {
    return true;
  }
  if (conf.systemNamespaces.includes(podId.namespace)) return false;
  const plan = statusPlan(pod, sandbox.delegates);
  const entries = plan.before === undefined ? 0 : safeLength(plan.before);
  return plan.missing.length > 0 || plan.kept.length !== entries;
}

function safeLength(text: string): number {
  try {
    const parsed = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.length : -1;
  } catch {
    return -1;
  }
}

/**
 * Makes the pod's network-status list the sandbox's attached networks (see
 * {@linkcode statusPlan}); missing entries are built from the delegates' cached results.
 * One write, only when something differs; none in the configuration's system namespaces
 * (as ADD).
 */
async function publishStatus(
  inv: Invocation,
  containerId: string,
  delegates: CachedDelegate[],
  ctx: HotplugContext,
): Promise<boolean> {
  const podId = inv.pod!;
  if (inv.conf.systemNamespaces.includes(podId.namespace)) return false;
  const { before, kept, missing } = statusPlan(ctx.pod, delegates, inv.log);
  const added: AttachedNetwork[] = [];
  for (const d of missing) {
    const cached = await readCachedResult(inv.conf.cniDir, {
      networkName: d.config.name,
      containerId,
      ifName: d.ifName,
    }, inv.log);
    if (!cached?.result) continue;
    try {
      const result = parseResult(cached.result, d.config.cniVersion);
      added.push({ delegate: d, result, deviceInfo: await readDeviceInfoFor(inv, d) });
    } catch (err) {
      inv.log.warn(`hot-plug: cached result of ${d.name} (${d.ifName}): ${errorMessage(err)}`);
    }
  }
  const after = formatNetworkStatus([...kept, ...networkStatuses(added)]);
  if (before !== undefined && sameStatus(before, after)) return false;
  if (before === undefined && kept.length === 0 && added.length === 0) return false;
  await ctx.kube.client.setPodAnnotations(ctx.pod, { [NETWORK_STATUS_ANNOTATION]: after });
  return true;
}

function sameStatus(a: string, b: string): boolean {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

function podLabelOf(pod: PodIdentity): string {
  return `${pod.namespace}/${pod.name}`;
}
