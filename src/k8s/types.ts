/**
 * @module
 * The few Kubernetes object shapes the plugin reads and writes: pods, NetworkAttachmentDefinitions,
 * events and the API `Status` answer. Only the fields we use are typed; the rest is kept as is.
 * Also the list and watch-event envelopes, the resources a cache lists and watches, and the
 * trims that keep a cached object to the fields the plugin reads.
 */

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
