/**
 * @module
 * The devices a pod got through Dynamic Resource Allocation, as a map resource name → device
 * IDs, read as Multus does: every claim of `status.resourceClaimStatuses` and the claim of
 * `status.extendedResourceClaimStatus`, their `status.allocation.devices.results`, and for
 * each result the device's attributes `k8s.cni.cncf.io/deviceID` and
 * `k8s.cni.cncf.io/resourceName` in the ResourceSlices of this node and that driver.
 * Knows nothing of networks beyond their names for messages: `device_ids.ts` hands the IDs out.
 */

import { ConfigError } from "../../cni/errors.ts";
import { K8sApiError } from "../../k8s/errors.ts";
import type { DeviceAllocationResult, Pod, ResourceClaim, ResourceSlice } from "../../k8s/types.ts";
import type { Logger } from "../../log/logger.ts";
import { CodedError, ErrorCode, errorMessage, isObject } from "../../util/errors.ts";
import { type DraObjects, sliceSelector } from "./dra_objects.ts";

/** The device attribute holding the ID handed to the network (a PCI address, …). */
export const DEVICE_ID_ATTRIBUTE = "k8s.cni.cncf.io/deviceID";
/** The device attribute naming the resource a NAD's `k8s.v1.cni.cncf.io/resourceName` asks for. */
export const RESOURCE_NAME_ATTRIBUTE = "k8s.cni.cncf.io/resourceName";

/** A device allocated through DRA that is published for networks. */
export interface DraDevice {
  /** The `k8s.cni.cncf.io/deviceID` attribute. */
  id: string;
  /** The claim it was allocated in, `namespace/name`. */
  claim: string;
}

/** The pod's DRA devices for networks, and what was left out. */
export interface DraAllocation {
  /** Resource name → devices, claims in the pod's order, each claim's results in order. */
  devices: Map<string, DraDevice[]>;
  /** The claims read, `namespace/name`. */
  claims: string[];
  /** Allocated devices that are not published for networks, and why (for messages). */
  skipped: string[];
}

/** What the look-up is for, for messages and the extended-resource checks. */
export interface DraRequest {
  /** The networks that want a device, `namespace/name`, in order. */
  networks: string[];
  /** The resource names those networks ask for. */
  resources: ReadonlySet<string>;
  log: Logger;
}

/** True when the pod's status names resource claims (plain or for extended resources). */
export function podHasClaims(pod: Pod): boolean {
  const status = pod.status ?? {};
  const statuses = status.resourceClaimStatuses;
  return (Array.isArray(statuses) && statuses.length > 0) ||
    (status.extendedResourceClaimStatus !== undefined &&
      status.extendedResourceClaimStatus !== null);
}

/**
 * Reads the devices allocated to `pod` through its resource claims. Devices without both
 * attributes are skipped (a GPU in the same claim), as are devices missing from the node's
 * slices (logged). The claim of `status.extendedResourceClaimStatus` is checked strictly for
 * the mappings whose resource a network asks for: every device of the mapped request must
 * carry both attributes, its `resourceName` equal to the mapping's.
 *
 * Throws {@linkcode ConfigError} naming the pod, the claim and the networks for a claim
 * without allocation or a failed strict check, and a coded error explaining API failures
 * (with the RBAC rule to add for a 403).
 */
export async function podDraDevices(
  pod: Pod,
  objects: DraObjects,
  request: DraRequest,
): Promise<DraAllocation> {
  const namespace = pod.metadata.namespace ?? "";
  const context = new ReadContext(pod, objects, request);
  const plain = claimNames(pod, context);
  const extended = extendedStatus(pod, context);
  const names = [...plain];
  if (extended && !names.includes(extended.claim)) names.push(extended.claim);
  const claims = new Map<string, ResourceClaim>();
  await Promise.all(names.map(async (name) => {
    claims.set(name, await context.claim(name));
  }));
  const out: DraAllocation = {
    devices: new Map(),
    claims: names.map((n) => `${namespace}/${n}`),
    skipped: [],
  };
  // Every driver's slices are listed at once, before the results are walked in order.
  const drivers = new Set<string>();
  for (const name of names) {
    for (const r of context.results(claims.get(name)!, name)) drivers.add(r.driver);
  }
  const index = new Map<string, Map<string, DeviceAttributes>>();
  await Promise.all([...drivers].map(async (driver) => {
    index.set(driver, indexSlices(await context.slices(driver), driver));
  }));

  for (const name of plain) {
    const claimText = `${namespace}/${name}`;
    for (const result of context.results(claims.get(name)!, name)) {
      const device = `"${result.device}" (driver "${result.driver}", pool "${result.pool}")`;
      const attributes = index.get(result.driver)!.get(`${result.pool}/${result.device}`);
      let why: string | undefined;
      if (!attributes) {
        why = `not in any ResourceSlice (${sliceSelector(context.nodeName, result.driver)})`;
        request.log.warn(`resource claim "${claimText}": device ${device} is ${why}; skipped`);
      } else if (attributes.id === undefined) {
        why = `no string attribute "${DEVICE_ID_ATTRIBUTE}"`;
        request.log.verbose(`resource claim "${claimText}": device ${device} has ${why}; skipped`);
      } else if (attributes.resource === undefined) {
        why = `no string attribute "${RESOURCE_NAME_ATTRIBUTE}"`;
        request.log.warn(`resource claim "${claimText}": device ${device} has ${why}; skipped`);
      }
      if (why !== undefined) {
        out.skipped.push(`device ${device} of claim "${claimText}": ${why}`);
        continue;
      }
      add(out.devices, attributes!.resource!, { id: attributes!.id!, claim: claimText });
    }
  }

  if (extended) {
    const claimText = `${namespace}/${extended.claim}`;
    const results = context.results(claims.get(extended.claim)!, extended.claim);
    for (const mapping of extended.mappings) {
      if (!request.resources.has(mapping.resourceName)) continue;
      const mapped = results.filter((r) => r.request === mapping.requestName);
      if (mapped.length === 0) {
        throw context.fail(
          claimText,
          "status.extendedResourceClaimStatus.requestMappings",
          `the request "${mapping.requestName}" that the pod's extended resource "${mapping.resourceName}" maps to has no device in the claim's allocation`,
        );
      }
      for (const result of mapped) {
        const device = `"${result.device}" (driver "${result.driver}", pool "${result.pool}")`;
        const attributes = index.get(result.driver)!.get(`${result.pool}/${result.device}`);
        let why: string | undefined;
        if (!attributes) {
          why = `is not in any ResourceSlice (${sliceSelector(context.nodeName, result.driver)})`;
        } else if (attributes.id === undefined) {
          why = `has no string attribute "${DEVICE_ID_ATTRIBUTE}"`;
        } else if (attributes.resource === undefined) {
          why =
            `has no string attribute "${RESOURCE_NAME_ATTRIBUTE}" (it must be "${mapping.resourceName}", the extended resource of request "${mapping.requestName}")`;
        } else if (attributes.resource !== mapping.resourceName) {
          why =
            `has "${RESOURCE_NAME_ATTRIBUTE}" "${attributes.resource}" but the pod's extended resource mapping of request "${mapping.requestName}" is "${mapping.resourceName}"`;
        }
        if (why !== undefined) {
          throw context.fail(claimText, "spec.devices[].attributes", `device ${device} ${why}`);
        }
        add(out.devices, mapping.resourceName, { id: attributes!.id!, claim: claimText });
      }
    }
  }
  return out;
}

/** The two attributes of one slice device; undefined when absent or not a string. */
interface DeviceAttributes {
  id?: string;
  resource?: string;
}

/**
 * Pool/device → attributes of a driver's slices. A pool being republished may have slices
 * of an older generation left: only those of its newest generation count.
 */
function indexSlices(slices: ResourceSlice[], driver: string): Map<string, DeviceAttributes> {
  const newest = new Map<string, number>();
  for (const s of slices) {
    if (s.spec.driver !== driver) continue;
    const pool = s.spec.pool;
    newest.set(pool.name, Math.max(newest.get(pool.name) ?? -Infinity, pool.generation));
  }
  const index = new Map<string, DeviceAttributes>();
  for (const s of slices) {
    const pool = s.spec.pool;
    if (s.spec.driver !== driver || pool.generation !== newest.get(pool.name)) continue;
    for (const device of s.spec.devices ?? []) {
      const attributes = device.attributes ?? {};
      index.set(`${pool.name}/${device.name}`, {
        id: stringAttribute(attributes[DEVICE_ID_ATTRIBUTE]?.string),
        resource: stringAttribute(attributes[RESOURCE_NAME_ATTRIBUTE]?.string),
      });
    }
  }
  return index;
}

function stringAttribute(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function add(devices: Map<string, DraDevice[]>, resource: string, device: DraDevice): void {
  let list = devices.get(resource);
  if (!list) devices.set(resource, list = []);
  if (!list.some((d) => d.id === device.id)) list.push(device);
}

/** Names of the claims in `status.resourceClaimStatuses` (entries without one are skipped). */
function claimNames(pod: Pod, context: ReadContext): string[] {
  const statuses = pod.status?.resourceClaimStatuses;
  if (statuses === undefined || statuses === null) return [];
  const field = "status.resourceClaimStatuses";
  if (!Array.isArray(statuses)) throw context.podField(field, "is not a list");
  const names: string[] = [];
  for (const [i, entry] of statuses.entries()) {
    if (!isObject(entry)) throw context.podField(`${field}[${i}]`, "is not an object");
    const name = entry.resourceClaimName;
    // No name: the claim is not needed on this node (the kubelet prepared nothing for it).
    if (name === undefined || name === null) continue;
    if (typeof name !== "string" || name === "") {
      throw context.podField(`${field}[${i}].resourceClaimName`, "is not a name");
    }
    if (!names.includes(name)) names.push(name);
  }
  return names;
}

interface ExtendedStatus {
  claim: string;
  mappings: { containerName: string; resourceName: string; requestName: string }[];
}

/** `status.extendedResourceClaimStatus`, checked. */
function extendedStatus(pod: Pod, context: ReadContext): ExtendedStatus | undefined {
  const status = pod.status?.extendedResourceClaimStatus;
  if (status === undefined || status === null) return undefined;
  const field = "status.extendedResourceClaimStatus";
  if (!isObject(status)) throw context.podField(field, "is not an object");
  const claim = status.resourceClaimName;
  if (typeof claim !== "string" || claim === "") {
    throw context.podField(`${field}.resourceClaimName`, "is not a name");
  }
  const raw = status.requestMappings ?? [];
  if (!Array.isArray(raw)) throw context.podField(`${field}.requestMappings`, "is not a list");
  const mappings = raw.map((m, i) => {
    const at = `${field}.requestMappings[${i}]`;
    if (!isObject(m)) throw context.podField(at, "is not an object");
    for (const key of ["resourceName", "requestName"]) {
      if (typeof m[key] !== "string" || m[key] === "") {
        throw context.podField(`${at}.${key}`, "is not a non-empty string");
      }
    }
    return {
      containerName: typeof m.containerName === "string" ? m.containerName : "",
      resourceName: m.resourceName as string,
      requestName: m.requestName as string,
    };
  });
  return { claim, mappings };
}

/** One look-up's pod, source and words for messages. */
class ReadContext {
  readonly nodeName: string;
  readonly #pod: Pod;
  readonly #objects: DraObjects;
  readonly #request: DraRequest;

  constructor(pod: Pod, objects: DraObjects, request: DraRequest) {
    this.#pod = pod;
    this.#objects = objects;
    this.#request = request;
    const nodeName = pod.spec?.nodeName;
    this.nodeName = typeof nodeName === "string" ? nodeName : "";
  }

  get #namespace(): string {
    return this.#pod.metadata.namespace ?? "";
  }

  /** `Cannot attach network(s) "a", "b" to pod "ns/name"`. */
  get #prefix(): string {
    const nets = this.#request.networks.map((n) => `"${n}"`).join(", ");
    const word = this.#request.networks.length === 1 ? "network" : "networks";
    return `Cannot attach ${word} ${nets} to pod "${this.#namespace}/${this.#pod.metadata.name}"`;
  }

  async claim(name: string): Promise<ResourceClaim> {
    try {
      return await this.#objects.resourceClaim(this.#namespace, name);
    } catch (err) {
      const claimText = `${this.#namespace}/${name}`;
      throw this.#apiFailure(err, `cannot read its resource claim "${claimText}"`, {
        verb: "get",
        resource: "resourceclaims",
        notFound:
          `The pod's status.resourceClaimStatuses names "${name}" but the claim does not exist in namespace "${this.#namespace}"; it may have been deleted with the pod`,
      });
    }
  }

  async slices(driver: string): Promise<ResourceSlice[]> {
    try {
      return await this.#objects.resourceSlices(this.nodeName, driver);
    } catch (err) {
      const selector = sliceSelector(this.nodeName, driver);
      throw this.#apiFailure(err, `cannot list the ResourceSlices (${selector})`, {
        verb: "list",
        resource: "resourceslices",
      });
    }
  }

  /** The allocation results of a claim; a claim without allocation is an error. */
  results(claim: ResourceClaim, name: string): DeviceAllocationResult[] {
    const results = claim.status?.allocation?.devices?.results;
    if (!results || results.length === 0) {
      throw this.fail(
        `${this.#namespace}/${name}`,
        "status.allocation.devices.results",
        "it has no device allocation",
        `A claim is allocated when the pod is scheduled; check "kubectl -n ${this.#namespace} get resourceclaim ${name} -o yaml" (status.allocation) and the DRA driver`,
      );
    }
    return results;
  }

  /** A {@linkcode ConfigError} about claim `claimText`. */
  fail(claimText: string, field: string, what: string, details?: string): ConfigError {
    return new ConfigError(field, `${this.#prefix}: resource claim "${claimText}": ${what}`, {
      details,
    });
  }

  podField(field: string, what: string): ConfigError {
    return new ConfigError(field, `${this.#prefix}: the pod's ${field} ${what}`);
  }

  #apiFailure(
    err: unknown,
    what: string,
    hints: { verb: string; resource: string; notFound?: string },
  ): CodedError {
    let details = err instanceof CodedError ? err.details : undefined;
    if (err instanceof K8sApiError && err.status === 403) {
      details =
        `Grant the plugin's account "${hints.verb}" on "${hints.resource}" of API group "resource.k8s.io": add the ClusterRole rule {apiGroups: ["resource.k8s.io"], resources: ["${hints.resource}"], verbs: ["${hints.verb}"]} (as in deploy/10-rbac.yaml)`;
    } else if (err instanceof K8sApiError && err.notFound && hints.notFound) {
      details = hints.notFound;
    }
    // The client's message already says what was asked ("Cannot get resource claim …").
    const message = err instanceof K8sApiError
      ? errorMessage(err).replace(/^Cannot /, "cannot ")
      : `${what}: ${errorMessage(err)}`;
    return new CodedError(
      err instanceof CodedError ? err.code : ErrorCode.Internal,
      `${this.#prefix}: ${message}`,
      { details, cause: err },
    );
  }
}
