/**
 * @module
 * The few Kubernetes object shapes the plugin reads and writes: pods, NetworkAttachmentDefinitions,
 * events and the API `Status` answer. Only the fields we use are typed; the rest is kept as is.
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
