/**
 * @module
 * A delegate: one network the pod is attached to (the cluster default network or an extra
 * one), with what the pod requested for it, and the interface name it gets.
 */

import { ConfigError } from "../../cni/errors.ts";
import type { NetworkConfig } from "../../cni/network_config.ts";
import type { PodIdentity } from "../config/invocation.ts";

/** Port mapping request (CNI `portMappings` capability). */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol?: string;
  hostIP?: string;
}

/** Bandwidth request (CNI `bandwidth` capability). */
export interface BandwidthEntry {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

/** One network to attach. */
export interface Delegate {
  /** Name shown in network-status: `ns/nad` for NADs, else the CNI config name. */
  name: string;
  /** The network configuration, kept as its original text. */
  config: NetworkConfig;
  /** Requested interface name (`@if` / `interface`). */
  ifnameRequest?: string;
  macRequest?: string;
  ipRequest?: string[];
  portMappings?: PortMapping[];
  bandwidth?: BandwidthEntry;
  infinibandGUID?: string;
  defaultRoute?: string[];
  deviceID?: string;
  resourceName?: string;
  /** `cni-args` of the selection, merged into `args.cni`. */
  cniArgs?: Record<string, unknown>;
  /**
   * For a network named by the pod's networks annotation: that element, canonical
   * (`selectionKey` of `selection_key.ts`), so hot-plug can tell which attached network it is.
   */
  selection?: string;
}

/** A delegate with its interface name decided. */
export interface PlannedDelegate extends Delegate {
  ifName: string;
  /** True for the cluster default network (delegate 0). */
  isMaster: boolean;
}

/**
 * Decides every delegate's interface name as Multus does (users' configs rely on net1 being
 * the first extra network): a requested name wins;
 * else delegate 0 gets `cniIfName` and delegate i gets `net<i>`. Two delegates with the same
 * name are rejected before anything runs.
 */
export function planInterfaces(delegates: Delegate[], cniIfName: string): PlannedDelegate[] {
  const planned = assignInterfaceNames(delegates, cniIfName);
  const seen = new Map<string, PlannedDelegate>();
  for (const d of planned) {
    const other = seen.get(d.ifName);
    if (other) {
      throw new ConfigError(
        "interface",
        `Cannot attach networks "${other.name}" and "${d.name}": both would get interface "${d.ifName}"`,
        { details: 'Give one of them another interface name (network@ifname or "interface")' },
      );
    }
    seen.set(d.ifName, d);
  }
  return planned;
}

/**
 * The interface names of {@linkcode planInterfaces} without its clash check, for DEL: a plan
 * whose names clash was never attached, and DEL of each network on its name is harmless.
 */
export function assignInterfaceNames(delegates: Delegate[], cniIfName: string): PlannedDelegate[] {
  return delegates.map((d, i) => ({
    ...d,
    isMaster: i === 0,
    ifName: d.ifnameRequest || (i === 0 ? cniIfName : `net${i}`),
  }));
}

/** Network name of a delegate's configuration, for messages. */
export function delegateLabel(d: Pick<Delegate, "name" | "config">): string {
  return d.name || d.config.name || "(unnamed network)";
}

/** A delegate as attached at ADD, with the exact parameters DEL must repeat. */
export interface CachedDelegate extends PlannedDelegate {
  /** CNI_ARGS pairs given to the delegate at ADD (without the ADD-only MAC=/IP=). */
  args?: [string, string][];
  /** Capability arguments given at ADD. */
  capabilityArgs?: Record<string, unknown>;
  /** The pod, when known. */
  pod?: PodIdentity;
}
