/**
 * @module
 * A client of the kubelet PodResources API (`v1.PodResourcesLister`, gRPC over the unix
 * socket `/var/lib/kubelet/pod-resources/kubelet.sock`): which devices the kubelet allocated
 * to the containers of a pod. `Get` (one pod; kubelet 1.27+ with the `KubeletPodResourcesGet`
 * gate, on by default from 1.34) is tried first, `List` (every pod on the node) when the
 * kubelet does not serve `Get`.
 *
 * The gRPC transport is our own ({@link ./_http2.ts}, {@link ./_hpack.ts},
 * {@link ./_protobuf.ts}) on `Deno.connect({ transport: "unix" })`: `node:http2` works in Deno
 * with a unix socket but costs tens of milliseconds of start-up (see README-nfv.md).
 */

import { CniError, CniErrorCode } from "../cni/errors.ts";
import { log } from "../log/logger.ts";
import { type ByteStream, Http2Client, Http2Error } from "./_http2.ts";
import {
  encodeStringFields,
  fieldInt64,
  fieldMessage,
  fieldString,
  ProtobufError,
  readFields,
} from "./_protobuf.ts";

/** Where the kubelet serves the PodResources API. */
export const DEFAULT_POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock";

/** Default deadline of one look-up (connect and every call), in milliseconds. */
export const DEFAULT_POD_RESOURCES_TIMEOUT_MS = 5000;

/** Largest response accepted (the limit Multus sets on its gRPC client). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** gRPC status codes. */
export const GrpcStatus = {
  Ok: 0,
  Cancelled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

const STATUS_NAMES = Object.fromEntries(
  Object.entries(GrpcStatus).map(([name, code]) => [
    code,
    name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase(),
  ]),
) as Record<number, string>;

/** Devices of one resource allocated to a container (on one NUMA node, when known). */
export interface ContainerDevices {
  /** Extended resource name, e.g. `intel.com/sriov_netdevice`. */
  resourceName: string;
  /** Device IDs in the order the kubelet reports them. */
  deviceIds: string[];
  /** NUMA node IDs of the devices' topology (empty when unknown). */
  numaNodes: number[];
}

/** Devices of one container. */
export interface ContainerResources {
  /** Container name. */
  name: string;
  /** Allocated devices (CPU, memory and dynamic resources are not read). */
  devices: ContainerDevices[];
}

/** Resources of one pod. */
export interface PodResources {
  name: string;
  namespace: string;
  containers: ContainerResources[];
}

/** Options of the PodResources calls. */
export interface PodResourcesOptions {
  /** The kubelet socket (default {@linkcode DEFAULT_POD_RESOURCES_SOCKET}). */
  socket?: string;
  /** Deadline of the whole look-up in ms (default {@linkcode DEFAULT_POD_RESOURCES_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/** The pod a look-up is for. */
export interface PodName {
  namespace: string;
  name: string;
}

/** What {@linkcode fetchPodResources} found, and how. */
export interface PodResourcesLookup {
  /** The pod's resources; undefined when the kubelet does not know the pod. */
  pod: PodResources | undefined;
  /** The method that answered. */
  method: "Get" | "List";
}

/** The PodResources API could not be reached or answered with an error. */
export class PodResourcesError extends CniError {
  override name = "PodResourcesError";
  /** The kubelet socket. */
  readonly socket: string;
  /** The gRPC status code, when the kubelet answered with an error status. */
  readonly grpcStatus?: number;
  /** True when the socket does not exist (no kubelet API to ask on this node). */
  readonly socketMissing: boolean;

  constructor(
    socket: string,
    message: string,
    options: {
      grpcStatus?: number;
      socketMissing?: boolean;
      code?: number;
      details?: string;
      cause?: unknown;
    } = {},
  ) {
    super(options.code ?? CniErrorCode.Internal, message, {
      details: options.details,
      cause: options.cause,
    });
    this.socket = socket;
    this.grpcStatus = options.grpcStatus;
    this.socketMissing = options.socketMissing ?? false;
  }
}

/** Name of a gRPC status code, e.g. `UNIMPLEMENTED (12)`. */
export function grpcStatusName(code: number): string {
  return `${STATUS_NAMES[code] ?? "UNKNOWN_CODE"} (${code})`;
}

/** All pods of the node with their devices (`List`). Throws {@linkcode PodResourcesError}. */
export async function listPodResources(options: PodResourcesOptions = {}): Promise<PodResources[]> {
  return await withConnection(options, (c) => c.list());
}

/**
 * The resources of one pod (`Get`); undefined when the kubelet answers without a pod.
 * Throws {@linkcode PodResourcesError} (status `UNIMPLEMENTED` from kubelets before 1.27;
 * `UNKNOWN` when the kubelet's `KubeletPodResourcesGet` gate is off or the pod is unknown).
 */
export async function getPodResources(
  pod: PodName,
  options: PodResourcesOptions = {},
): Promise<PodResources | undefined> {
  return await withConnection(options, (c) => c.get(pod));
}

/**
 * The resources of one pod: `Get` when the kubelet serves it, else `List` filtered by
 * namespace and name, on one connection within one deadline. Any gRPC error status of `Get`
 * (not served, gate off, pod unknown to `Get`) falls back to `List`; transport errors and the
 * deadline do not. Throws {@linkcode PodResourcesError}.
 */
export async function fetchPodResources(
  pod: PodName,
  options: PodResourcesOptions = {},
): Promise<PodResourcesLookup> {
  return await withConnection(options, async (c) => {
    try {
      return { pod: await c.get(pod), method: "Get" as const };
    } catch (err) {
      if (!(err instanceof PodResourcesError) || err.grpcStatus === undefined) throw err;
      if (err.grpcStatus === GrpcStatus.DeadlineExceeded) throw err;
      log.debug(`PodResources Get not usable (${err.message}); using List`);
    }
    const pods = await c.list();
    const found = pods.find((p) => p.namespace === pod.namespace && p.name === pod.name);
    return { pod: found, method: "List" as const };
  });
}

interface Calls {
  get(pod: PodName): Promise<PodResources | undefined>;
  list(): Promise<PodResources[]>;
}

async function withConnection<T>(
  options: PodResourcesOptions,
  work: (calls: Calls) => Promise<T>,
): Promise<T> {
  const socket = options.socket ?? DEFAULT_POD_RESOURCES_SOCKET;
  const timeoutMs = options.timeoutMs ?? DEFAULT_POD_RESOURCES_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let current = "connect";
  let client: Http2Client | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = (cause?: unknown) =>
    new PodResourcesError(
      socket,
      `The kubelet PodResources API at "${socket}" did not answer ${current} within ${timeoutMs} ms`,
      {
        code: CniErrorCode.TryAgainLater,
        details: "Check that the kubelet is running and healthy on this node",
        cause,
      },
    );
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = timedOut();
      client?.destroy(err);
      reject(err);
    }, timeoutMs);
  });
  expired.catch(() => {});
  try {
    const connecting = connect(socket);
    const conn = await Promise.race([connecting, expired]).catch((err) => {
      connecting.then((c) => c.close(), () => {}); // a late connection is closed at once
      throw err;
    });
    client = Http2Client.start(conn);
    const call = async (method: "Get" | "List", request: Uint8Array): Promise<Uint8Array> => {
      current = method;
      try {
        return await Promise.race([
          unaryCall(client!, { socket, method, request, deadline }),
          expired,
        ]);
      } catch (err) {
        // The kubelet enforces the deadline we send too: whichever side notices first, the
        // user sees the same answer.
        if (err instanceof PodResourcesError && err.grpcStatus === GrpcStatus.DeadlineExceeded) {
          throw timedOut(err);
        }
        throw err;
      }
    };
    const calls: Calls = {
      get: async (pod) => decodeGetResponse(await call("Get", encodeGetRequest(pod)), socket),
      list: async () => decodeListResponse(await call("List", new Uint8Array(0)), socket),
    };
    return await work(calls);
  } finally {
    clearTimeout(timer);
    if (client) await client.close().catch(() => {});
  }
}

async function connect(socket: string): Promise<ByteStream> {
  try {
    return await Deno.connect({ transport: "unix", path: socket });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new PodResourcesError(
        socket,
        `The kubelet PodResources socket "${socket}" does not exist: ${(err as Error).message}`,
        { socketMissing: true, cause: err },
      );
    }
    const transient = err instanceof Deno.errors.ConnectionRefused;
    throw new PodResourcesError(
      socket,
      `Cannot connect to the kubelet PodResources socket "${socket}": ${(err as Error).message}`,
      {
        code: transient ? CniErrorCode.TryAgainLater : CniErrorCode.Internal,
        details: transient
          ? "The kubelet is not listening on its PodResources socket; it may be restarting"
          : "The plugin runs as root and needs read and write access to the kubelet socket",
        cause: err,
      },
    );
  }
}

/** One unary gRPC call; resolves with the response message bytes. */
async function unaryCall(
  client: Http2Client,
  call: { socket: string; method: string; request: Uint8Array; deadline: number },
): Promise<Uint8Array> {
  const { socket, method } = call;
  const what = `v1.PodResourcesLister/${method}`;
  const framed = new Uint8Array(5 + call.request.length);
  new DataView(framed.buffer).setUint32(1, call.request.length);
  framed.set(call.request, 5);
  // grpc-timeout allows at most 8 digits.
  const remaining = Math.min(99_999_999, Math.max(1, call.deadline - Date.now()));
  let response;
  try {
    response = await client.request(
      [
        [":method", "POST"],
        [":scheme", "http"],
        [":path", `/${what}`],
        [":authority", "localhost"],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
        ["grpc-timeout", `${remaining}m`],
        ["grpc-accept-encoding", "identity"],
        ["user-agent", "multus-deno/podresources"],
      ],
      framed,
      { maxBodyBytes: MAX_MESSAGE_BYTES + 5 },
    );
  } catch (err) {
    if (err instanceof PodResourcesError) throw err;
    const tooLarge = err instanceof Http2Error && err.reason === "too-large";
    throw new PodResourcesError(
      socket,
      tooLarge
        ? `The kubelet PodResources API answered ${what} with more than ${MAX_MESSAGE_BYTES} bytes`
        : `Cannot call the kubelet PodResources API ${what} at "${socket}": ${
          (err as Error).message
        }`,
      { code: CniErrorCode.TryAgainLater, cause: err },
    );
  }
  const header = (name: string): string | undefined =>
    response.trailers.find(([k]) => k === name)?.[1] ??
      response.headers.find(([k]) => k === name)?.[1];
  if (response.status !== 200) {
    throw new PodResourcesError(
      socket,
      `The kubelet PodResources API answered ${what} with HTTP status ${response.status}`,
    );
  }
  const contentType = response.headers.find(([k]) => k === "content-type")?.[1] ?? "";
  if (!contentType.startsWith("application/grpc")) {
    throw new PodResourcesError(
      socket,
      `The kubelet PodResources API answered ${what} with content type "${contentType}", not gRPC`,
    );
  }
  const statusText = header("grpc-status");
  if (statusText === undefined || !/^\d+$/.test(statusText)) {
    throw new PodResourcesError(
      socket,
      `The kubelet PodResources API answered ${what} without a valid grpc-status`,
    );
  }
  const status = Number(statusText);
  if (status !== GrpcStatus.Ok) {
    const message = percentDecode(header("grpc-message") ?? "");
    const transient = status === GrpcStatus.Unavailable ||
      status === GrpcStatus.DeadlineExceeded || status === GrpcStatus.ResourceExhausted;
    throw new PodResourcesError(
      socket,
      `The kubelet PodResources API answered ${what} with gRPC status ${grpcStatusName(status)}${
        message ? `: ${message}` : ""
      }`,
      {
        grpcStatus: status,
        code: transient ? CniErrorCode.TryAgainLater : CniErrorCode.Internal,
      },
    );
  }
  return grpcMessage(response.body, { socket, what });
}

/** The single message of a unary response body (5-byte gRPC prefix + message). */
function grpcMessage(body: Uint8Array, where: { socket: string; what: string }): Uint8Array {
  const bad = (reason: string) =>
    new PodResourcesError(
      where.socket,
      `The kubelet PodResources API answered ${where.what} with a malformed message: ${reason}`,
    );
  if (body.length < 5) throw bad("no message");
  if (body[0] !== 0) throw bad("compressed message although none was accepted");
  const length = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(1);
  if (length !== body.length - 5) throw bad("length prefix does not match the body");
  return body.subarray(5);
}

function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function encodeGetRequest(pod: PodName): Uint8Array {
  // GetPodResourcesRequest { string pod_name = 1; string pod_namespace = 2; }
  return encodeStringFields([[1, pod.name], [2, pod.namespace]]);
}

function decodeListResponse(bytes: Uint8Array, socket: string): PodResources[] {
  return decoding(socket, "List", () => {
    // ListPodResourcesResponse { repeated PodResources pod_resources = 1; }
    const pods: PodResources[] = [];
    for (const f of readFields(bytes)) if (f.field === 1) pods.push(decodePod(fieldMessage(f)));
    return pods;
  });
}

function decodeGetResponse(bytes: Uint8Array, socket: string): PodResources | undefined {
  return decoding(socket, "Get", () => {
    // GetPodResourcesResponse { PodResources pod_resources = 1; }
    let pod: PodResources | undefined;
    for (const f of readFields(bytes)) if (f.field === 1) pod = decodePod(fieldMessage(f));
    return pod;
  });
}

function decoding<T>(socket: string, method: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (!(err instanceof ProtobufError)) throw err;
    throw new PodResourcesError(
      socket,
      `The kubelet PodResources API answered v1.PodResourcesLister/${method} with a malformed message: ${err.message}`,
      { cause: err },
    );
  }
}

function decodePod(bytes: Uint8Array): PodResources {
  // PodResources { string name = 1; string namespace = 2; repeated ContainerResources containers = 3; }
  const pod: PodResources = { name: "", namespace: "", containers: [] };
  for (const f of readFields(bytes)) {
    if (f.field === 1) pod.name = fieldString(f);
    else if (f.field === 2) pod.namespace = fieldString(f);
    else if (f.field === 3) pod.containers.push(decodeContainer(fieldMessage(f)));
  }
  return pod;
}

function decodeContainer(bytes: Uint8Array): ContainerResources {
  // ContainerResources { string name = 1; repeated ContainerDevices devices = 2; cpu_ids = 3;
  //   memory = 4; dynamic_resources = 5; }  (3-5 are not needed)
  const container: ContainerResources = { name: "", devices: [] };
  for (const f of readFields(bytes)) {
    if (f.field === 1) container.name = fieldString(f);
    else if (f.field === 2) container.devices.push(decodeDevices(fieldMessage(f)));
  }
  return container;
}

function decodeDevices(bytes: Uint8Array): ContainerDevices {
  // ContainerDevices { string resource_name = 1; repeated string device_ids = 2;
  //   TopologyInfo topology = 3; }
  const devices: ContainerDevices = { resourceName: "", deviceIds: [], numaNodes: [] };
  for (const f of readFields(bytes)) {
    if (f.field === 1) devices.resourceName = fieldString(f);
    else if (f.field === 2) devices.deviceIds.push(fieldString(f));
    else if (f.field === 3) {
      // TopologyInfo { repeated NUMANode nodes = 1; }  NUMANode { int64 ID = 1; }
      for (const t of readFields(fieldMessage(f))) {
        if (t.field !== 1) continue;
        for (const n of readFields(fieldMessage(t))) {
          if (n.field === 1) devices.numaNodes.push(fieldInt64(n));
        }
      }
    }
  }
  return devices;
}
