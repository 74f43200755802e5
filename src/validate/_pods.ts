/**
 * @module
 * A pod (or a workload's pod template) as ADD would see it: its networks resolved as
 * `multus/kube/networks.ts` does (cluster network, `defaultNetworks`, the default-network and
 * networks annotations, namespace isolation), interface names planned, and what the pod
 * requests of each network checked against what the network declares (ADD fails a request the network does not honour).
 */

import { ConfigError } from "../cni/errors.ts";
import { type Delegate, planInterfaces } from "../multus/plan/delegate.ts";
import { checkRequestCapabilities } from "../multus/plan/requests.ts";
import {
  DEFAULT_NETWORK_ANNOTATION,
  NETWORKS_ANNOTATION,
  type NetworkSelection,
  parseSelection,
  selectionToDelegate,
} from "../multus/plan/selection.ts";
import type { Context } from "./_context.ts";
import { type Where, within } from "./_findings.ts";
import { isObject, type PodInput } from "./_inputs.ts";
import { placeholder } from "./_multus_config.ts";
import { ipamConfigs } from "./_networks.ts";
import { checkSelectionKeys } from "./_unknown_fields.ts";

/** One interface slot of the pod: the delegate and where its selection is written. */
interface Slot {
  delegate: Delegate;
  /** The selection element's place, for findings about its requests. */
  where?: Where;
  /** False when the network could not be resolved (already reported). */
  resolved: boolean;
}

/** Checks one pod (template) against the given Multus config and NADs. */
export function checkPod(ctx: Context, pod: PodInput): void {
  const { report, settings, cluster } = ctx;
  if (pod.spec.hostNetwork === true) return; // no CNI for host-network pods

  const slots: Slot[] = [];
  const master = cluster.master ?? placeholder("(cluster default network)");
  slots.push({ delegate: master, resolved: !("unresolved" in master) });
  const skipDefaults = cluster.fromDefaultNetworks &&
    settings.systemNamespaces.includes(pod.namespace);
  if (!skipDefaults) {
    for (const d of cluster.extra) slots.push({ delegate: d, resolved: !("unresolved" in d) });
  }

  const annotationWhere = (key: string) => within(pod.where, `metadata.annotations["${key}"]`);

  const defaultNetwork = annotation(ctx, { pod, key: DEFAULT_NETWORK_ANNOTATION });
  if (defaultNetwork !== undefined) {
    const where = annotationWhere(DEFAULT_NETWORK_ANNOTATION);
    checkSelectionKeys(report, defaultNetwork, where);
    const selections = parse(ctx, defaultNetwork, {
      where,
      defaultNamespace: settings.multusNamespace,
      label: `${pod.label} annotation ${DEFAULT_NETWORK_ANNOTATION}`,
    });
    if (selections && selections.length !== 1) {
      report.error(
        where,
        `Cannot use ${pod.label} annotation ${DEFAULT_NETWORK_ANNOTATION}: it must name exactly one network, found ${selections.length}`,
        {
          hint:
            "Name one NetworkAttachmentDefinition ([namespace/]name) to replace the cluster network",
        },
      );
    } else if (selections) {
      slots[0] = resolveSelection(ctx, pod, { selection: selections[0], where });
    }
  }

  const networks = annotation(ctx, { pod, key: NETWORKS_ANNOTATION });
  if (networks !== undefined) {
    const where = annotationWhere(NETWORKS_ANNOTATION);
    checkSelectionKeys(report, networks, where);
    const selections = parse(ctx, networks, {
      where,
      defaultNamespace: pod.namespace,
      label: `${pod.label} annotation ${NETWORKS_ANNOTATION}`,
    }) ?? [];
    selections.forEach((selection, i) => {
      const at = within(where, `[${i}]`);
      if (violatesIsolation(ctx, pod, { selection, where: at })) {
        slots.push({ delegate: selectionPlaceholder(selection), where: at, resolved: false });
      } else {
        slots.push(resolveSelection(ctx, pod, { selection, where: at }));
      }
    });
  }

  try {
    planInterfaces(slots.map((s) => s.delegate), "eth0");
  } catch (err) {
    const at = networks !== undefined
      ? annotationWhere(NETWORKS_ANNOTATION)
      : defaultNetwork !== undefined
      ? annotationWhere(DEFAULT_NETWORK_ANNOTATION)
      : pod.where;
    report.fromError(at, err);
  }

  for (const slot of slots) {
    if (!slot.resolved || !slot.where) continue;
    try {
      checkRequestCapabilities(slot.delegate, pod.label);
    } catch (err) {
      const field = err instanceof ConfigError ? err.field : "";
      report.fromError(within(slot.where, field), err);
    }
    checkSoftRequests(ctx, { pod, slot });
  }
  checkHostPorts(ctx, { pod, master: slots[0] });
}

function annotation(
  ctx: Context,
  { pod, key }: { pod: PodInput; key: string },
): string | undefined {
  const annotations = isObject(pod.metadata.annotations) ? pod.metadata.annotations : {};
  const value = annotations[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    ctx.report.error(
      within(pod.where, `metadata.annotations["${key}"]`),
      `the annotation must be a string, got ${
        Array.isArray(value) ? "a list" : `a ${typeof value}`
      }`,
      {
        hint: "Annotation values are strings: quote the JSON list (e.g. with a YAML block " +
          "scalar `|` or single quotes)",
      },
    );
    return undefined;
  }
  return value;
}

function parse(
  ctx: Context,
  value: string,
  options: { where: Where; defaultNamespace: string; label: string },
): NetworkSelection[] | undefined {
  try {
    return parseSelection(value, {
      defaultNamespace: options.defaultNamespace,
      where: options.label,
    });
  } catch (err) {
    // Fields are named like `networks[0].mac`: keep what follows "networks".
    const field = err instanceof ConfigError ? err.field.replace(/^networks/, "") : "";
    ctx.report.fromError(within(options.where, field), err);
    return undefined;
  }
}

function violatesIsolation(
  ctx: Context,
  pod: PodInput,
  { selection, where }: { selection: NetworkSelection; where: Where },
): boolean {
  const { settings } = ctx;
  if (!settings.namespaceIsolation || selection.namespace === pod.namespace) return false;
  if (settings.globalNamespaces.includes(selection.namespace)) return false;
  ctx.report.error(
    within(where, "namespace"),
    `Cannot attach network "${selection.namespace}/${selection.name}" to ${pod.label}: namespace isolation is on and pods in "${pod.namespace}" may only use networks of their own namespace or of ${
      JSON.stringify(settings.globalNamespaces)
    }`,
    {
      hint:
        `Create the NetworkAttachmentDefinition in namespace "${pod.namespace}", or add "${selection.namespace}" to globalNamespaces in the multus configuration`,
    },
  );
  return true;
}

function selectionPlaceholder(s: NetworkSelection): Delegate {
  return { ...placeholder(`${s.namespace}/${s.name}`), ifnameRequest: s.interface };
}

/** A selection → the delegate ADD would build, from the given NADs. */
function resolveSelection(
  ctx: Context,
  pod: PodInput,
  { selection: s, where }: { selection: NetworkSelection; where: Where },
): Slot {
  const label = `${s.namespace}/${s.name}`;
  const nad = ctx.nads.get(label);
  if (!nad) {
    const elsewhere = [...ctx.nads.values()].filter((n) => n.name === s.name).map((n) => n.label);
    ctx.report.error(
      where,
      `Cannot attach network "${label}" to ${pod.label}: no NetworkAttachmentDefinition "${s.name}" in namespace "${s.namespace}" among the given files`,
      {
        hint: (elsewhere.length > 0
          ? `One exists as ${elsewhere.join(", ")}: write "<namespace>/${s.name}" to use it. `
          : "") +
          "Give the file that defines it, or fix the name in the annotation (ADD fails when the NAD is missing)",
      },
    );
    return { delegate: selectionPlaceholder(s), where, resolved: false };
  }
  if (nad.broken || !nad.config) {
    ctx.report.error(
      where,
      `Cannot attach network "${label}" to ${pod.label}: its NetworkAttachmentDefinition (${nad.where.file}) has errors`,
      { hint: "Fix the errors reported for that NetworkAttachmentDefinition" },
    );
    if (!nad.config) return { delegate: selectionPlaceholder(s), where, resolved: false };
  }
  return {
    delegate: selectionToDelegate(s, { config: nad.config }),
    where,
    resolved: true,
  };
}

/**
 * `ips` and `mac` are checked in the result at ADD; warn when nothing in the
 * network looks able to honour them.
 */
function checkSoftRequests(ctx: Context, { pod, slot }: { pod: PodInput; slot: Slot }): void {
  const d = slot.delegate;
  const plugins = d.config.plugins;
  if (d.ipRequest?.length) {
    const declared = plugins.some((p) => p.capabilities.ips);
    const ipamHonours = ipamConfigs(d.config).some((ipam) =>
      ipam.type === "static" ||
      (ipam.type === "host-local" && Array.isArray(ipam.ranges) && ipam.ranges.length > 0)
    );
    if (!declared && !ipamHonours) {
      ctx.report.warning(
        within(slot.where!, "ips"),
        `network "${d.name}" may not honour the IPs ${pod.label} requests: no plugin declares the "ips" capability and its IPAM is neither "static" nor "host-local" with ranges`,
        {
          hint:
            'ADD fails when the result lacks a requested IP: use "static" IPAM (or host-local with ranges) and declare "capabilities": {"ips": true}',
        },
      );
    }
  }
  if (d.macRequest) {
    const declared = plugins.some((p) => p.capabilities.mac);
    const tuning = plugins.some((p) => p.type === "tuning");
    if (!declared && !tuning) {
      ctx.report.warning(
        within(slot.where!, "mac"),
        `network "${d.name}" may not honour the MAC ${pod.label} requests: no plugin declares the "mac" capability`,
        {
          hint:
            'ADD fails when the result lacks the requested MAC: declare "capabilities": {"mac": true} on a plugin that sets MACs (e.g. tuning, macvlan)',
        },
      );
    }
  }
}

/** hostPort needs `portMappings` declared by the Multus config and by the default network. */
function checkHostPorts(
  ctx: Context,
  { pod, master }: { pod: PodInput; master: Slot },
): void {
  const ports: string[] = [];
  for (const kind of ["initContainers", "containers"]) {
    const containers = pod.spec[kind];
    if (!Array.isArray(containers)) continue;
    containers.forEach((c, i) => {
      if (!isObject(c) || !Array.isArray(c.ports)) return;
      c.ports.forEach((p, j) => {
        if (isObject(p) && typeof p.hostPort === "number" && p.hostPort > 0) {
          ports.push(`spec.${kind}[${i}].ports[${j}].hostPort`);
        }
      });
    });
  }
  if (ports.length === 0) return;
  const where = within(pod.where, ports[0]);
  const caps = ctx.cluster.multusCapabilities;
  if (caps && !caps.portMappings) {
    ctx.report.warning(
      where,
      `${pod.label} uses hostPort, but the Multus config does not declare the "portMappings" capability: the runtime will not pass the port mappings`,
      { hint: 'Add "capabilities": {"portMappings": true} to the Multus config' },
    );
  } else if (
    master.resolved && !master.delegate.config.plugins.some((p) => p.capabilities.portMappings)
  ) {
    ctx.report.warning(
      where,
      `${pod.label} uses hostPort, but no plugin of the default network "${master.delegate.name}" declares the "portMappings" capability: the ports will not be mapped`,
      { hint: 'Add the portmap plugin with "capabilities": {"portMappings": true} to it' },
    );
  }
}
