/**
 * @module
 * The few Kubernetes object shapes the plugin reads and writes: pods, NetworkAttachmentDefinitions,
 * events and the API `Status` answer. Only the fields we use are typed; the rest is kept as is.
 * Answers are checked against what was asked before anything reads them
 * ({@linkcode answerMismatch}): a proxy, a wrong `server` or a broken API server must give a
 * clear error, not a crash deep inside the plugin.
 * Also the list and watch-event envelopes, the resources a cache lists and watches, and the
 * trims that keep a cached object to the fields the plugin reads.
 */

import * as z from "zod/mini";
import { valueAt } from "../util/json_path.ts";

/** `metav1.ObjectMeta`, the fields we use. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  [key: string]: unknown;
}

/** A `v1` Pod. `spec` and `status` are passed through untouched. */
export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** A `k8s.cni.cncf.io/v1` NetworkAttachmentDefinition. */
export interface NetworkAttachmentDefinition {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: {
    /** The CNI configuration, as a JSON string; absent means "look on disk". */
    config?: string;
  };
}

/** One device allocated to a claim (`DeviceRequestAllocationResult`), the fields we read. */
export interface DeviceAllocationResult {
  /** The claim's request (`spec.devices.requests[].name`, `<request>/<subrequest>`). */
  request: string;
  driver: string;
  pool: string;
  /** The device's name in its pool's ResourceSlices. */
  device: string;
}

/** A `resource.k8s.io/v1` ResourceClaim, the fields we read (checked by {@linkcode answerMismatch}). */
export interface ResourceClaim {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  status?: {
    allocation?: { devices?: { results?: DeviceAllocationResult[] | null } | null } | null;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** A typed value of a DRA device attribute: exactly one member is set. */
export interface DeviceAttribute {
  string?: string;
  int?: number;
  bool?: boolean;
  version?: string;
}

/** A device of a ResourceSlice (`resource.k8s.io/v1` `Device`), the fields we read. */
export interface SliceDevice {
  name: string;
  /** Qualified attribute name → value (`k8s.cni.cncf.io/deviceID` → `{string: "0000:03:00.2"}`). */
  attributes?: Record<string, DeviceAttribute>;
}

/** A `resource.k8s.io/v1` ResourceSlice (cluster-scoped), the fields we read. */
export interface ResourceSlice {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: {
    driver: string;
    nodeName?: string;
    pool: { name: string; generation: number; resourceSliceCount?: number };
    devices?: SliceDevice[];
    [key: string]: unknown;
  };
}

/** A reference to the object an event is about (`v1.ObjectReference`). */
export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

/** A core `v1` Event, the fields we send. */
export interface KubeEvent {
  apiVersion: "v1";
  kind: "Event";
  metadata: ObjectMeta;
  involvedObject: ObjectReference;
  reason: string;
  message: string;
  type: "Normal" | "Warning";
  source: { component: string; host?: string };
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
  reportingComponent: string;
  reportingInstance?: string;
}

/** The API server's `Status` answer (`metav1.Status`), e.g. for a 404 or a 409. */
export interface KubeStatus {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, unknown>;
  status: "Success" | "Failure";
  message?: string;
  /** Machine-readable reason: `NotFound`, `Forbidden`, `Conflict`, `Unauthorized`, … */
  reason?: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: { reason?: string; message?: string; field?: string }[];
    retryAfterSeconds?: number;
  };
  code: number;
}

/** True when `value` looks like a `Status` object. */
export function isKubeStatus(value: unknown): value is KubeStatus {
  return typeof value === "object" && value !== null &&
    (value as { kind?: unknown }).kind === "Status" &&
    typeof (value as { code?: unknown }).code === "number";
}

/** The objects the plugin reads, by kind, with the `apiVersion` they must carry. */
const API_VERSIONS = {
  Pod: "v1",
  NetworkAttachmentDefinition: "k8s.cni.cncf.io/v1",
  ResourceClaim: "resource.k8s.io/v1",
} as const;

/** A kind the plugin reads from the API server. */
export type ReadKind = keyof typeof API_VERSIONS;

/** What was asked of the API server: one object by kind, namespace and name. */
export interface ExpectedObject {
  kind: ReadKind;
  namespace: string;
  name: string;
}

const schemas: Partial<Record<ReadKind, z.ZodMiniType>> = {};

/**
 * The schema of a kind, built on first use (runs that read no object skip the cost). Only
 * checked, never used to rebuild the answer: unknown keys (the pod's spec, …) stay as they are.
 */
function schemaOf(kind: ReadKind): z.ZodMiniType {
  // Go's decoder takes null as "absent" for any field: so do we (and drop it, see dropNulls).
  const stringMap = () => z.nullish(z.record(z.string(), z.string()));
  const metadata = () =>
    z.object({
      name: z.string(),
      namespace: z.string(),
      uid: z.nullish(z.string()),
      resourceVersion: z.nullish(z.string()),
      annotations: stringMap(),
      labels: stringMap(),
    });
  // Plain objects: zod drops unknown keys from its copy (unused), cheaper than keeping them.
  if (kind === "Pod") {
    schemas[kind] ??= z.object({
      metadata: metadata(),
      spec: z.nullish(z.object({})),
      status: z.nullish(z.object({})),
    });
  } else if (kind === "ResourceClaim") {
    const result = z.object({
      request: z.string(),
      driver: z.string(),
      pool: z.string(),
      device: z.string(),
    });
    const devices = z.object({ results: z.nullish(z.array(result)) });
    const allocation = z.object({ devices: z.nullish(devices) });
    schemas[kind] ??= z.object({
      metadata: metadata(),
      status: z.nullish(z.object({ allocation: z.nullish(allocation) })),
    });
  } else {
    schemas[kind] ??= z.object({
      metadata: metadata(),
      spec: z.nullish(z.object({ config: z.nullish(z.string()) })),
    });
  }
  return schemas[kind];
}

/** How messages name a kind: `pod`, `network-attachment-definition`. */
const KIND_WORDS: Record<ReadKind, string> = {
  Pod: "pod",
  NetworkAttachmentDefinition: "network-attachment-definition",
  ResourceClaim: "resource claim",
};

/**
 * Why an API answer is not the object that was asked for, in words to follow "the API server
 * answered with" (what came back and, for a field of the wrong type, which field); undefined
 * when it is that object. The fields the plugin reads must have their types
 * (`metadata.annotations` values are strings, `spec.config` is a string, …); nulls are taken
 * as absent and removed from `value`.
 *
 * @example
 * ```ts
 * import { answerMismatch } from "./types.ts";
 * const list = { kind: "PodList", apiVersion: "v1", items: [] };
 * answerMismatch(list, { kind: "Pod", namespace: "default", name: "web" });
 * // → 'a PodList (apiVersion "v1"), not a pod'
 * ```
 */
export function answerMismatch(value: unknown, expected: ExpectedObject): string | undefined {
  const word = KIND_WORDS[expected.kind];
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return `${describeJson(value)}, not a ${word}`;
  }
  const obj = value as Record<string, unknown>;
  const meta = isRecord(obj.metadata) ? obj.metadata : {};
  const { kind, apiVersion } = obj;
  if (kind !== expected.kind || apiVersion !== API_VERSIONS[expected.kind]) {
    const hasKind = typeof kind === "string" && kind !== "";
    const what = hasKind ? `${/^[AEIOU]/.test(kind) ? "an" : "a"} ${clip(kind)}` : "an object";
    const named = typeof meta.name === "string" ? ` ${objectName(meta)}` : "";
    const version = typeof apiVersion === "string"
      ? ` (apiVersion ${JSON.stringify(clip(apiVersion))})`
      : ' (no "apiVersion")';
    return `${what}${named}${hasKind ? "" : ' without "kind"'}${version}, not a ${word}`;
  }
  if (meta.name !== expected.name || meta.namespace !== expected.namespace) {
    if (typeof meta.name !== "string" || typeof meta.namespace !== "string") {
      return `a ${word} without metadata.name or metadata.namespace`;
    }
    return `${word} ${objectName(meta)}, not "${expected.namespace}/${expected.name}"`;
  }
  const checked = schemaOf(expected.kind).safeParse(value);
  if (!checked.success) {
    const problems = checked.error.issues.slice(0, 3).map((issue) =>
      `${fieldPath(issue.path)} is ${describeJson(valueAt(value, issue.path))}` +
      (issue.code === "invalid_type" ? ` instead of ${article(issue.expected)}` : "")
    );
    const more = checked.error.issues.length > 3 ? ", …" : "";
    return `${word} "${expected.namespace}/${expected.name}" whose ${problems.join(", ")}${more}`;
  }
  dropNulls(obj, ["spec", "status"]);
  dropNulls(meta, ["uid", "resourceVersion", "annotations", "labels"]);
  if (isRecord(obj.spec)) dropNulls(obj.spec, ["config"]);
  return undefined;
}

function dropNulls(obj: Record<string, unknown>, keys: string[]): void {
  for (const key of keys) if (obj[key] === null) delete obj[key];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `"ns/name"` of an answer's metadata, as far as it has them. */
function objectName(meta: Record<string, unknown>): string {
  const ns = typeof meta.namespace === "string" ? `${clip(meta.namespace)}/` : "";
  const name = typeof meta.name === "string" ? clip(meta.name) : "";
  return JSON.stringify(`${ns}${name}`);
}

/** `metadata.annotations["k8s.v1.cni.cncf.io/networks"]`. */
function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    const key = String(part);
    if (typeof part === "number") {
      out += `[${part}]`;
      continue;
    }
    out += /^[A-Za-z_][\w]*$/.test(key)
      ? `${out ? "." : ""}${key}`
      : `[${JSON.stringify(clip(key))}]`;
  }
  return out || "the object";
}

/** What a JSON value is, without quoting it: `a number`, `an object`, `null`. */
function describeJson(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return article(typeof value);
}

function article(expected: string): string {
  if (expected === "array") return "a list";
  if (expected === "object" || expected === "record") return "an object";
  return `${/^[aeiou]/.test(expected) ? "an" : "a"} ${expected}`;
}

/** Text from an answer, cut short: a hostile server must not fill our messages. */
function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

/** Any Kubernetes object: type meta, object meta, spec and status untyped. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
}

/** A list answer (`PodList`, …): `metadata.resourceVersion` is the version it was read at. */
export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string; [key: string]: unknown };
  items: T[];
}

/** Types of a watch event. */
export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/**
 * One line of a watch stream. For `BOOKMARK` only `object.metadata.resourceVersion` is
 * meaningful; for `ERROR` the object is a {@linkcode KubeStatus}.
 */
export type WatchEvent<T> =
  | { type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK"; object: T }
  | { type: "ERROR"; object: KubeStatus };

/** Where a resource lives in the API: what a list or a watch needs to build its path. */
export interface ApiResource {
  /** API group; empty for the core group. */
  group: string;
  version: string;
  /** The plural name in paths: `pods`. */
  plural: string;
  /** Singular, for messages: `pod`. */
  singular: string;
}

/** Core v1 pods. */
export const POD_RESOURCE: ApiResource = {
  group: "",
  version: "v1",
  plural: "pods",
  singular: "pod",
};

/** `k8s.cni.cncf.io/v1` NetworkAttachmentDefinitions. */
export const NAD_RESOURCE: ApiResource = {
  group: "k8s.cni.cncf.io",
  version: "v1",
  plural: "network-attachment-definitions",
  singular: "network-attachment-definition",
};

/** `resource.k8s.io/v1` ResourceSlices (cluster-scoped; listed per node and driver). */
export const RESOURCE_SLICE_RESOURCE: ApiResource = {
  group: "resource.k8s.io",
  version: "v1",
  plural: "resourceslices",
  singular: "resource slice",
};

/**
 * Why a list answer is not a `resource.k8s.io/v1` ResourceSliceList whose slices have the
 * fields the plugin reads (`spec.driver`, `spec.pool.name`, `spec.pool.generation`,
 * `spec.devices[].name`, attribute values as objects), in words to follow "the API server
 * answered with"; undefined when it is one.
 */
export function resourceSliceListMismatch(list: KubeList<unknown>): string | undefined {
  const { kind, apiVersion } = list;
  if (kind !== "ResourceSliceList" || apiVersion !== "resource.k8s.io/v1") {
    const what = typeof kind === "string" && kind !== ""
      ? `a ${clip(kind)}`
      : "a list without kind";
    const version = typeof apiVersion === "string"
      ? ` (apiVersion ${JSON.stringify(clip(apiVersion))})`
      : ' (no "apiVersion")';
    return `${what}${version}, not a ResourceSliceList of resource.k8s.io/v1`;
  }
  for (const [i, item] of list.items.entries()) {
    const problem = sliceProblem(item);
    if (problem) return `a ResourceSliceList whose items[${i}]${problem}`;
  }
  return undefined;
}

function sliceProblem(item: unknown): string | undefined {
  if (!isRecord(item)) return ` is ${describeJson(item)}`;
  const spec = item.spec;
  if (!isRecord(spec)) return `.spec is ${describeJson(spec)}`;
  if (typeof spec.driver !== "string") return `.spec.driver is ${describeJson(spec.driver)}`;
  const pool = spec.pool;
  if (!isRecord(pool) || typeof pool.name !== "string") return ".spec.pool.name is not a string";
  if (typeof pool.generation !== "number") return ".spec.pool.generation is not a number";
  if (spec.devices === undefined || spec.devices === null) return undefined;
  if (!Array.isArray(spec.devices)) return `.spec.devices is ${describeJson(spec.devices)}`;
  for (const [j, device] of spec.devices.entries()) {
    const at = `.spec.devices[${j}]`;
    if (!isRecord(device) || typeof device.name !== "string") return `${at}.name is not a string`;
    const attributes = device.attributes;
    if (attributes === undefined || attributes === null) continue;
    if (!isRecord(attributes)) return `${at}.attributes is ${describeJson(attributes)}`;
    for (const [name, value] of Object.entries(attributes)) {
      if (!isRecord(value)) {
        return `${at}.attributes[${JSON.stringify(clip(name))}] is ${describeJson(value)}`;
      }
    }
  }
  return undefined;
}

/**
 * A pod cut down to what the plugin reads: name, namespace, uid, resourceVersion and
 * annotations, `spec.nodeName`, and the DRA claim statuses (`status.resourceClaimStatuses`,
 * `status.extendedResourceClaimStatus`). Fields absent from `pod` stay absent.
 */
export function trimPod(pod: Pod): Pod {
  const out: Pod = { metadata: trimMeta(pod.metadata) };
  const nodeName = pod.spec?.nodeName;
  if (nodeName !== undefined) out.spec = { nodeName };
  const status: Record<string, unknown> = {};
  for (const key of ["resourceClaimStatuses", "extendedResourceClaimStatus"]) {
    if (pod.status?.[key] !== undefined) status[key] = pod.status[key];
  }
  if (Object.keys(status).length > 0) out.status = status;
  return out;
}

/** A NetworkAttachmentDefinition cut down to its metadata (as {@linkcode trimPod}) and `spec.config`. */
export function trimNad(nad: NetworkAttachmentDefinition): NetworkAttachmentDefinition {
  const out: NetworkAttachmentDefinition = { metadata: trimMeta(nad.metadata) };
  if (nad.spec !== undefined) {
    out.spec = nad.spec.config === undefined ? {} : { config: nad.spec.config };
  }
  return out;
}

function trimMeta(meta: ObjectMeta): ObjectMeta {
  const out: ObjectMeta = { name: meta.name };
  if (meta.namespace !== undefined) out.namespace = meta.namespace;
  if (meta.uid !== undefined) out.uid = meta.uid;
  if (meta.resourceVersion !== undefined) out.resourceVersion = meta.resourceVersion;
  if (meta.annotations !== undefined) out.annotations = meta.annotations;
  return out;
}
