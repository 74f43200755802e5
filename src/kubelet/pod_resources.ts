/**
 * @module
 * A client of the kubelet PodResources API (`v1.PodResourcesLister`, gRPC over the unix
 * socket `/var/lib/kubelet/pod-resources/kubelet.sock`): which devices the kubelet allocated
 * to the containers of a pod. `Get` (one pod; kubelet 1.27+ with the `KubeletPodResourcesGet`
 * gate, on by default from 1.34) is tried first, `List` (every pod on the node) when the
 * kubelet does not serve `Get`.
 *
 * gRPC runs on `node:http2` (h2c with prior knowledge over a `node:net` unix socket); the
 * messages are in {@link ./_pod_resources_messages.ts}. The two `node:` modules are
 * imported when a look-up starts, never at the top: a bundle hoists static `node:` imports to
 * every start of the plugin, and only pods with device networks need them (README,
 * "Start-up cost").
 */

import type { ClientHttp2Session, ClientHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import { CodedError, ErrorCode, errorMessage } from "../util/errors.ts";
import { log as rootLog, type Logger } from "../log/logger.ts";
import {
  decodeGetResponse,
  decodeListResponse,
  encodeGetRequest,
  MessageError,
  type PodResources,
} from "./_pod_resources_messages.ts";

export type {
  ContainerDevices,
  ContainerResources,
  PodResources,
} from "./_pod_resources_messages.ts";

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

/** Options of the PodResources calls. */
export interface PodResourcesOptions {
  /** The kubelet socket (default {@linkcode DEFAULT_POD_RESOURCES_SOCKET}). */
  socket?: string;
  /** Deadline of the whole look-up in ms (default {@linkcode DEFAULT_POD_RESOURCES_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** Where the fallback to `List` is said: the request's logger (default: the root logger). */
  log?: Logger;
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
export class PodResourcesError extends CodedError {
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
    super(options.code ?? ErrorCode.Internal, message, {
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
      (options.log ?? rootLog).debug(`PodResources Get not usable (${err.message}); using List`);
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
  let connection: Socket | undefined;
  let session: ClientHttp2Session | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = (cause?: unknown) =>
    new PodResourcesError(
      socket,
      `The kubelet PodResources API at "${socket}" did not answer ${current} within ${timeoutMs} ms`,
      {
        code: ErrorCode.TryAgainLater,
        details: "Check that the kubelet is running and healthy on this node",
        cause,
      },
    );
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = timedOut();
      session?.destroy();
      connection?.destroy();
      reject(err);
    }, timeoutMs);
  });
  expired.catch(() => {});
  try {
    const [http2, net] = await Promise.race([
      Promise.all([import("node:http2"), import("node:net")]),
      expired,
    ]);
    const conn = net.connect(socket);
    connection = conn; // closed by the deadline, also while connecting
    await Promise.race([connected(conn, socket), expired]);
    session = http2.connect("http://localhost", {
      createConnection: () => conn,
      settings: { enablePush: false },
    });
    // Failures of the connection also fail the call in flight, which reports them.
    session.on("error", () => {});
    const open = session;
    const call = async (method: "Get" | "List", request: Uint8Array): Promise<Uint8Array> => {
      current = method;
      try {
        return await Promise.race([
          unaryCall(open, { socket, method, request, deadline }),
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
      get: async (pod) =>
        decoded(socket, "Get", decodeGetResponse, await call("Get", encodeGetRequest(pod))),
      list: async () =>
        decoded(socket, "List", decodeListResponse, await call("List", new Uint8Array(0))),
    };
    return await work(calls);
  } finally {
    clearTimeout(timer);
    await closeSession(session);
    connection?.destroy();
  }
}

/** Closes the session politely (GOAWAY), giving up after a second. */
async function closeSession(session: ClientHttp2Session | undefined): Promise<void> {
  if (!session || session.closed || session.destroyed) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await new Promise<void>((resolve) => {
    session.close(() => resolve());
    timer = setTimeout(resolve, 1000);
  });
  clearTimeout(timer);
  session.destroy();
}

/** Resolves once `connection` is connected; rejects with {@linkcode PodResourcesError}. */
function connected(connection: Socket, socket: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: Error & { code?: string }) => {
      connection.destroy();
      const missing = err.code === "ENOENT";
      const transient = err.code === "ECONNREFUSED";
      reject(
        new PodResourcesError(
          socket,
          missing
            ? `The kubelet PodResources socket "${socket}" does not exist: ${err.message}`
            : `Cannot connect to the kubelet PodResources socket "${socket}": ${err.message}`,
          {
            socketMissing: missing,
            code: transient ? ErrorCode.TryAgainLater : ErrorCode.Internal,
            details: missing
              ? undefined
              : transient
              ? "The kubelet is not listening on its PodResources socket; it may be restarting"
              : "The plugin runs as root and needs read and write access to the kubelet socket",
            cause: err,
          },
        ),
      );
    };
    connection.once("error", failed);
    connection.once("connect", () => {
      connection.off("error", failed);
      resolve();
    });
  });
}

/** The parts of one HTTP/2 response a gRPC client reads. */
interface GrpcResponse {
  status: number;
  contentType: string;
  /** A field of the trailers, else of the headers (a gRPC error may come without a body). */
  field(name: string): string | undefined;
  body: Uint8Array;
}

/** The response ran over the size limit. */
class TooLargeError extends Error {
  override name = "TooLargeError";
}

/** Sends one request on `session` and collects the response. */
function exchange(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body: Uint8Array,
  maxBodyBytes: number,
): Promise<GrpcResponse> {
  return new Promise((resolve, reject) => {
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers);
    } catch (err) {
      reject(err);
      return;
    }
    let head: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    const chunks: Uint8Array[] = [];
    let size = 0;
    let ended = false;
    let failure: Error | undefined;
    stream.on("response", (h) => head = h);
    stream.on("trailers", (t) => trailers = t);
    stream.on("data", (chunk: Uint8Array) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        failure ??= new TooLargeError(`more than ${maxBodyBytes} bytes`);
        stream.close(0x8); // CANCEL
        return;
      }
      chunks.push(chunk);
    });
    // A connection that drops also ends its streams without an error: only a stream that
    // ends on a live connection has its whole response.
    stream.on("end", () => ended = !session.destroyed);
    stream.on("error", (err: Error) => failure ??= err);
    stream.on("close", () => {
      if (failure) return reject(failure);
      if (!ended || head[":status"] === undefined) {
        return reject(
          new Error(`the connection was closed before the response ended (${stream.rstCode})`),
        );
      }
      const text = (v: unknown) => v === undefined ? undefined : String(v);
      const all = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      resolve({
        status: Number(head[":status"]),
        contentType: text(head["content-type"]) ?? "",
        field: (name) => text(trailers[name]) ?? text(head[name]),
        body: all,
      });
    });
    stream.end(body);
  });
}

/** One unary gRPC call; resolves with the response message bytes. */
async function unaryCall(
  session: ClientHttp2Session,
  call: { socket: string; method: string; request: Uint8Array; deadline: number },
): Promise<Uint8Array> {
  const { socket, method } = call;
  const what = `v1.PodResourcesLister/${method}`;
  const framed = new Uint8Array(5 + call.request.length);
  new DataView(framed.buffer).setUint32(1, call.request.length);
  framed.set(call.request, 5);
  // grpc-timeout allows at most 8 digits.
  const remaining = Math.min(99_999_999, Math.max(1, call.deadline - Date.now()));
  let response: GrpcResponse;
  try {
    response = await exchange(
      session,
      {
        ":method": "POST",
        ":path": `/${what}`,
        "content-type": "application/grpc",
        "te": "trailers",
        "grpc-timeout": `${remaining}m`,
        "grpc-accept-encoding": "identity",
        "user-agent": "multus-deno/podresources",
      },
      framed,
      MAX_MESSAGE_BYTES + 5,
    );
  } catch (err) {
    throw new PodResourcesError(
      socket,
      err instanceof TooLargeError
        ? `The kubelet PodResources API answered ${what} with more than ${MAX_MESSAGE_BYTES} bytes`
        : `Cannot call the kubelet PodResources API ${what} at "${socket}": ${errorMessage(err)}`,
      { code: ErrorCode.TryAgainLater, cause: err },
    );
  }
  if (response.status !== 200) {
    throw new PodResourcesError(
      socket,
      `The kubelet PodResources API answered ${what} with HTTP status ${response.status}`,
    );
  }
  if (!response.contentType.startsWith("application/grpc")) {
    throw new PodResourcesError(
      socket,
      `The kubelet PodResources API answered ${what} with content type "${response.contentType}", not gRPC`,
    );
  }
  const statusText = response.field("grpc-status");
  if (statusText === undefined || !/^\d+$/.test(statusText)) {
    throw new PodResourcesError(
      socket,
      `The kubelet PodResources API answered ${what} without a valid grpc-status`,
    );
  }
  const status = Number(statusText);
  if (status !== GrpcStatus.Ok) {
    const message = percentDecode(response.field("grpc-message") ?? "");
    const transient = status === GrpcStatus.Unavailable ||
      status === GrpcStatus.DeadlineExceeded || status === GrpcStatus.ResourceExhausted;
    throw new PodResourcesError(
      socket,
      `The kubelet PodResources API answered ${what} with gRPC status ${grpcStatusName(status)}${
        message ? `: ${message}` : ""
      }`,
      {
        grpcStatus: status,
        code: transient ? ErrorCode.TryAgainLater : ErrorCode.Internal,
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

/** The decoded message; a malformed one is the kubelet's error. */
function decoded<T>(
  socket: string,
  method: string,
  decode: (bytes: Uint8Array) => T,
  bytes: Uint8Array,
): T {
  try {
    return decode(bytes);
  } catch (err) {
    if (!(err instanceof MessageError)) throw err;
    throw new PodResourcesError(
      socket,
      `The kubelet PodResources API answered v1.PodResourcesLister/${method} with a malformed message: ${err.message}`,
      { cause: err },
    );
  }
}
