/**
 * @module
 * Dynamic Resource Allocation objects given to `multus validate` (ResourceClaim,
 * ResourceClaimTemplate, ResourceSlice, DeviceClass of `resource.k8s.io`): recognised, their
 * key fields checked, and what the plugin reads from them checked closely — a ResourceSlice
 * device's `k8s.cni.cncf.io/deviceID` and `k8s.cni.cncf.io/resourceName` attributes, which
 * must both be string values for the device to reach a network.
 */

import { closestKey } from "./_suggest.ts";
import { type Report, type Where, within } from "./_findings.ts";
import { isObject } from "../util/errors.ts";
import { DEVICE_ID_ATTRIBUTE, RESOURCE_NAME_ATTRIBUTE } from "../multus/kube/dra_devices.ts";

/** The DRA kinds `multus validate` knows. */
export const DRA_KINDS: ReadonlySet<string> = new Set([
  "ResourceClaim",
  "ResourceClaimTemplate",
  "ResourceSlice",
  "DeviceClass",
]);

/** A DRA object given on the command line. */
export interface DraInput {
  kind: "dra";
  where: Where;
  object: Record<string, unknown>;
}

const GROUP = "resource.k8s.io";
/** Versions whose shapes are checked: v1 and v1beta2 share one, v1beta1 has the older one. */
const VERSIONS = new Set(["v1", "v1beta2", "v1beta1"]);
const NETWORK_ATTRIBUTES = [DEVICE_ID_ATTRIBUTE, RESOURCE_NAME_ATTRIBUTE];
const ATTRIBUTE_TYPES = ["string", "int", "bool", "version"];

/** Checks one DRA object. */
export function checkDraObject(report: Report, input: DraInput): void {
  const { object, where } = input;
  const kind = object.kind as string;
  const apiVersion = typeof object.apiVersion === "string" ? object.apiVersion : "";
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/", 2) : ["", apiVersion];
  if (group !== GROUP || !VERSIONS.has(version)) {
    report.error(
      within(where, "apiVersion"),
      `${kind} has apiVersion ${
        JSON.stringify(apiVersion)
      }, not one of ${GROUP}/v1, v1beta2, v1beta1`,
      { hint: `Use apiVersion: ${GROUP}/v1 (Kubernetes 1.34 and later)` },
    );
    return;
  }
  const v1Shape = version !== "v1beta1";
  const spec = object.spec;
  if (!isObject(spec)) {
    report.error(within(where, "spec"), `${kind} has no spec`, {
      hint: `See the ${kind} reference of ${GROUP}/${version}`,
    });
    return;
  }
  const ctx = { report, v1Shape, version };
  if (kind === "ResourceClaim") checkRequests(ctx, spec, within(where, "spec"));
  else if (kind === "ResourceClaimTemplate") {
    const inner = spec.spec;
    if (!isObject(inner)) {
      report.error(within(where, "spec.spec"), "ResourceClaimTemplate has no spec.spec", {
        hint: "spec.spec is the spec of the claims made from the template (devices.requests)",
      });
      return;
    }
    checkRequests(ctx, inner, within(where, "spec.spec"));
  } else if (kind === "ResourceSlice") checkSlice(ctx, spec, within(where, "spec"));
  else checkDeviceClass(report, spec, within(where, "spec"));
}

interface CheckContext {
  report: Report;
  v1Shape: boolean;
  version: string;
}

/** `devices.requests` of a claim spec. */
function checkRequests(ctx: CheckContext, spec: Record<string, unknown>, where: Where): void {
  const { report } = ctx;
  const devices = spec.devices;
  const requests = isObject(devices) ? devices.requests : undefined;
  const at = within(where, "devices.requests");
  if (!Array.isArray(requests) || requests.length === 0) {
    report.error(at, "has no device requests: the claim allocates nothing", {
      hint: "List the devices under devices.requests (name and exactly.deviceClassName)",
    });
    return;
  }
  const names = new Set<string>();
  requests.forEach((request, i) => {
    const here = within(at, `[${i}]`);
    if (!isObject(request)) {
      report.error(here, "is not an object", {
        hint: "A request has a name and the devices it asks for",
      });
      return;
    }
    const name = request.name;
    if (typeof name !== "string" || !DNS_LABEL.test(name)) {
      report.error(within(here, "name"), "is not a DNS label", {
        hint:
          "Name each request (lower-case letters, digits and '-'); allocation results refer to it",
      });
    } else if (names.has(name)) {
      report.error(within(here, "name"), `request "${name}" is named twice`, {
        hint: "Give every request of the claim its own name",
      });
    } else names.add(name);
    if (ctx.v1Shape) checkV1Request(ctx, request, here);
    else if (
      typeof request.deviceClassName !== "string" && !Array.isArray(request.firstAvailable)
    ) {
      report.error(here, "has neither deviceClassName nor firstAvailable", {
        hint: `In ${GROUP}/v1beta1 a request names its DeviceClass in deviceClassName`,
      });
    }
  });
}

function checkV1Request(ctx: CheckContext, request: Record<string, unknown>, where: Where): void {
  const { report } = ctx;
  const exactly = request.exactly;
  const firstAvailable = request.firstAvailable;
  if ("deviceClassName" in request && exactly === undefined) {
    report.error(
      within(where, "deviceClassName"),
      `is the ${GROUP}/v1beta1 place of the DeviceClass; ${GROUP}/${ctx.version} reads exactly.deviceClassName`,
      { hint: "Move deviceClassName (and selectors, count, allocationMode) under exactly:" },
    );
    return;
  }
  if ((exactly === undefined) === (firstAvailable === undefined)) {
    report.error(where, "needs exactly one of exactly and firstAvailable", {
      hint: "exactly: {deviceClassName: <class>} asks for devices of one DeviceClass",
    });
    return;
  }
  if (exactly !== undefined) {
    checkDeviceRequest(report, exactly, within(where, "exactly"));
    return;
  }
  if (!Array.isArray(firstAvailable) || firstAvailable.length === 0) {
    report.error(within(where, "firstAvailable"), "is not a list of subrequests", {
      hint: "Each subrequest has a name and a deviceClassName",
    });
    return;
  }
  firstAvailable.forEach((sub, i) =>
    checkDeviceRequest(report, sub, within(where, `firstAvailable[${i}]`), true)
  );
}

function checkDeviceRequest(report: Report, value: unknown, where: Where, named = false): void {
  if (!isObject(value)) {
    report.error(where, "is not an object", { hint: "It names a deviceClassName" });
    return;
  }
  if (named && (typeof value.name !== "string" || !DNS_LABEL.test(value.name))) {
    report.error(within(where, "name"), "is not a DNS label", {
      hint: "Name each subrequest; allocation results refer to <request>/<subrequest>",
    });
  }
  if (typeof value.deviceClassName !== "string" || value.deviceClassName === "") {
    report.error(within(where, "deviceClassName"), "is missing", {
      hint: "Name the DeviceClass (kubectl get deviceclasses) the devices come from",
    });
  }
  const mode = value.allocationMode ?? "ExactCount";
  if (mode !== "ExactCount" && mode !== "All") {
    report.error(within(where, "allocationMode"), `is ${JSON.stringify(mode)}`, {
      hint: "allocationMode is ExactCount (count devices) or All",
    });
  }
  const count = value.count;
  if (count !== undefined && (!Number.isInteger(count) || (count as number) < 1)) {
    report.error(within(where, "count"), "is not a whole number of at least 1", {
      hint: "One device per network of the pod that uses this resource",
    });
  }
}

/** A ResourceSlice: pool, node, devices and the attributes the plugin reads. */
function checkSlice(ctx: CheckContext, spec: Record<string, unknown>, where: Where): void {
  const { report } = ctx;
  if (typeof spec.driver !== "string" || spec.driver === "") {
    report.error(within(where, "driver"), "is missing", {
      hint: "The DRA driver's name; the plugin lists slices by spec.driver",
    });
  }
  const pool = spec.pool;
  if (!isObject(pool) || typeof pool.name !== "string" || pool.name === "") {
    report.error(within(where, "pool.name"), "is missing", {
      hint:
        "Allocation results name the device's pool; the plugin looks devices up by pool and name",
    });
  } else if (!Number.isInteger(pool.generation) || (pool.generation as number) < 0) {
    report.error(within(where, "pool.generation"), "is not a whole number", {
      hint: "The plugin uses only the slices of a pool's newest generation",
    });
  }
  const placements = ["nodeName", "nodeSelector", "allNodes", "perDeviceNodeSelection"]
    .filter((k) => spec[k] !== undefined && spec[k] !== null && spec[k] !== false);
  if (placements.length !== 1) {
    report.error(
      where,
      `names ${placements.length === 0 ? "no" : placements.join(" and ")} node placement`,
      {
        hint: "Set exactly one of nodeName, nodeSelector, allNodes and perDeviceNodeSelection",
      },
    );
  }
  const devices = spec.devices ?? [];
  if (!Array.isArray(devices)) {
    report.error(within(where, "devices"), "is not a list", { hint: "List the pool's devices" });
    return;
  }
  const names = new Set<string>();
  let networkDevices = 0;
  devices.forEach((device, i) => {
    const here = within(where, `devices[${i}]`);
    if (!isObject(device)) {
      report.error(here, "is not an object", { hint: "A device has a name and attributes" });
      return;
    }
    if (typeof device.name !== "string" || device.name === "") {
      report.error(within(here, "name"), "is missing", {
        hint: "Allocation results name the device; the plugin looks it up by name",
      });
    } else if (names.has(device.name)) {
      report.error(within(here, "name"), `device "${device.name}" is listed twice`, {
        hint: "Device names are unique in a pool",
      });
    } else names.add(device.name);
    const base = ctx.v1Shape ? device : device.basic;
    const path = ctx.v1Shape ? "attributes" : "basic.attributes";
    if (!ctx.v1Shape && isObject(device.attributes)) {
      report.error(within(here, "attributes"), `is not read in ${GROUP}/v1beta1`, {
        hint:
          "In v1beta1 attributes are under basic.attributes; or use apiVersion resource.k8s.io/v1",
      });
    }
    const attributes = isObject(base) ? base.attributes : undefined;
    if (attributes === undefined || attributes === null) return;
    if (!isObject(attributes)) {
      report.error(within(here, path), "is not a map", {
        hint: "Attribute name → {string|int|bool|version: value}",
      });
      return;
    }
    if (checkAttributes(report, attributes, within(here, path))) networkDevices++;
  });
  if (networkDevices > 0 && typeof spec.nodeName !== "string") {
    report.warning(
      where,
      `publishes ${networkDevices} network device${
        networkDevices === 1 ? "" : "s"
      } but has no nodeName: the plugin lists a node's slices by spec.nodeName and never sees them`,
      { hint: "Publish network devices in per-node slices (spec.nodeName)" },
    );
  }
}

/** Checks attribute values; true when the device is published for networks. */
function checkAttributes(
  report: Report,
  attributes: Record<string, unknown>,
  where: Where,
): boolean {
  for (const [name, value] of Object.entries(attributes)) {
    const at = within(where, `[${JSON.stringify(name)}]`);
    const types = isObject(value) ? ATTRIBUTE_TYPES.filter((t) => value[t] !== undefined) : [];
    if (!isObject(value) || types.length !== 1) {
      report.error(at, "is not a typed attribute value", {
        hint: `An attribute value is an object with exactly one of ${
          ATTRIBUTE_TYPES.join(", ")
        }: {string: "0000:03:00.2"}`,
      });
      continue;
    }
    if (NETWORK_ATTRIBUTES.includes(name) && typeof value.string !== "string") {
      report.error(
        at,
        `is ${types[0]} but the plugin reads only a string value: the device is skipped`,
        {
          hint: `Publish it as {string: "…"}`,
        },
      );
      continue;
    }
    if (!NETWORK_ATTRIBUTES.includes(name)) {
      const wrongDomain = NETWORK_ATTRIBUTES.find((a) =>
        name.toLowerCase() === a.replace("k8s.cni.cncf.io/", "k8s.v1.cni.cncf.io/").toLowerCase()
      );
      const meant = wrongDomain ?? closestKey(name, NETWORK_ATTRIBUTES);
      if (meant) {
        report.warning(at, `is not read by the plugin; did you mean "${meant}"?`, {
          hint:
            `The plugin reads the device attributes "${DEVICE_ID_ATTRIBUTE}" and "${RESOURCE_NAME_ATTRIBUTE}"`,
        });
      }
    }
  }
  const has = (name: string) =>
    isObject(attributes[name]) && typeof attributes[name].string === "string";
  const [id, resource] = [has(DEVICE_ID_ATTRIBUTE), has(RESOURCE_NAME_ATTRIBUTE)];
  if (id !== resource) {
    const missing = id ? RESOURCE_NAME_ATTRIBUTE : DEVICE_ID_ATTRIBUTE;
    report.warning(where, `has no "${missing}": the plugin skips this device for networks`, {
      hint:
        `A network device needs both "${DEVICE_ID_ATTRIBUTE}" and "${RESOURCE_NAME_ATTRIBUTE}" (the NAD's k8s.v1.cni.cncf.io/resourceName)`,
    });
  }
  return id && resource;
}

/** A DeviceClass: selectors with CEL expressions, an optional extended resource name. */
function checkDeviceClass(report: Report, spec: Record<string, unknown>, where: Where): void {
  const selectors = spec.selectors ?? [];
  if (!Array.isArray(selectors)) {
    report.error(within(where, "selectors"), "is not a list", {
      hint: "selectors: [{cel: {expression: 'device.driver == \"…\"'}}]",
    });
  } else {
    selectors.forEach((s, i) => {
      const cel = isObject(s) ? s.cel : undefined;
      if (!isObject(cel) || typeof cel.expression !== "string" || cel.expression.trim() === "") {
        report.error(within(where, `selectors[${i}].cel.expression`), "is missing", {
          hint: 'A selector is a CEL expression on the device: device.driver == "…"',
        });
      }
    });
  }
  const ext = spec.extendedResourceName;
  if (ext !== undefined && ext !== null && (typeof ext !== "string" || !ext.includes("/"))) {
    report.error(within(where, "extendedResourceName"), "is not a qualified resource name", {
      hint:
        "e.g. example.com/sriov_vf: the name pods request and NADs name in k8s.v1.cni.cncf.io/resourceName",
    });
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
