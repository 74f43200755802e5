/**
 * @module
 * A small Kubernetes API client: the handful of calls the plugin makes (get a pod, get a
 * NetworkAttachmentDefinition, write the pod's annotations, post an event), with a timeout
 * on every request and bounded retries for failures that pass on their own; and, for a
 * process that keeps caches, a list and a streaming watch.
 *
 * Transport: `fetch` with `Deno.createHttpClient` (CA, client certificate), or `node:https`
 * (loaded only then) when the kubeconfig asks for `insecure-skip-tls-verify` or
 * `tls-server-name`, which `createHttpClient` cannot do.
 */

import { ErrorCode } from "../util/errors.ts";
import { log as rootLog, type Logger } from "../log/logger.ts";
import { startTimer } from "../util/timer.ts";
import { isRetryableStatus, K8sApiError } from "./errors.ts";
import type { KubeCredentials } from "./kubeconfig.ts";
import {
  explainHandshakeFailure,
  explainSetupFailure,
  type TlsProblem,
  type TlsSetting,
} from "./tls_errors.ts";
import {
  answerMismatch,
  type ApiResource,
  type ExpectedObject,
  isKubeStatus,
  type KubeEvent,
  type KubeList,
  type KubeStatus,
  type NetworkAttachmentDefinition,
  type Pod,
  type ResourceClaim,
  type WatchEvent,
} from "./types.ts";

/** Options of a {@linkcode KubeClient}. */
export interface KubeClientOptions {
  /** Longest wait for one HTTP answer, in milliseconds (default 10000). */
  requestTimeoutMs?: number;
  /** Longest time one call may take, retries included, in milliseconds (default 30000). */
  totalTimeoutMs?: number;
  /** Retries after the first attempt for retryable failures (default 4). */
  maxRetries?: number;
  /** `User-Agent` header (default `multus-cni-ts`). */
  userAgent?: string;
  /**
   * Where retries and fallbacks are logged: the request's logger for a client of one request
   * (default: the root logger, for a client shared by requests).
   */
  log?: Logger;
}

/** An event to post about a pod with {@linkcode KubeClient.createEvent}. */
export interface PodEventOptions {
  /** `Normal` or `Warning`. */
  type: "Normal" | "Warning";
  /** Machine-readable reason, e.g. `AddedInterface`, `NoNetworkFound`. */
  reason: string;
  /** Human-readable message. */
  message: string;
  /** The node name, sent as `source.host` and `reportingInstance` when given. */
  host?: string;
}

/** Options of {@linkcode KubeClient.list}. */
export interface ListOptions {
  /** Only this namespace; every namespace when absent. */
  namespace?: string;
  /** A field selector, e.g. `spec.nodeName=node-1`. */
  fieldSelector?: string;
  /** `resourceVersion` of the list (default: none, the latest). */
  resourceVersion?: string;
  /** Stops the call, retries included; it then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options of {@linkcode KubeClient.watch}. */
export interface WatchOptions {
  /** Only this namespace; every namespace when absent. */
  namespace?: string;
  /** A field selector, e.g. `spec.nodeName=node-1`. */
  fieldSelector?: string;
  /**
   * Send the changes after this version (a list's `metadata.resourceVersion`). Without it the
   * server starts with an `ADDED` event for every object.
   */
  resourceVersion?: string;
  /** Ask for `BOOKMARK` events (default true). */
  allowWatchBookmarks?: boolean;
  /** The server ends the watch (cleanly) after this many seconds. */
  timeoutSeconds?: number;
  /**
   * Longest time without a byte from the server once the watch is open, in milliseconds
   * (default 120000: kube-apiserver sends a bookmark every minute to a watch that allows
   * them). The request timeout only bounds the wait for the answer's headers.
   */
  idleTimeoutMs?: number;
  /** Longest event line accepted, in bytes (default 4 MiB). */
  maxEventBytes?: number;
  /** Ends the watch: the iteration then finishes without an error. */
  signal?: AbortSignal;
  /** Called once the server has accepted the watch (its answer's headers are in). */
  onOpen?: () => void;
}

/** Default per-request timeout (ms). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Default budget of one call, retries included (ms). */
export const DEFAULT_TOTAL_TIMEOUT_MS = 30_000;
/** Default number of retries. */
export const DEFAULT_MAX_RETRIES = 4;
/** Default longest silence of an open watch (ms): two of kube-apiserver's bookmark periods. */
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 120_000;
/** Default longest watch event line (bytes): etcd's 1.5 MiB object limit, with room. */
export const DEFAULT_MAX_WATCH_EVENT_BYTES = 4 * 1024 * 1024;
/** How much of an error answer to a watch is read, to quote it. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 2_000;
/** Below this much time left, another attempt is not worth starting. */
const MIN_ATTEMPT_MS = 50;
/** PUT attempts when the fallback update meets 409 Conflict (client-go DefaultRetry). */
const UPDATE_ATTEMPTS = 5;
const UPDATE_CONFLICT_PAUSE_MS = 10;

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  410: "Gone",
  415: "Unsupported Media Type",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** Kubernetes `StatusReason` of each HTTP status, when the body has no `Status`. */
const STATUS_REASON: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  410: "Expired",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** One HTTP request, as the transports see it. */
interface WireRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** One HTTP answer, body read. */
interface WireResponse {
  status: number;
  statusText: string;
  retryAfter: string | null;
  body: string;
}

/** One HTTP answer whose body is read as it arrives. */
interface WireStream {
  status: number;
  statusText: string;
  retryAfter: string | null;
  body: AsyncIterable<Uint8Array>;
}

interface Transport {
  send(request: WireRequest): Promise<WireResponse>;
  /** Sends a request and answers once the headers are in; the body streams. */
  stream(request: WireRequest): Promise<WireStream>;
  close(): void;
}

/** One logical API call. */
interface Call {
  /** Kubernetes verb: get, patch, update, create. */
  verb: string;
  method: string;
  path: string;
  /** What was asked, for messages: `get pod "ns/name"`. */
  action: string;
  body?: unknown;
  contentType?: string;
  /** The object a 2xx answer must be; anything else fails the call. */
  expect?: ExpectedObject;
  /** Stops the call, retries included. */
  signal?: AbortSignal;
}

/** Why one attempt failed. */
interface Failure {
  status: number;
  reason: string;
  /** The end of the message: what the server answered, or what happened instead. */
  what: string;
  retryable: boolean;
  kubeStatus?: KubeStatus;
  retryAfterMs?: number;
  cause?: unknown;
  /** What to do, when the failure itself knows better than its reason. */
  details?: string;
  /** CNI code, when not the one of the reason. */
  code?: number;
}

/** The TLS client could not be set up from our own settings (CA, client certificate, key). */
class TlsSetupError extends Error {
  readonly problem: TlsProblem;

  constructor(problem: TlsProblem, cause: unknown) {
    super(problem.what, { cause });
    this.problem = problem;
  }
}

/**
 * A client for the calls the plugin makes. Create one per plugin run and {@linkcode close}
 * it; the connection is kept between calls.
 *
 * @example
 * ```ts ignore
 * const client = new KubeClient(await loadKubeconfig(path));
 * try {
 *   const pod = await client.getPod("default", "web");
 * } finally {
 *   client.close();
 * }
 * ```
 */
export class KubeClient {
  #credentials: KubeCredentials;
  #requestTimeoutMs: number;
  #totalTimeoutMs: number;
  #maxRetries: number;
  #userAgent: string;
  #log: Logger;
  #transport: Promise<Transport> | undefined;
  #requests = 0;
  #closed = false;

  constructor(credentials: KubeCredentials, options: KubeClientOptions = {}) {
    this.#credentials = credentials;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#totalTimeoutMs = options.totalTimeoutMs ?? DEFAULT_TOTAL_TIMEOUT_MS;
    this.#maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.#userAgent = options.userAgent ?? "multus-cni-ts";
    this.#log = options.log ?? rootLog;
  }

  /** HTTP requests sent so far, retries included. */
  get requestsMade(): number {
    return this.#requests;
  }

  /** The API server URL. */
  get server(): string {
    return this.#credentials.server;
  }

  /**
   * Reads a pod.
   *
   * @throws {K8sApiError} `status` 404 when it does not exist.
   */
  async getPod(namespace: string, name: string): Promise<Pod> {
    return await this.#call<Pod>({
      verb: "get",
      method: "GET",
      path: podPath(namespace, name),
      action: `get pod "${namespace}/${name}"`,
      expect: { kind: "Pod", namespace, name },
    });
  }

  /**
   * Reads a NetworkAttachmentDefinition.
   *
   * @throws {K8sApiError} `status` 404 when it does not exist.
   */
  async getNetworkAttachmentDefinition(
    namespace: string,
    name: string,
  ): Promise<NetworkAttachmentDefinition> {
    return await this.#call<NetworkAttachmentDefinition>({
      verb: "get",
      method: "GET",
      path: `/apis/k8s.cni.cncf.io/v1/namespaces/${enc(namespace)}/network-attachment-definitions/${
        enc(name)
      }`,
      action: `get network-attachment-definition "${namespace}/${name}"`,
      expect: { kind: "NetworkAttachmentDefinition", namespace, name },
    });
  }

  /**
   * Reads a `resource.k8s.io/v1` ResourceClaim.
   *
   * @throws {K8sApiError} `status` 404 when it does not exist.
   */
  async getResourceClaim(namespace: string, name: string): Promise<ResourceClaim> {
    return await this.#call<ResourceClaim>({
      verb: "get",
      method: "GET",
      path: `/apis/resource.k8s.io/v1/namespaces/${enc(namespace)}/resourceclaims/${enc(name)}`,
      action: `get resource claim "${namespace}/${name}"`,
      expect: { kind: "ResourceClaim", namespace, name },
    });
  }

  /**
   * Sets (string) or removes (null) annotations of a pod, in one write: a merge patch of
   * `pods/<name>/status` carrying the pod's UID, so the server refuses (409) if the pod was
   * replaced. Where RBAC forbids `patch` (403), it falls back to an update (PUT) of `pod`,
   * as read earlier, re-reading it only on 409 Conflict (up to 5 attempts).
   *
   * @param pod The pod as read with {@linkcode getPod}, or a trimmed copy (a watch cache's)
   *   when `options.partial` says so: the update then reads the whole pod first, since a
   *   PUT of a trimmed pod would wipe what was cut off.
   * @param annotations Annotations to set, or to remove when null.
   * @returns The pod as the server stored it.
   */
  async setPodAnnotations(
    pod: Pod,
    annotations: Record<string, string | null>,
    options: { partial?: boolean } = {},
  ): Promise<Pod> {
    const { namespace, name } = podIdentity(pod);
    const path = `${podPath(namespace, name)}/status`;
    const metadata: Record<string, unknown> = { annotations };
    if (pod.metadata.uid) metadata.uid = pod.metadata.uid;
    try {
      return await this.#call<Pod>({
        verb: "patch",
        method: "PATCH",
        path,
        action: `patch pod "${namespace}/${name}" status`,
        body: { metadata },
        contentType: "application/merge-patch+json",
        expect: { kind: "Pod", namespace, name },
      });
    } catch (err) {
      if (!(err instanceof K8sApiError) || err.status !== 403) throw err;
      this.#log.verbose(
        `patching pod "${namespace}/${name}" status is forbidden; updating it instead (grant "patch" on pods/status to save a request)`,
      );
    }
    if (!options.partial) return await this.#updateAnnotations(pod, annotations);
    const full = await this.getPod(namespace, name);
    if (pod.metadata.uid && full.metadata.uid && full.metadata.uid !== pod.metadata.uid) {
      throw new K8sApiError(
        `Cannot update pod "${namespace}/${name}" status: the pod was deleted and created again (UID "${pod.metadata.uid}" is now "${full.metadata.uid}")`,
        { status: 409, reason: "Conflict", verb: "update", path },
      );
    }
    return await this.#updateAnnotations(full, annotations);
  }

  /**
   * Posts an event about a pod (`source.component` and `reportingComponent` "multus").
   *
   * @returns The event as stored.
   */
  async createEvent(pod: Pod, event: PodEventOptions): Promise<KubeEvent> {
    const { namespace, name } = podIdentity(pod);
    const now = new Date();
    const stamp = now.toISOString().replace(/\.\d+Z$/, "Z");
    const nanos = BigInt(now.getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1e6));
    const body: KubeEvent = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${name}.${nanos.toString(16)}`, namespace },
      involvedObject: {
        apiVersion: "v1",
        kind: "Pod",
        name,
        namespace,
        ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
        ...(pod.metadata.resourceVersion ? { resourceVersion: pod.metadata.resourceVersion } : {}),
      },
      reason: event.reason,
      message: event.message,
      type: event.type,
      source: { component: "multus", ...(event.host ? { host: event.host } : {}) },
      firstTimestamp: stamp,
      lastTimestamp: stamp,
      count: 1,
      reportingComponent: "multus",
      ...(event.host ? { reportingInstance: event.host } : {}),
    };
    return await this.#call<KubeEvent>({
      verb: "create",
      method: "POST",
      path: `/api/v1/namespaces/${enc(namespace)}/events`,
      action: `create event "${event.reason}" for pod "${namespace}/${name}"`,
      body,
      contentType: "application/json",
    });
  }

  /**
   * Lists a resource, in one namespace or all.
   *
   * @returns The list; `metadata.resourceVersion` is where a watch continues from.
   * @throws {K8sApiError} when the server refuses or cannot be reached (after retries).
   */
  async list<T>(resource: ApiResource, options: ListOptions = {}): Promise<KubeList<T>> {
    const query = new URLSearchParams();
    if (options.fieldSelector) query.set("fieldSelector", options.fieldSelector);
    if (options.resourceVersion) query.set("resourceVersion", options.resourceVersion);
    const path = collectionPath(resource, options.namespace);
    const action = `list ${describeCollection(resource, options)}`;
    const list = await this.#call<KubeList<T>>({
      verb: "list",
      method: "GET",
      path: query.size ? `${path}?${query}` : path,
      action,
      signal: options.signal,
    });
    if (typeof list !== "object" || list === null || !Array.isArray(list.items)) {
      throw new K8sApiError(`Cannot ${action}: the API server's answer is not a list`, {
        status: 200,
        reason: "InvalidResponse",
        verb: "list",
        path,
        code: ErrorCode.Internal,
      });
    }
    return list;
  }

  /**
   * Watches a resource: yields each event as its line arrives, until the server ends the
   * stream (the iteration finishes), `options.signal` aborts (it finishes too), or it fails.
   * One request, no retry: the caller decides how to resume (from the last resourceVersion,
   * or with a new list after a 410 `ERROR` event).
   *
   * @throws {K8sApiError} for an error answer, a connection lost, no byte for
   * `idleTimeoutMs` (`reason` "IdleTimeout"), a line over `maxEventBytes`
   * ("WatchEventTooLarge") or one that is not a watch event ("InvalidResponse").
   *
   * @example
   * ```ts ignore
   * const list = await client.list<Pod>(POD_RESOURCE, { fieldSelector });
   * for await (const event of client.watch<Pod>(POD_RESOURCE, {
   *   fieldSelector,
   *   resourceVersion: list.metadata.resourceVersion,
   *   signal,
   * })) {
   *   if (event.type === "ERROR") break; // 410: list again
   * }
   * ```
   */
  async *watch<T>(
    resource: ApiResource,
    options: WatchOptions = {},
  ): AsyncGenerator<WatchEvent<T>, void, undefined> {
    if (this.#closed) throw new TypeError("Cannot use a closed KubeClient");
    const query = new URLSearchParams({ watch: "1" });
    if (options.resourceVersion) query.set("resourceVersion", options.resourceVersion);
    if (options.allowWatchBookmarks ?? true) query.set("allowWatchBookmarks", "true");
    if (options.fieldSelector) query.set("fieldSelector", options.fieldSelector);
    if (options.timeoutSeconds !== undefined) {
      query.set("timeoutSeconds", String(Math.max(1, Math.floor(options.timeoutSeconds))));
    }
    const call: Call = {
      verb: "watch",
      method: "GET",
      path: `${collectionPath(resource, options.namespace)}?${query}`,
      action: `watch ${describeCollection(resource, options)}`,
    };
    const outer = options.signal;
    if (outer?.aborted) return;
    const transport = await this.#getTransport();
    const idleMs = options.idleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    const maxLineBytes = options.maxEventBytes ?? DEFAULT_MAX_WATCH_EVENT_BYTES;
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    outer?.addEventListener("abort", onAbort, { once: true });
    if (outer?.aborted) controller.abort(); // while the transport was being made
    let expired: "request" | "idle" | undefined;
    let timer = setTimeout(() => {
      expired = "request";
      controller.abort();
    }, this.#requestTimeoutMs);
    const started = performance.now();
    const fail = (failure: Failure) => this.#error(call, failure, { attempts: 1, started });
    this.#requests++;
    try {
      let stream: WireStream;
      try {
        stream = await transport.stream({
          method: "GET",
          url: this.#credentials.server + call.path,
          headers: this.#headers(),
          signal: controller.signal,
        });
      } catch (err) {
        if (outer?.aborted) return;
        throw fail(
          expired === "request"
            ? this.#timeoutFailure(this.#requestTimeoutMs)
            : this.#connectionFailure(err),
        );
      }
      this.#log.debug(
        `API GET ${call.path} answered ${stream.status} in ${
          Math.round(performance.now() - started)
        } ms`,
      );
      if (stream.status !== 200) {
        const body = await readSome(stream.body, MAX_ERROR_BODY_BYTES).catch(() => "");
        if (outer?.aborted) return;
        throw fail(responseFailure({ ...stream, body }));
      }
      options.onOpen?.();
      // From here on only silence ends the watch: the timer restarts with every chunk.
      const rearm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          expired = "idle";
          controller.abort();
        }, idleMs);
      };
      rearm();
      // Loaded here: the plugin, which never watches, does not pay for it at start-up.
      const { LineTooLongError, splitLines } = await import("../util/line_splitter.ts");
      const idleFailure = (): Failure => ({
        status: 0,
        reason: "IdleTimeout",
        what: `the API server at ${this.#credentials.server} sent nothing for ${idleMs} ms`,
        retryable: true,
      });
      try {
        for await (const line of splitLines(touching(stream.body, rearm), { maxLineBytes })) {
          if (line.trim() === "") continue;
          yield parseWatchEvent<T>(line, fail);
        }
      } catch (err) {
        if (outer?.aborted && !(err instanceof K8sApiError)) return;
        if (err instanceof K8sApiError) throw err;
        if (err instanceof LineTooLongError) {
          throw fail({
            status: 0,
            reason: "WatchEventTooLarge",
            what: `the API server sent an event longer than ${err.limit} bytes`,
            retryable: false,
            cause: err,
          });
        }
        if (expired === "idle") throw fail(idleFailure());
        const failure = this.#connectionFailure(err);
        // It did answer: the connection broke afterwards.
        failure.what = failure.what.replace(
          "was closed before it answered",
          "broke during the watch",
        );
        throw fail(failure);
      }
      // A transport may end the body quietly when the idle timer cut it.
      if (expired === "idle" && !outer?.aborted) throw fail(idleFailure());
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
      controller.abort(); // ends the body when the caller stopped iterating early
    }
  }

  /** Closes the connections. The client cannot be used afterwards. */
  close(): void {
    this.#closed = true;
    const transport = this.#transport;
    this.#transport = undefined;
    transport?.then((t) => t.close(), () => {});
  }

  async #updateAnnotations(
    pod: Pod,
    annotations: Record<string, string | null>,
  ): Promise<Pod> {
    const { namespace, name } = podIdentity(pod);
    const path = `${podPath(namespace, name)}/status`;
    const action = `update pod "${namespace}/${name}" status`;
    let current = pod;
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#call<Pod>({
          verb: "update",
          method: "PUT",
          path,
          action,
          body: withAnnotations(current, annotations),
          contentType: "application/json",
          expect: { kind: "Pod", namespace, name },
        });
      } catch (err) {
        if (!(err instanceof K8sApiError) || err.status !== 409 || attempt >= UPDATE_ATTEMPTS) {
          throw err;
        }
      }
      this.#log.verbose(`pod "${namespace}/${name}" changed meanwhile; reading it again`);
      await sleep(UPDATE_CONFLICT_PAUSE_MS + Math.random() * UPDATE_CONFLICT_PAUSE_MS * 0.1);
      const fresh = await this.getPod(namespace, name);
      if (pod.metadata.uid && fresh.metadata.uid && fresh.metadata.uid !== pod.metadata.uid) {
        throw new K8sApiError(
          `Cannot ${action}: the pod was deleted and created again (UID "${pod.metadata.uid}" is now "${fresh.metadata.uid}")`,
          { status: 409, reason: "Conflict", verb: "update", path },
        );
      }
      current = fresh;
    }
  }

  /** Sends one call with timeouts and retries; answers 2xx with the parsed body. */
  async #call<T>(call: Call): Promise<T> {
    const started = performance.now();
    const deadline = started + this.#totalTimeoutMs;
    for (let attempt = 1;; attempt++) {
      call.signal?.throwIfAborted();
      const left = deadline - performance.now();
      const timeoutMs = Math.max(1, Math.min(this.#requestTimeoutMs, left));
      const result = await this.#attempt(call, timeoutMs);
      if (!("reason" in result)) return result.value as T;
      const failure = result;
      const fail = () => this.#error(call, failure, { attempts: attempt, started });
      if (!failure.retryable || attempt > this.#maxRetries) throw fail();
      const waitMs = failure.retryAfterMs ??
        Math.min(BACKOFF_BASE_MS * 2 ** (attempt - 1), BACKOFF_MAX_MS);
      const remaining = deadline - performance.now();
      if (waitMs + MIN_ATTEMPT_MS > remaining) throw fail();
      // A request that timed out is likely to time out again: only retry with a full timeout.
      if (failure.reason === "Timeout" && remaining - waitMs < this.#requestTimeoutMs) {
        throw fail();
      }
      this.#log.verbose(
        `API ${call.method} ${call.path}: ${failure.what}; retrying in ${Math.round(waitMs)} ms`,
      );
      await sleep(waitMs, call.signal);
    }
  }

  #headers(): Record<string, string> {
    const headers: Record<string, string> = {
      "Accept": "application/json",
      "User-Agent": this.#userAgent,
    };
    if (this.#credentials.token) headers["Authorization"] = `Bearer ${this.#credentials.token}`;
    return headers;
  }

  #timeoutFailure(timeoutMs: number): Failure {
    return {
      status: 0,
      reason: "Timeout",
      what: `the API server at ${this.#credentials.server} did not answer within ${
        Math.round(timeoutMs)
      } ms`,
      retryable: true,
    };
  }

  /** One HTTP exchange: the parsed body of a 2xx answer, or why it failed. */
  async #attempt(call: Call, timeoutMs: number): Promise<{ value: unknown } | Failure> {
    if (this.#closed) throw new TypeError("Cannot use a closed KubeClient");
    let transport: Transport;
    try {
      transport = await this.#getTransport();
    } catch (err) {
      if (!(err instanceof TlsSetupError)) throw err;
      return {
        status: 0,
        reason: "TlsError",
        what: err.problem.what,
        details: err.problem.details,
        retryable: false,
        code: ErrorCode.InvalidNetworkConfig,
        cause: err.cause,
      };
    }
    const headers = this.#headers();
    let body: string | undefined;
    if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers["Content-Type"] = call.contentType ?? "application/json";
    }
    const controller = new AbortController();
    const timer = startTimer(timeoutMs, () => controller.abort());
    const onAbort = () => controller.abort();
    call.signal?.addEventListener("abort", onAbort, { once: true });
    if (call.signal?.aborted) controller.abort(); // while the transport was being made
    const sentAt = performance.now();
    this.#requests++;
    let response: WireResponse;
    try {
      response = await transport.send({
        method: call.method,
        url: this.#credentials.server + call.path,
        headers,
        body,
        signal: controller.signal,
      });
    } catch (err) {
      call.signal?.throwIfAborted();
      const failure = controller.signal.aborted
        ? this.#timeoutFailure(timeoutMs)
        : this.#connectionFailure(err);
      this.#log.debug(`API ${call.method} ${call.path}: ${failure.what}`);
      return failure;
    } finally {
      timer.cancel();
      call.signal?.removeEventListener("abort", onAbort);
    }
    this.#log.debug(
      `API ${call.method} ${call.path} answered ${response.status} in ${
        Math.round(performance.now() - sentAt)
      } ms`,
    );
    if (response.status >= 200 && response.status < 300) {
      let value: unknown;
      try {
        value = response.body ? JSON.parse(response.body) : undefined;
      } catch (err) {
        return {
          status: response.status,
          reason: "InvalidResponse",
          what: `the API server answered ${response.status} with a body that is not JSON`,
          retryable: false,
          cause: err,
        };
      }
      const mismatch = call.expect && answerMismatch(value, call.expect);
      if (mismatch) {
        return {
          status: response.status,
          reason: "InvalidResponse",
          what: `the API server answered ${response.status} with ${mismatch}`,
          retryable: false,
        };
      }
      return { value };
    }
    return responseFailure(response);
  }

  #connectionFailure(err: unknown): Failure {
    // The transport may quote the request's headers ("Invalid header value: "Bearer …"") and
    // this text is logged: never the token, as given or escaped.
    let text = errorText(err);
    const token = this.#credentials.token;
    if (token) {
      for (const form of [token, JSON.stringify(token).slice(1, -1), ...token.split(/\s+/)]) {
        if (form.length >= 4) text = text.replaceAll(form, "<redacted>");
      }
    }
    const at = `the API server at ${this.#credentials.server}`;
    let reason = "ConnectionError";
    let what = `cannot connect to ${at}: ${text}`;
    let retryable = true;
    const tls = explainHandshakeFailure(text, this.#credentials);
    if (/handshake eof|ECONNRESET|reset|closed|hang up|EPIPE|reading a body|aborted/i.test(text)) {
      reason = "ConnectionReset";
      what = `the connection to ${at} was closed before it answered (${text})`;
    } else if (tls) {
      return {
        status: 0,
        reason: "TlsError",
        what: tls.what,
        details: tls.details,
        retryable: false,
        cause: err,
      };
    } else if (/invalid HTTP|parse|blocked/i.test(text)) {
      reason = "ProtocolError";
      what = `cannot talk to ${at}: ${text}`;
      retryable = false;
    } else if (/refused/i.test(text)) {
      reason = "ConnectionRefused";
      what = `cannot connect to ${at}: connection refused`;
    } else if (/dns error|ENOTFOUND|EAI_AGAIN|lookup/i.test(text)) {
      reason = "DnsError";
      what = `cannot resolve the host of ${at}: ${text}`;
    }
    return { status: 0, reason, what, retryable, cause: err };
  }

  #error(
    call: Call,
    failure: Failure,
    options: { attempts: number; started: number },
  ): K8sApiError {
    const source = this.#credentials.source;
    let message = `Cannot ${call.action}: ${failure.what}`;
    if (failure.status === 401) {
      message +=
        ` (the credentials from "${source}" were rejected: an expired or rotated token, or an untrusted client certificate)`;
    }
    if (options.attempts > 1) {
      const seconds = ((performance.now() - options.started) / 1000).toFixed(1);
      message += ` (${options.attempts} attempts in ${seconds} s)`;
    }
    const token = this.#credentials.token;
    if (token) message = message.replaceAll(token, "<redacted>");
    return new K8sApiError(message, {
      status: failure.status,
      reason: failure.reason,
      verb: call.verb,
      path: call.path,
      kubeStatus: failure.kubeStatus,
      details: failure.details ?? whatToDo(failure, source),
      cause: failure.cause,
      ...(failure.code !== undefined
        ? { code: failure.code }
        : failure.retryable
        ? {}
        : { code: ErrorCode.Internal }),
    });
  }

  #getTransport(): Promise<Transport> {
    this.#transport ??= createTransport(this.#credentials);
    return this.#transport;
  }
}

/** What to do about a failure that does not say it itself. */
function whatToDo(failure: Failure, source: string): string | undefined {
  if (failure.status === 401) return `Renew the token or client certificate in "${source}"`;
  if (failure.status === 403) {
    return `The account of the credentials from "${source}" lacks the permission; check its RBAC roles`;
  }
  if (failure.reason === "InvalidResponse") {
    return `Check that "server" in "${source}" is the Kubernetes API server, and that nothing between this node and it (a proxy, a load balancer) answers in its place`;
  }
  return undefined;
}

function responseFailure(response: WireResponse): Failure {
  let kubeStatus: KubeStatus | undefined;
  try {
    const parsed = JSON.parse(response.body);
    if (isKubeStatus(parsed)) kubeStatus = parsed;
  } catch {
    // not JSON: described from the HTTP status alone
  }
  const status = response.status;
  const text = STATUS_TEXT[status] ?? response.statusText ?? "";
  let what = `the API server answered ${status}${text ? ` ${text}` : ""}`;
  const serverMessage = kubeStatus?.message ?? plainBody(response.body);
  if (serverMessage && serverMessage !== text) what += `: ${serverMessage}`;
  const failure: Failure = {
    status,
    reason: kubeStatus?.reason || STATUS_REASON[status] || "Unknown",
    what,
    retryable: isRetryableStatus(status),
    kubeStatus,
  };
  const retryAfterMs = parseRetryAfter(response.retryAfter);
  if (retryAfterMs !== undefined && (status === 429 || status === 503)) {
    failure.retryAfterMs = retryAfterMs;
  }
  return failure;
}

/** A short, one-line rendering of a non-Status error body. */
function plainBody(body: string): string {
  const line = body.replace(/\s+/g, " ").trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** `Retry-After` in milliseconds: delta-seconds or an HTTP date. */
function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function errorText(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current && depth < 4; depth++) {
    if (current instanceof Error) {
      const code = (current as { code?: unknown }).code;
      const message = current.message
        .replace(/^error sending request (for url|from) .*?: /, "")
        .replace(/^client error \(\w+\): /, "")
        .replace(/: https?:\/\/docs\.rs\/\S*/, "");
      if (message && message !== "fetch failed") parts.push(message);
      if (typeof code === "string" && !message.includes(code)) parts.push(code);
      current = current.cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(": ") || "unknown error";
}

async function createTransport(credentials: KubeCredentials): Promise<Transport> {
  const https = new URL(credentials.server).protocol === "https:";
  if (https && (credentials.insecureSkipTlsVerify || credentials.tlsServerName)) {
    return await createNodeTransport(credentials);
  }
  return createFetchTransport(credentials, https);
}

/**
 * A `fetch` client with our CA and client certificate; a CA, certificate or key it cannot
 * use is a {@linkcode TlsSetupError} naming which one.
 */
function createTlsClient(credentials: KubeCredentials, https: boolean): Deno.HttpClient {
  // A fresh options object each time: createHttpClient mutates it (denoland/deno#29347).
  const options = (): Deno.CreateHttpClientOptions & Partial<Deno.TlsCertifiedKeyPem> => {
    const o: Deno.CreateHttpClientOptions & Partial<Deno.TlsCertifiedKeyPem> = {};
    if (https && credentials.caPem) o.caCerts = [credentials.caPem];
    if (https && credentials.certPem && credentials.keyPem) {
      o.cert = credentials.certPem;
      o.key = credentials.keyPem;
    }
    return o;
  };
  try {
    return Deno.createHttpClient(options() as Deno.CreateHttpClientOptions);
  } catch (err) {
    // Which setting is at fault: the CA alone, or else the client certificate and key.
    let setting: TlsSetting = "client";
    if (credentials.caPem) {
      try {
        Deno.createHttpClient({ caCerts: [credentials.caPem] }).close();
      } catch {
        setting = "ca";
      }
    }
    throw new TlsSetupError(explainSetupFailure(errorText(err), setting, credentials), err);
  }
}

function createFetchTransport(credentials: KubeCredentials, https: boolean): Transport {
  const client = createTlsClient(credentials, https);
  return {
    async send(request: WireRequest): Promise<WireResponse> {
      const response = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: request.signal,
        client,
      });
      const body = await response.text();
      return {
        status: response.status,
        statusText: response.statusText,
        retryAfter: response.headers.get("retry-after"),
        body,
      };
    },
    async stream(request: WireRequest): Promise<WireStream> {
      const response = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        signal: request.signal,
        client,
      });
      return {
        status: response.status,
        statusText: response.statusText,
        retryAfter: response.headers.get("retry-after"),
        body: response.body ? readUntilAborted(response.body, request.signal) : emptyBody(),
      };
    },
    close(): void {
      client.close();
    },
  };
}

async function createNodeTransport(credentials: KubeCredentials): Promise<Transport> {
  if (credentials.tlsServerName && /^[\d.]+$|:/.test(credentials.tlsServerName)) {
    const problem = explainSetupFailure("", "server-name", credentials);
    throw new TlsSetupError(problem, undefined);
  }
  // node:tls only warns about a CA it cannot use, then fails every handshake: check our
  // settings the way fetch would, to say which one is wrong.
  createTlsClient({
    ...credentials,
    caPem: credentials.insecureSkipTlsVerify ? undefined : credentials.caPem,
  }, true).close();
  const https = await import("node:https");
  const agent = new https.Agent({
    keepAlive: true,
    rejectUnauthorized: !credentials.insecureSkipTlsVerify,
    ...(credentials.caPem && !credentials.insecureSkipTlsVerify ? { ca: credentials.caPem } : {}),
    ...(credentials.certPem && credentials.keyPem
      ? { cert: credentials.certPem, key: credentials.keyPem }
      : {}),
    ...(credentials.tlsServerName ? { servername: credentials.tlsServerName } : {}),
  });
  return {
    send(request: WireRequest): Promise<WireResponse> {
      return new Promise((resolve, reject) => {
        const headers: Record<string, string> = { ...request.headers };
        if (request.body !== undefined) {
          headers["Content-Length"] = String(new TextEncoder().encode(request.body).length);
        }
        const req = https.request(
          request.url,
          { method: request.method, headers, agent },
          (res) => {
            const chunks: Uint8Array[] = [];
            res.on("data", (chunk: Uint8Array) => chunks.push(chunk));
            res.on("error", reject);
            res.on(
              "aborted",
              () => reject(new Error("connection aborted while reading the answer")),
            );
            res.on("end", () => {
              cleanup();
              const retryAfter = res.headers["retry-after"];
              resolve({
                status: res.statusCode ?? 0,
                statusText: res.statusMessage ?? "",
                retryAfter: typeof retryAfter === "string" ? retryAfter : null,
                body: new TextDecoder().decode(concat(chunks)),
              });
            });
          },
        );
        const onAbort = () => req.destroy(new Error("aborted by timeout"));
        const cleanup = () => request.signal.removeEventListener("abort", onAbort);
        request.signal.addEventListener("abort", onAbort, { once: true });
        req.on("error", (err: Error) => {
          cleanup();
          reject(err);
        });
        req.end(request.body);
      });
    },
    stream(request: WireRequest): Promise<WireStream> {
      return new Promise((resolve, reject) => {
        const req = https.request(
          request.url,
          { method: request.method, headers: request.headers, agent },
          (res) => {
            const retryAfter = res.headers["retry-after"];
            resolve({
              status: res.statusCode ?? 0,
              statusText: res.statusMessage ?? "",
              retryAfter: typeof retryAfter === "string" ? retryAfter : null,
              body: res,
            });
          },
        );
        const onAbort = () => req.destroy(new Error("aborted"));
        request.signal.addEventListener("abort", onAbort, { once: true });
        req.on("close", () => request.signal.removeEventListener("abort", onAbort));
        req.on("error", reject); // after the answer, errors reach the reader of the body
        req.end();
      });
    },
    close(): void {
      agent.destroy();
    },
  };
}

/** Passes `source` through, calling `onChunk` as each chunk arrives. */
async function* touching(
  source: AsyncIterable<Uint8Array>,
  onChunk: () => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const chunk of source) {
    onChunk();
    yield chunk;
  }
}

/** Up to `limit` bytes of a body, as text; the rest is not read. */
async function readSome(body: AsyncIterable<Uint8Array>, limit: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) break;
  }
  return new TextDecoder().decode(concat(chunks).subarray(0, limit));
}

async function* emptyBody(): AsyncGenerator<Uint8Array, void, undefined> {}

/**
 * The chunks of a fetch body until `signal` aborts, which then rejects the pending read with
 * the signal's reason. Deno 2.9's fetch does not always end a pending body read of an HTTP/2
 * answer when its signal aborts: the read stays pending and so would a watch being stopped.
 */
async function* readUntilAborted(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await readOrAbort(reader, signal);
      if (done) return;
      yield value;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * One read, rejected with the signal's reason if it aborts first. Each read has its own
 * abort listener, removed once the read settles: racing every read against one promise that
 * lives as long as the watch would leave a reaction on that promise per read, each holding
 * its chunk (a 64 KiB buffer), until the watch ends.
 */
function readOrAbort(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  signal: AbortSignal,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    // The read may settle after the abort, with nobody left to hear it.
    reader.read().then((result) => {
      signal.removeEventListener("abort", onAbort);
      resolve(result);
    }, (err) => {
      signal.removeEventListener("abort", onAbort);
      reject(err);
    });
  });
}

const WATCH_EVENT_TYPES = new Set(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);

/** One watch line as an event, or an `InvalidResponse` error. */
function parseWatchEvent<T>(
  line: string,
  fail: (failure: Failure) => K8sApiError,
): WatchEvent<T> {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch (err) {
    throw fail({
      status: 0,
      reason: "InvalidResponse",
      what: `the API server sent a watch event that is not JSON: ${plainBody(line)}`,
      retryable: false,
      cause: err,
    });
  }
  const { type, object } = (event ?? {}) as { type?: unknown; object?: unknown };
  const valid = typeof type === "string" && WATCH_EVENT_TYPES.has(type) &&
    typeof object === "object" && object !== null && !Array.isArray(object) &&
    (type === "ERROR" ? isKubeStatus(object) : typeof (object as { metadata?: unknown })
      .metadata === "object");
  if (!valid) {
    throw fail({
      status: 0,
      reason: "InvalidResponse",
      what: `the API server sent a line that is not a watch event: ${plainBody(line)}`,
      retryable: false,
    });
  }
  return event as WatchEvent<T>;
}

/** `/api/v1[/namespaces/<ns>]/<plural>` or `/apis/<group>/<version>[…]`. */
function collectionPath(resource: ApiResource, namespace: string | undefined): string {
  const base = resource.group
    ? `/apis/${resource.group}/${resource.version}`
    : `/api/${resource.version}`;
  const scope = namespace === undefined ? "" : `/namespaces/${enc(namespace)}`;
  return `${base}${scope}/${resource.plural}`;
}

/** `pods in namespace "x" (fieldSelector "spec.nodeName=n")`, for messages. */
function describeCollection(
  resource: ApiResource,
  options: { namespace?: string; fieldSelector?: string },
): string {
  let text = resource.plural;
  if (options.namespace !== undefined) text += ` in namespace "${options.namespace}"`;
  if (options.fieldSelector) text += ` (fieldSelector "${options.fieldSelector}")`;
  return text;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function withAnnotations(pod: Pod, annotations: Record<string, string | null>): Pod {
  const copy: Pod = structuredClone(pod);
  copy.apiVersion ??= "v1";
  copy.kind ??= "Pod";
  const merged: Record<string, string> = { ...copy.metadata.annotations };
  for (const [key, value] of Object.entries(annotations)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  copy.metadata.annotations = merged;
  return copy;
}

function podIdentity(pod: Pod): { namespace: string; name: string } {
  const { namespace, name } = pod.metadata;
  if (!namespace || !name) {
    throw new TypeError(`Cannot address pod "${name ?? ""}": it has no namespace or name`);
  }
  return { namespace, name };
}

function podPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`;
}

/**
 * One path segment, escaped. As client-go's `IsValidPathSegmentName`: "", "." and ".." are
 * refused, since URL normalisation would turn them into another path (another resource).
 */
function enc(segment: string): string {
  if (segment === "" || segment === "." || segment === "..") {
    throw new K8sApiError(
      `Cannot ask the API server about ${JSON.stringify(segment)}: it is not a valid name`,
      {
        status: 0,
        reason: "InvalidName",
        verb: "",
        path: "",
        code: ErrorCode.InvalidNetworkConfig,
      },
    );
  }
  return encodeURIComponent(segment);
}

/** Waits `ms`, or less when `signal` aborts (the caller checks it). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
