/**
 * @module
 * A test Kubernetes API server: real HTTPS on 127.0.0.1 (random port), with certificates
 * made by openssl at start, that behaves like kube-apiserver where the plugin depends on it:
 * bearer-token and client-certificate authentication (401 Status otherwise), pods and
 * NetworkAttachmentDefinitions, merge patches of `pods/<name>/status` with UID and
 * resourceVersion preconditions (409), PUT with resourceVersion checks, events, per-verb
 * RBAC (403), and injected faults (latency, refused or dropped connections, hangs, error
 * statuses). Every request is logged for the tests to read.
 *
 * Lists and watches of pods and NetworkAttachmentDefinitions (all namespaces or one, with
 * field selectors) work as kube-apiserver's: one global resourceVersion bumped by every write,
 * chunked JSON-line event streams, bookmarks, a bounded history (410 Gone before it),
 * `timeoutSeconds`; tests can drop watches, send bookmarks, compact the history and delay
 * events. resource.k8s.io/v1 ResourceClaims (get) are served too, and ResourceSlices listed
 * and watched as pods are.
 *
 * Transport as kube-apiserver's: HTTP/2 negotiated by ALPN, HTTP/1.1 for clients that do not
 * offer it, TCP_NODELAY on every connection, and each whole answer in one write (an answer
 * split into a header write and a body write can wait ~40 ms on the client's delayed ACK,
 * which would hide or invent costs).
 *
 * It runs in the test's process (`node:http2` with `requestCert`, which Deno 2.9 verifies);
 * the plugin under test talks to it over the network like any client.
 */

import http2 from "node:http2";
import type { Http2ServerRequest, Http2ServerResponse, ServerHttp2Stream } from "node:http2";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type {
  KubeObject,
  KubeStatus,
  NetworkAttachmentDefinition,
  Pod,
} from "../../src/k8s/types.ts";
import {
  type HistoryEntry,
  parseFieldSelector,
  selects,
  type StoredObject,
  WatchHub,
  type WatchSelection,
  type WatchSink,
} from "./watch_hub.ts";
import { decodeKubeProtobuf, KUBE_PROTOBUF } from "./protobuf.ts";

/** How a request authenticated, or why it did not. */
export type AuthKind = "token" | "cert" | "none" | "invalid-token" | "untrusted-cert";

/** Kinds of injected fault. */
export type FaultKind = "latency" | "refuse" | "hang" | "drop" | "status";

/** A fault to inject; matching requests (or, for `refuse`, connections) get it. */
export interface Fault {
  /**
   * `latency`: wait `ms` then answer normally; `refuse`: close each new connection at once
   * (before TLS, so path and method are not known and ignored); `hang`: never answer;
   * `drop`: destroy the connection once the request is read; `status`: answer `status`.
   */
  kind: FaultKind;
  /** Request path: exact, or a prefix when it ends with `*`, or a RegExp. Default: all. */
  path?: string | RegExp;
  /** HTTP method (`GET`, `PATCH`, …). Default: all. */
  method?: string;
  /** Delay of a `latency` fault, in milliseconds. */
  ms?: number;
  /** HTTP status of a `status` fault: 401, 403, 404, 409, 422, 429, 500, 503, … */
  status?: number;
  /** `Retry-After` (seconds) sent with a `status` fault. */
  retryAfter?: number;
  /** Status message of a `status` fault (default: what kube-apiserver says). */
  message?: string;
  /**
   * Body of a `status` fault instead of a `Status` object, sent as JSON (a string is sent as
   * is): with `status: 200`, an answer of the wrong shape (a list, another kind, bad fields).
   */
  body?: unknown;
  /** How many requests it affects; default 1 for `status`, unlimited for the others. */
  times?: number;
}

/** One line of the request log. */
export interface RequestRecord {
  /** HTTP method; empty for a connection closed by a `refuse` fault. */
  method: string;
  /** Path without the query; empty for a refused connection. */
  path: string;
  /** How the request authenticated. */
  auth: AuthKind;
  /** The authenticated user, when there is one. */
  user?: string;
  /** HTTP status answered; 0 when none (hang, drop, refuse). */
  status: number;
  /** Arrival time (`Date.now()`). */
  time: number;
  /** Time to answer, in milliseconds (0 when not answered). */
  durationMs: number;
  /** `Content-Type` of the request, when it had a body. */
  contentType?: string;
  /** The fault applied, if any. */
  fault?: FaultKind;
  /** The parsed JSON request body, if any. */
  body?: unknown;
  /** The query string without `?` (empty when none), e.g. `watch=1&resourceVersion=7`. */
  query?: string;
  /** HTTP version the request came in: `2.0` or `1.1` (absent for a refused connection). */
  httpVersion?: string;
  /**
   * The Kubernetes verb, once routed: `get`, `list`, `watch`, `patch`, `update`, `create`
   * (absent when the request was not routed: faults, 401, unknown paths).
   */
  verb?: string;
}

/** Authentication of a kubeconfig written by {@linkcode TestApiServer.writeKubeconfig}. */
export type KubeconfigAuth =
  | "token"
  | "tokenFile"
  | "cert"
  | "certFile"
  | "rogueCert"
  | "wrongToken"
  | "none";

/** Options of {@linkcode TestApiServer.writeKubeconfig}. */
export interface WriteKubeconfigOptions {
  /** How the user authenticates (default `token`). */
  auth?: KubeconfigAuth;
  /**
   * How the server is trusted: `caData` (default), `caFile`, `insecure`
   * (`insecure-skip-tls-verify: true`), or `none` (no CA: verification fails).
   */
  tls?: "caData" | "caFile" | "insecure" | "none";
  /** `tls-server-name` to write. */
  tlsServerName?: string;
  /** `server` to write (default: the server's URL). */
  server?: string;
  /** Where to write it (default: a new file in the server's folder). */
  path?: string;
  /** `yaml` (default, as Multus writes it) or `json`. */
  format?: "yaml" | "json";
}

/** Options of {@linkcode startTestApiServer}. */
export interface TestApiServerOptions {
  /** Pods to start with. */
  pods?: Pod[];
  /** NetworkAttachmentDefinitions to start with. */
  nads?: NetworkAttachmentDefinition[];
  /** Writes kept for watches resuming from an older resourceVersion (default 1000). */
  historyLimit?: number;
}

/** A running test API server. */
export interface TestApiServer {
  /** `https://127.0.0.1:<port>`. */
  url: string;
  /** The port. */
  port: number;
  /** Folder of the certificates and kubeconfigs; removed by `close()`. */
  dir: string;
  /** The CA that signs the server and client certificates (file and PEM). */
  caFile: string;
  /** The CA certificate (PEM). */
  caPem: string;
  /** The accepted bearer token (changes with `rotateToken()`). */
  token: string;
  /** A client certificate signed by the CA (CN `system:node:test`), and its key. */
  clientCertFile: string;
  /** Key of `clientCertFile`. */
  clientKeyFile: string;
  /** A client certificate with the same CN signed by another CA, and its key. */
  rogueCertFile: string;
  /** Key of `rogueCertFile`. */
  rogueKeyFile: string;
  /** The user a valid token authenticates as. */
  tokenUser: string;
  /**
   * Stores a pod (a uid is assigned when missing). Like every write it gets the next global
   * resourceVersion (a given one is replaced) and open watches see it.
   */
  setPod(pod: Pod): Pod;
  /** Stores a NetworkAttachmentDefinition, as `setPod` does a pod. */
  setNad(nad: NetworkAttachmentDefinition): NetworkAttachmentDefinition;
  /** A copy of a stored pod. */
  getPod(namespace: string, name: string): Pod | undefined;
  /** Removes a pod (a write: watches see it DELETED). */
  deletePod(namespace: string, name: string): void;
  /** A copy of a stored NetworkAttachmentDefinition. */
  getNad(namespace: string, name: string): NetworkAttachmentDefinition | undefined;
  /** Removes a NetworkAttachmentDefinition. */
  deleteNad(namespace: string, name: string): void;
  /** Stores a resource.k8s.io/v1 ResourceClaim (namespaced; served by GET). */
  setResourceClaim(claim: KubeObject): KubeObject;
  /** Stores a resource.k8s.io/v1 ResourceSlice (cluster-scoped; a write: listed and watched). */
  setResourceSlice(slice: KubeObject): KubeObject;
  /** The current global resourceVersion (the version of the latest write). */
  resourceVersion(): string;
  /** Watches open now. */
  openWatches(): number;
  /** Sends a bookmark at the current resourceVersion to every watch that allows them. */
  sendBookmark(): number;
  /**
   * Ends every open watch: `reset` (default) breaks it off as a lost connection would (the
   * client reads an error); `end` finishes it cleanly, as a `timeoutSeconds` expiry does.
   * Returns how many there were.
   */
  dropWatches(how?: "reset" | "end"): number;
  /** Forgets the whole history: a watch or list from an older resourceVersion gets 410 Gone. */
  compactHistory(): void;
  /** Delays every watch event by `ms` from now on (0 to stop); order is kept. */
  setWatchLatency(ms: number): void;
  /** Closes every open connection (with `inject({ kind: "refuse" })`, the server is "down"). */
  dropConnections(): number;
  /** Events posted so far. */
  events(): Record<string, unknown>[];
  /** Makes a (Kubernetes) verb on a resource (`pods`, `pods/status`, …) answer 403. */
  forbid(verb: string, resource: string): void;
  /** Undoes {@linkcode forbid}. */
  allow(verb: string, resource: string): void;
  /** Injects a fault. */
  inject(fault: Fault): void;
  /** Removes every fault. */
  clearFaults(): void;
  /** A copy of the request log. */
  requests(): RequestRecord[];
  /** Empties the request log. */
  clearRequests(): void;
  /** Replaces the accepted token (the old one is rejected from now on); returns the new one. */
  rotateToken(): string;
  /** Writes a kubeconfig for this server; returns its path. */
  writeKubeconfig(options?: WriteKubeconfigOptions): Promise<string>;
  /** Stops the server, closes every connection, removes `dir`. */
  close(): Promise<void>;
}

const SERVICE_ACCOUNT_USER = "system:serviceaccount:kube-system:multus";
const NAD_GROUP = "k8s.cni.cncf.io";
const NAD_RESOURCE = "network-attachment-definitions";
const DRA_GROUP = "resource.k8s.io";

/** Field selectors kube-apiserver accepts, by resource. */
const POD_FIELDS = [
  "metadata.name",
  "metadata.namespace",
  "spec.nodeName",
  "spec.restartPolicy",
  "spec.schedulerName",
  "spec.serviceAccountName",
  "spec.hostNetwork",
  "status.phase",
  "status.podIP",
  "status.nominatedNodeName",
];
const CUSTOM_RESOURCE_FIELDS = ["metadata.name", "metadata.namespace"];
const RESOURCE_SLICE_FIELDS = ["metadata.name", "spec.nodeName", "spec.driver", "spec.pool.name"];

const REASONS: Record<number, string> = {
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

/** Starts a test API server. Call `close()` when done. */
export async function startTestApiServer(
  options: TestApiServerOptions = {},
): Promise<TestApiServer> {
  const dir = await Deno.makeTempDir({ prefix: "k8s-api-test-" });
  try {
    const certs = await generateCertificates(dir);
    const server = new ApiServer(dir, certs, options.historyLimit ?? 1000);
    for (const pod of options.pods ?? []) server.setPod(pod);
    for (const nad of options.nads ?? []) server.setNad(nad);
    await server.listen();
    return server.handle();
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}

interface Certificates {
  caFile: string;
  /** The CA certificate (PEM). */
  caPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  clientCertFile: string;
  /** Key of `clientCertFile`. */
  clientKeyFile: string;
  rogueCertFile: string;
  /** Key of `rogueCertFile`. */
  rogueKeyFile: string;
}

interface ActiveFault extends Fault {
  remaining: number;
}

/** A watch to open instead of a one-shot answer. */
interface WatchPlan {
  selection: WatchSelection;
  fromRevision?: number;
  initial: StoredObject[];
  timeoutMs?: number;
}

type Answer = { status: number; body: unknown } | { status: 200; watch: WatchPlan };

type Handler = (ctx: RequestContext) => Answer;

interface RequestContext {
  method: string;
  path: string;
  user: string;
  contentType: string;
  body: unknown;
  query: URLSearchParams;
  /** Set by routing: the Kubernetes verb. */
  verb?: string;
}

/** A collection that lists and watches (`pods`, NADs), as routing needs to know it. */
interface Collection {
  resource: string;
  group: string;
  /** `kind` of the objects and of the list (`Pod`, `PodList`), and their `apiVersion`. */
  kind: string;
  apiVersion: string;
  store: Map<string, StoredObject>;
  fields: readonly string[];
  /** Built-in types list their items without `kind`/`apiVersion`; custom resources keep them. */
  itemsKeepTypeMeta: boolean;
}

/**
 * One request and its answer, the same for both HTTP versions: whole answers go out in one
 * write, watch answers as a stream of lines.
 */
interface Exchange {
  httpVersion: string;
  /** The TLS socket (for the client certificate). */
  tls: TLSSocket;
  /** The client's port: which connection this is. */
  remotePort: number | undefined;
  send(status: number, headers: Record<string, string>, text: string): void;
  stream(status: number, headers: Record<string, string>): WatchSink;
  /** Runs `fn` once the answer is over or the client went away. */
  onClose(fn: () => void): void;
  /** Breaks off this request (HTTP/1.1: its connection; HTTP/2: its stream). */
  abort(): void;
}

class ApiServer {
  #dir: string;
  #certs: Certificates;
  #server: http2.Http2SecureServer;
  #port = 0;
  #token = randomToken();
  #pods = new Map<string, Pod>();
  #nads = new Map<string, NetworkAttachmentDefinition>();
  #claims = new Map<string, KubeObject>();
  #slices = new Map<string, KubeObject>();
  #events = new Map<string, Record<string, unknown>>();
  #forbidden = new Set<string>();
  #faults: ActiveFault[] = [];
  #log: RequestRecord[] = [];
  #sockets = new Set<Socket>();
  /** Open connections by the client's port, to drop the connection of a request. */
  #connections = new Map<number, Socket>();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #revision = 100;
  #hub: WatchHub;
  #kubeconfigs = 0;
  #closed = false;

  constructor(dir: string, certs: Certificates, historyLimit: number) {
    this.#dir = dir;
    this.#certs = certs;
    this.#hub = new WatchHub({ historyLimit, startRevision: this.#revision });
    this.#server = http2.createSecureServer({
      key: certs.serverKeyPem,
      cert: certs.serverCertPem,
      ca: certs.caPem,
      // Like kube-apiserver: ask for a client certificate, verify it in the authenticator.
      requestCert: true,
      rejectUnauthorized: false,
      // HTTP/2 when the client offers it by ALPN, HTTP/1.1 otherwise.
      allowHTTP1: true,
    }, (req, res) => {
      const exchange = exchangeOf(
        req as Http2ServerRequest | IncomingMessage,
        res as Http2ServerResponse | ServerResponse,
      );
      this.#onRequest(req as Http2ServerRequest | IncomingMessage, exchange).catch((err) => {
        try {
          this.#send(exchange, 500, statusBody(500, `test server error: ${err}`));
        } catch { /* connection gone */ }
      });
    });
    this.#server.on("connection", (socket: Socket) => {
      socket.setNoDelay(true);
      const refuse = this.#takeFault((f) => f.kind === "refuse");
      if (refuse) {
        this.#log.push({
          method: "",
          path: "",
          auth: "none",
          status: 0,
          time: Date.now(),
          durationMs: 0,
          fault: "refuse",
        });
        socket.destroy();
        return;
      }
      this.#sockets.add(socket);
      const port = socket.remotePort;
      if (port !== undefined) this.#connections.set(port, socket);
      socket.on("close", () => {
        this.#sockets.delete(socket);
        if (port !== undefined && this.#connections.get(port) === socket) {
          this.#connections.delete(port);
        }
      });
    });
    this.#server.on("tlsClientError", () => {/* a client that rejected us: nothing to do */});
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(0, "127.0.0.1", () => {
        this.#port = (this.#server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  handle(): TestApiServer {
    const currentToken = () => this.#token;
    const certs = this.#certs;
    return {
      url: `https://127.0.0.1:${this.#port}`,
      port: this.#port,
      dir: this.#dir,
      caFile: certs.caFile,
      caPem: certs.caPem,
      get token() {
        return currentToken();
      },
      clientCertFile: certs.clientCertFile,
      clientKeyFile: certs.clientKeyFile,
      rogueCertFile: certs.rogueCertFile,
      rogueKeyFile: certs.rogueKeyFile,
      tokenUser: SERVICE_ACCOUNT_USER,
      setPod: (pod) => this.setPod(pod),
      setNad: (nad) => this.setNad(nad),
      getPod: (ns, name) => {
        const pod = this.#pods.get(`${ns}/${name}`);
        return pod ? structuredClone(pod) : undefined;
      },
      deletePod: (ns, name) => this.#commit("pods", this.#pods, `${ns}/${name}`, undefined),
      getNad: (ns, name) => {
        const nad = this.#nads.get(`${ns}/${name}`);
        return nad ? structuredClone(nad) : undefined;
      },
      deleteNad: (ns, name) => this.#commit(NAD_RESOURCE, this.#nads, `${ns}/${name}`, undefined),
      setResourceClaim: (claim) => this.#setDraObject(this.#claims, "ResourceClaim", claim),
      setResourceSlice: (slice) => this.#setResourceSlice(slice),
      resourceVersion: () => String(this.#revision),
      openWatches: () => this.#hub.openWatches,
      sendBookmark: () => this.#hub.bookmark(this.#revision),
      dropWatches: (how) => this.#hub.drop(how ?? "reset"),
      compactHistory: () => this.#hub.compact(this.#revision),
      setWatchLatency: (ms) => void (this.#hub.latencyMs = ms),
      dropConnections: () => {
        const sockets = [...this.#sockets];
        for (const socket of sockets) socket.destroy();
        return sockets.length;
      },
      events: () => [...this.#events.values()].map((e) => structuredClone(e)),
      forbid: (verb, resource) => void this.#forbidden.add(`${verb} ${resource}`),
      allow: (verb, resource) => void this.#forbidden.delete(`${verb} ${resource}`),
      inject: (fault) => {
        const remaining = fault.times ?? (fault.kind === "status" ? 1 : Infinity);
        this.#faults.push({ ...fault, remaining });
      },
      clearFaults: () => void (this.#faults = []),
      requests: () => this.#log.map((r) => ({ ...r })),
      clearRequests: () => void (this.#log = []),
      rotateToken: () => (this.#token = randomToken()),
      writeKubeconfig: (options) => this.#writeKubeconfig(options ?? {}),
      close: () => this.#close(),
    };
  }

  /**
   * Stores a pod: a write, so it gets the next global resourceVersion (a given one is
   * replaced) and watches see it as ADDED or MODIFIED.
   */
  setPod(pod: Pod): Pod {
    const copy: Pod = structuredClone(pod);
    copy.apiVersion ??= "v1";
    copy.kind ??= "Pod";
    copy.metadata.namespace ??= "default";
    copy.metadata.uid ??= crypto.randomUUID();
    const key = `${copy.metadata.namespace}/${copy.metadata.name}`;
    this.#commit("pods", this.#pods, key, copy);
    return structuredClone(copy);
  }

  /** Stores a NetworkAttachmentDefinition, as {@linkcode setPod} does a pod. */
  setNad(nad: NetworkAttachmentDefinition): NetworkAttachmentDefinition {
    const copy: NetworkAttachmentDefinition = structuredClone(nad);
    copy.apiVersion ??= `${NAD_GROUP}/v1`;
    copy.kind ??= "NetworkAttachmentDefinition";
    copy.metadata.namespace ??= "default";
    copy.metadata.uid ??= crypto.randomUUID();
    const key = `${copy.metadata.namespace}/${copy.metadata.name}`;
    this.#commit(NAD_RESOURCE, this.#nads, key, copy);
    return structuredClone(copy);
  }

  /**
   * One write of a watched resource: stores `next` (or deletes the object when undefined)
   * at the next global resourceVersion and records it for the watches.
   */
  #commit<T extends StoredObject | Pod | NetworkAttachmentDefinition>(
    resource: string,
    store: Map<string, T>,
    key: string,
    next: T | undefined,
  ): void {
    const previous = store.get(key) as StoredObject | undefined;
    if (next === undefined && previous === undefined) return;
    const rv = ++this.#revision;
    if (next === undefined) {
      store.delete(key);
      const object = {
        ...previous!,
        metadata: { ...previous!.metadata, resourceVersion: String(rv) },
      };
      this.#hub.record({ rv, resource, type: "DELETED", object });
      return;
    }
    next.metadata.resourceVersion = String(rv);
    store.set(key, next);
    const entry: HistoryEntry = {
      rv,
      resource,
      type: previous ? "MODIFIED" : "ADDED",
      object: next as StoredObject,
    };
    if (previous) entry.previous = previous;
    this.#hub.record(entry);
  }

  /** Stores a ResourceSlice: a write, listed and watched as pods and NADs are. */
  #setResourceSlice(slice: KubeObject): KubeObject {
    const copy: KubeObject = structuredClone(slice);
    copy.apiVersion ??= `${DRA_GROUP}/v1`;
    copy.kind ??= "ResourceSlice";
    copy.metadata.uid ??= crypto.randomUUID();
    const store = this.#slices as Map<string, StoredObject>;
    this.#commit("resourceslices", store, copy.metadata.name, copy as StoredObject);
    return structuredClone(copy);
  }

  #setDraObject(store: Map<string, KubeObject>, kind: string, obj: KubeObject): KubeObject {
    const copy: KubeObject = structuredClone(obj);
    copy.apiVersion ??= `${DRA_GROUP}/v1`;
    copy.kind ??= kind;
    if (kind === "ResourceClaim") copy.metadata.namespace ??= "default";
    copy.metadata.uid ??= crypto.randomUUID();
    copy.metadata.resourceVersion = String(++this.#revision);
    const key = copy.metadata.namespace
      ? `${copy.metadata.namespace}/${copy.metadata.name}`
      : copy.metadata.name;
    store.set(key, copy);
    return structuredClone(copy);
  }

  async #onRequest(req: Http2ServerRequest | IncomingMessage, exchange: Exchange): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? "/", "https://test");
    const method = (req.method ?? "GET").toUpperCase();
    const record: RequestRecord = {
      method,
      path: url.pathname,
      auth: "none",
      status: 0,
      time: Date.now(),
      durationMs: 0,
      query: url.search.slice(1),
      httpVersion: exchange.httpVersion,
    };
    this.#log.push(record);
    const bodyBytes = await readBody(req);
    const hasBody = bodyBytes.length > 0;
    const contentType = String(req.headers["content-type"] ?? "").split(";")[0].trim();
    if (hasBody) {
      record.contentType = contentType;
      try {
        // client-go clients that ask for protobuf (Go Multus's thin plugin) write with it too.
        record.body = contentType === KUBE_PROTOBUF
          ? decodeKubeProtobuf(bodyBytes)
          : JSON.parse(new TextDecoder().decode(bodyBytes));
      } catch { /* kept unparsed: answered 400 below */ }
    }
    const { auth, user } = this.#authenticate(req, exchange.tls);
    record.auth = auth;
    if (user) record.user = user;

    const respond = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      record.durationMs = performance.now() - started;
      this.#send(exchange, status, body, headers);
    };

    // Faults, in order: latency, then the first hang/drop/status that matches.
    const matches = (f: ActiveFault) =>
      f.kind !== "refuse" && faultMatches(f, method, url.pathname);
    const latency = this.#takeFault((f) => f.kind === "latency" && matches(f));
    if (latency) {
      record.fault = "latency";
      await this.#delay(latency.ms ?? 0);
      if (this.#closed) return;
    }
    const fault = this.#takeFault((f) => f.kind !== "latency" && matches(f));
    if (fault) {
      record.fault = fault.kind;
      if (fault.kind === "hang") return;
      if (fault.kind === "drop") {
        this.#dropConnectionOf(exchange);
        return;
      }
      const status = fault.status ?? 500;
      const headers: Record<string, string> = {};
      if (fault.body !== undefined) {
        respond(status, fault.body);
        return;
      }
      const body = statusBody(status, fault.message ?? defaultMessage(status, url.pathname));
      if (fault.retryAfter !== undefined) {
        headers["Retry-After"] = String(fault.retryAfter);
        body.details = { ...body.details, retryAfterSeconds: fault.retryAfter };
      }
      respond(status, body, headers);
      return;
    }

    if (!user) {
      respond(401, statusBody(401, "Unauthorized"));
      return;
    }
    let parsedBody: unknown;
    if (hasBody) {
      if (record.body === undefined) {
        respond(400, statusBody(400, "the request body is not valid JSON"));
        return;
      }
      parsedBody = record.body;
    }
    const ctx: RequestContext = {
      method,
      path: url.pathname,
      user,
      contentType,
      body: parsedBody,
      query: url.searchParams,
    };
    const answer = this.#route(ctx);
    if (ctx.verb) record.verb = ctx.verb;
    if ("watch" in answer) {
      record.status = 200;
      record.durationMs = performance.now() - started;
      this.#openWatch(exchange, answer.watch);
      return;
    }
    respond(answer.status, answer.body);
  }

  /** Starts a watch answer: headers now, then one line per event until it ends. */
  #openWatch(exchange: Exchange, plan: WatchPlan): void {
    if (this.#closed) return;
    const sink = exchange.stream(200, { "Content-Type": "application/json" });
    const watch = this.#hub.open(plan.selection, sink, plan);
    exchange.onClose(() => watch.close("reset"));
  }

  /** Destroys the connection a request came on, as a network failure would. */
  #dropConnectionOf(exchange: Exchange): void {
    const socket = exchange.remotePort === undefined
      ? undefined
      : this.#connections.get(exchange.remotePort);
    if (socket) socket.destroy();
    else exchange.abort();
  }

  #authenticate(
    req: Http2ServerRequest | IncomingMessage,
    socket: TLSSocket,
  ): { auth: AuthKind; user?: string } {
    const peer = socket.getPeerCertificate?.();
    const hasCert = !!peer && Object.keys(peer).length > 0;
    if (hasCert && socket.authorized) {
      const cn = peer.subject?.CN;
      return { auth: "cert", user: Array.isArray(cn) ? cn[0] : cn };
    }
    const header = String(req.headers["authorization"] ?? "");
    const bearer = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
    if (bearer && bearer === this.#token) return { auth: "token", user: SERVICE_ACCOUNT_USER };
    if (bearer) return { auth: "invalid-token" };
    return { auth: hasCert ? "untrusted-cert" : "none" };
  }

  #route(ctx: RequestContext): Answer {
    if (ctx.path === "/version" && ctx.method === "GET") {
      return { status: 200, body: { major: "1", minor: "33", gitVersion: "v1.33.0-test" } };
    }
    const collection = this.#collectionRoute(ctx);
    if (collection) return collection;
    const dra = this.#draRoute(ctx);
    if (dra) return dra;
    let m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/status)?$/.exec(ctx.path);
    if (m) {
      const [ns, name] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
      const subresource = m[3] ? "status" : "";
      const resource = subresource ? "pods/status" : "pods";
      const handlers: Record<string, [string, Handler]> = {
        GET: ["get", () => this.#getObject(this.#pods, "pods", ns, name)],
        PATCH: ["patch", (c) => this.#patchPod(c, { ns, name, subresource })],
        PUT: ["update", (c) => this.#putPod(c, { ns, name, subresource })],
      };
      return this.#dispatch(ctx, { handlers, resource, ns, name, group: "" });
    }
    m =
      /^\/apis\/k8s\.cni\.cncf\.io\/v1\/namespaces\/([^/]+)\/network-attachment-definitions\/([^/]+)$/
        .exec(ctx.path);
    if (m) {
      const [ns, name] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
      const handlers: Record<string, [string, Handler]> = {
        GET: ["get", () => this.#getObject(this.#nads, NAD_RESOURCE, ns, name, NAD_GROUP)],
      };
      return this.#dispatch(ctx, { handlers, resource: NAD_RESOURCE, ns, name, group: NAD_GROUP });
    }
    m = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(ctx.path);
    if (m) {
      const ns = decodeURIComponent(m[1]);
      const handlers: Record<string, [string, Handler]> = {
        POST: ["create", (c) => this.#createEvent(c, ns)],
      };
      return this.#dispatch(ctx, { handlers, resource: "events", ns, group: "" });
    }
    return {
      status: 404,
      body: {
        ...statusBody(404, "the server could not find the requested resource"),
        details: {},
      },
    };
  }

  /** Lists and watches of pods and NADs (all namespaces or one) and of ResourceSlices. */
  #collectionRoute(ctx: RequestContext): Answer | undefined {
    let collection: Collection | undefined;
    let m = /^\/api\/v1(?:\/namespaces\/([^/]+))?\/pods$/.exec(ctx.path);
    if (m) {
      collection = {
        resource: "pods",
        group: "",
        kind: "Pod",
        apiVersion: "v1",
        store: this.#pods as Map<string, StoredObject>,
        fields: POD_FIELDS,
        itemsKeepTypeMeta: false,
      };
    } else if ((m = /^\/apis\/resource\.k8s\.io\/v1\/resourceslices$/.exec(ctx.path))) {
      collection = {
        resource: "resourceslices",
        group: DRA_GROUP,
        kind: "ResourceSlice",
        apiVersion: `${DRA_GROUP}/v1`,
        store: this.#slices as Map<string, StoredObject>,
        fields: RESOURCE_SLICE_FIELDS,
        itemsKeepTypeMeta: false,
      };
    } else {
      m =
        /^\/apis\/k8s\.cni\.cncf\.io\/v1(?:\/namespaces\/([^/]+))?\/network-attachment-definitions$/
          .exec(ctx.path);
      if (!m) return undefined;
      collection = {
        resource: NAD_RESOURCE,
        group: NAD_GROUP,
        kind: "NetworkAttachmentDefinition",
        apiVersion: `${NAD_GROUP}/v1`,
        store: this.#nads as Map<string, StoredObject>,
        fields: CUSTOM_RESOURCE_FIELDS,
        itemsKeepTypeMeta: true,
      };
    }
    const ns = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
    const watching = ["1", "true"].includes(ctx.query.get("watch") ?? "");
    const handlers: Record<string, [string, Handler]> = {
      GET: [watching ? "watch" : "list", (c) => this.#listOrWatch(c, collection, ns, watching)],
    };
    return this.#dispatch(ctx, {
      handlers,
      resource: collection.resource,
      ns: ns ?? "",
      group: collection.group,
    });
  }

  #listOrWatch(
    ctx: RequestContext,
    collection: Collection,
    namespace: string | undefined,
    watching: boolean,
  ): Answer {
    const selector = parseFieldSelector(ctx.query.get("fieldSelector"), collection.fields);
    if ("error" in selector) return { status: 400, body: statusBody(400, selector.error) };
    if (ctx.query.get("labelSelector")) {
      return {
        status: 400,
        body: statusBody(400, "labelSelector is not supported by the test API server"),
      };
    }
    const rvText = ctx.query.get("resourceVersion") ?? "";
    const rv = rvText === "" || rvText === "0" ? undefined : Number(rvText);
    if (rv !== undefined && !(Number.isSafeInteger(rv) && rv > 0)) {
      return { status: 400, body: statusBody(400, `invalid resource version: "${rvText}"`) };
    }
    const current = [...collection.store.values()]
      .filter((obj) => selects(obj, namespace, selector))
      .sort((a, b) => objectKey(a).localeCompare(objectKey(b)));
    if (watching) {
      const timeoutText = ctx.query.get("timeoutSeconds");
      const timeout = timeoutText === null ? undefined : Number(timeoutText);
      if (timeout !== undefined && !(Number.isFinite(timeout) && timeout >= 0)) {
        return {
          status: 400,
          body: statusBody(400, `invalid timeoutSeconds: "${timeoutText}"`),
        };
      }
      return {
        status: 200,
        watch: {
          selection: {
            resource: collection.resource,
            namespace,
            selector,
            bookmarks: ctx.query.get("allowWatchBookmarks") === "true",
            kind: collection.kind,
            apiVersion: collection.apiVersion,
          },
          fromRevision: rv,
          initial: current,
          // As kube-apiserver: 0 means its default (here: none).
          timeoutMs: timeout ? timeout * 1000 : undefined,
        },
      };
    }
    // kube-apiserver answers a list at a compacted version as it does a watch: 410.
    if (rv !== undefined && rv < this.#hub.oldestRevision) {
      return {
        status: 410,
        body: statusBody(410, `too old resource version: ${rv} (${this.#hub.oldestRevision})`),
      };
    }
    return {
      status: 200,
      body: listBody(collection, current, this.#revision),
    };
  }

  /** resource.k8s.io/v1: get a ResourceClaim (ResourceSlices are a collection). */
  #draRoute(ctx: RequestContext): Answer | undefined {
    const m = /^\/apis\/resource\.k8s\.io\/v1\/namespaces\/([^/]+)\/resourceclaims\/([^/]+)$/
      .exec(ctx.path);
    if (m) {
      const [ns, name] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
      const handlers: Record<string, [string, Handler]> = {
        GET: ["get", () => this.#getObject(this.#claims, "resourceclaims", ns, name, DRA_GROUP)],
      };
      return this.#dispatch(ctx, {
        handlers,
        resource: "resourceclaims",
        ns,
        name,
        group: DRA_GROUP,
      });
    }
    return undefined;
  }

  #dispatch(
    ctx: RequestContext,
    route: {
      handlers: Record<string, [string, Handler]>;
      resource: string;
      /** Empty for a cluster-wide request. */
      ns: string;
      name?: string;
      group: string;
    },
  ): Answer {
    const entry = route.handlers[ctx.method];
    if (!entry) {
      return {
        status: 405,
        body: statusBody(405, `the server does not allow this method on the requested resource`),
      };
    }
    const [verb, handler] = entry;
    ctx.verb = verb;
    if (this.#forbidden.has(`${verb} ${route.resource}`)) {
      const base = route.resource.split("/")[0];
      const qualified = route.group ? `${base}.${route.group}` : base;
      const what = route.name ? `${qualified} "${route.name}"` : qualified;
      const scope = route.ns ? `in the namespace "${route.ns}"` : "at the cluster scope";
      const body = statusBody(
        403,
        `${what} is forbidden: User "${ctx.user}" cannot ${verb} resource "${route.resource}" in API group "${route.group}" ${scope}`,
      );
      body.details = {
        ...(route.name ? { name: route.name } : {}),
        ...(route.group ? { group: route.group } : {}),
        kind: base,
      };
      return { status: 403, body };
    }
    return handler(ctx);
  }

  #getObject<T>(
    store: Map<string, T>,
    kind: string,
    ns: string,
    name: string,
    group = "",
  ): { status: number; body: unknown } {
    const obj = store.get(`${ns}/${name}`);
    if (!obj) return notFound(kind, name, group);
    return { status: 200, body: obj };
  }

  #patchPod(
    ctx: RequestContext,
    target: { ns: string; name: string; subresource: string },
  ): { status: number; body: unknown } {
    const accepted = ["application/merge-patch+json", "application/strategic-merge-patch+json"];
    if (!accepted.includes(ctx.contentType)) {
      return {
        status: 415,
        body: statusBody(
          415,
          "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
        ),
      };
    }
    const key = `${target.ns}/${target.name}`;
    const current = this.#pods.get(key);
    if (!current) return notFound("pods", target.name);
    if (!isObj(ctx.body)) {
      return { status: 400, body: statusBody(400, "the patch is not a JSON object") };
    }
    // For annotations and labels a strategic merge patch is a JSON merge patch.
    const patched = mergePatch(current, ctx.body) as Pod;
    return this.#store(current, patched, target);
  }

  #putPod(
    ctx: RequestContext,
    target: { ns: string; name: string; subresource: string },
  ): { status: number; body: unknown } {
    const key = `${target.ns}/${target.name}`;
    const current = this.#pods.get(key);
    if (!current) return notFound("pods", target.name);
    const pod = ctx.body as Pod;
    if (!isObj(pod) || !isObj(pod.metadata)) {
      return { status: 400, body: statusBody(400, "the request body is not a Pod") };
    }
    if (pod.metadata.name !== target.name) {
      return {
        status: 400,
        body: statusBody(
          400,
          `the name of the object (${pod.metadata.name}) does not match the name on the URL (${target.name})`,
        ),
      };
    }
    if (pod.metadata.namespace && pod.metadata.namespace !== target.ns) {
      return {
        status: 400,
        body: statusBody(
          400,
          "the namespace of the provided object does not match the namespace sent on the request",
        ),
      };
    }
    return this.#store(current, structuredClone(pod), target);
  }

  /** Checks preconditions, applies subresource rules, bumps resourceVersion, stores. */
  #store(
    current: Pod,
    next: Pod,
    target: { ns: string; name: string; subresource: string },
  ): { status: number; body: unknown } {
    const meta = next.metadata ?? { name: target.name };
    if (meta.uid && meta.uid !== current.metadata.uid) {
      return conflict(
        target.name,
        `StorageError: invalid object, Code: 4, Key: /registry/pods/${target.ns}/${target.name}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: ${meta.uid}, UID in object meta: ${current.metadata.uid}`,
      );
    }
    if (meta.resourceVersion && meta.resourceVersion !== current.metadata.resourceVersion) {
      return conflict(
        target.name,
        "the object has been modified; please apply your changes to the latest version and try again",
      );
    }
    for (const field of ["annotations", "labels"] as const) {
      const values = meta[field];
      if (values === undefined) continue;
      if (!isObj(values) || Object.values(values).some((v) => typeof v !== "string")) {
        return {
          status: 400,
          body: statusBody(400, `metadata.${field}: values must be strings`),
        };
      }
    }
    const stored: Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        ...meta,
        name: current.metadata.name,
        namespace: current.metadata.namespace,
        uid: current.metadata.uid,
        resourceVersion: String(++this.#revision),
      },
      // pods/status keeps the spec; the main resource keeps the status.
      spec: target.subresource === "status" ? current.spec : next.spec,
      status: target.subresource === "status" ? next.status : current.status,
    };
    if (stored.spec === undefined) delete stored.spec;
    if (stored.status === undefined) delete stored.status;
    this.#commit("pods", this.#pods, `${target.ns}/${target.name}`, stored);
    return { status: 200, body: stored };
  }

  #createEvent(ctx: RequestContext, ns: string): { status: number; body: unknown } {
    const event = ctx.body as Record<string, unknown>;
    if (!isObj(event) || event.kind !== "Event" || !isObj(event.metadata)) {
      return { status: 400, body: statusBody(400, "the request body is not an Event") };
    }
    const meta = event.metadata as Record<string, unknown>;
    if (meta.namespace !== undefined && meta.namespace !== ns) {
      return {
        status: 400,
        body: statusBody(
          400,
          "the namespace of the provided object does not match the namespace sent on the request",
        ),
      };
    }
    const name = meta.name;
    if (typeof name !== "string" || !name) {
      return invalid(
        "events",
        "",
        "metadata.name: Required value: name or generateName is required",
      );
    }
    const involved = event.involvedObject as Record<string, unknown> | undefined;
    if (!isObj(involved) || involved.namespace !== ns) {
      return invalid(
        "events",
        name,
        `involvedObject.namespace: Invalid value: "${
          involved?.namespace ?? ""
        }": does not match event.namespace`,
      );
    }
    if (this.#events.has(`${ns}/${name}`)) {
      const body = statusBody(409, `events "${name}" already exists`);
      body.reason = "AlreadyExists";
      body.details = { name, kind: "events" };
      return { status: 409, body };
    }
    const stored = {
      ...event,
      metadata: {
        ...meta,
        namespace: ns,
        uid: crypto.randomUUID(),
        resourceVersion: String(++this.#revision),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      },
    };
    this.#events.set(`${ns}/${name}`, stored);
    return { status: 201, body: stored };
  }

  #takeFault(predicate: (f: ActiveFault) => boolean): ActiveFault | undefined {
    const fault = this.#faults.find((f) => f.remaining > 0 && predicate(f));
    if (fault) fault.remaining--;
    return fault;
  }

  #send(
    exchange: Exchange,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    exchange.send(status, {
      "Content-Type": "application/json",
      "Content-Length": String(new TextEncoder().encode(text).length),
      ...headers,
    }, text);
  }

  #delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const id = setTimeout(() => {
        this.#timers.delete(id);
        resolve();
      }, ms);
      this.#timers.add(id);
    });
  }

  async #writeKubeconfig(options: WriteKubeconfigOptions): Promise<string> {
    const n = ++this.#kubeconfigs;
    const path = options.path ?? `${this.#dir}/kubeconfig-${n}`;
    const inDir = dirOf(path) === this.#dir;
    const ref = (file: string) => (inDir ? file.slice(this.#dir.length + 1) : file);
    const read = (file: string) => Deno.readTextFile(file);
    const b64 = (text: string) => btoa(text);

    const cluster: Record<string, unknown> = {
      server: options.server ?? `https://127.0.0.1:${this.#port}`,
    };
    const tls = options.tls ?? "caData";
    if (tls === "caData") cluster["certificate-authority-data"] = b64(this.#certs.caPem);
    if (tls === "caFile") cluster["certificate-authority"] = ref(this.#certs.caFile);
    if (tls === "insecure") cluster["insecure-skip-tls-verify"] = true;
    if (options.tlsServerName) cluster["tls-server-name"] = options.tlsServerName;

    const user: Record<string, unknown> = {};
    switch (options.auth ?? "token") {
      case "token":
        user.token = this.#token;
        break;
      case "wrongToken":
        user.token = randomToken();
        break;
      case "tokenFile": {
        const file = `${this.#dir}/token-${n}`;
        await Deno.writeTextFile(file, `${this.#token}\n`, { mode: 0o600 });
        user.tokenFile = ref(file);
        break;
      }
      case "cert":
        user["client-certificate-data"] = b64(await read(this.#certs.clientCertFile));
        user["client-key-data"] = b64(await read(this.#certs.clientKeyFile));
        break;
      case "certFile":
        user["client-certificate"] = ref(this.#certs.clientCertFile);
        user["client-key"] = ref(this.#certs.clientKeyFile);
        break;
      case "rogueCert":
        user["client-certificate-data"] = b64(await read(this.#certs.rogueCertFile));
        user["client-key-data"] = b64(await read(this.#certs.rogueKeyFile));
        break;
      case "none":
        break;
    }

    let text: string;
    if (options.format === "json") {
      text = JSON.stringify(
        {
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "local", cluster }],
          users: [{ name: "multus", user }],
          contexts: [{ name: "multus-context", context: { cluster: "local", user: "multus" } }],
          "current-context": "multus-context",
        },
        null,
        2,
      );
    } else {
      const lines = (obj: Record<string, unknown>) =>
        Object.entries(obj).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`).join("\n");
      text = [
        "# Kubeconfig file for Multus CNI plugin.",
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: local",
        "  cluster:",
        lines(cluster),
        "users:",
        "- name: multus",
        Object.keys(user).length ? `  user:\n${lines(user)}` : "  user: {}",
        "contexts:",
        "- name: multus-context",
        "  context:",
        "    cluster: local",
        "    user: multus",
        "current-context: multus-context",
        "",
      ].join("\n");
    }
    await Deno.writeTextFile(path, text, { mode: 0o600 });
    return path;
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of this.#timers) clearTimeout(id);
    this.#timers.clear();
    this.#hub.close();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await closed;
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

/** The same request/answer interface over an HTTP/2 stream or an HTTP/1.1 exchange. */
function exchangeOf(
  req: Http2ServerRequest | IncomingMessage,
  res: Http2ServerResponse | ServerResponse,
): Exchange {
  if (req.httpVersion === "2.0") {
    const stream = (req as Http2ServerRequest).stream;
    return http2Exchange(stream, stream.session!.socket as TLSSocket);
  }
  const response = res as ServerResponse;
  const socket = (req as IncomingMessage).socket as TLSSocket;
  return {
    httpVersion: req.httpVersion,
    tls: socket,
    remotePort: socket.remotePort,
    send(status, headers, text) {
      // Headers and body leave in one write when the body is given to end().
      response.writeHead(status, headers);
      response.end(text);
    },
    stream(status, headers) {
      response.writeHead(status, headers); // no Content-Length: chunked
      response.flushHeaders();
      return {
        write: (line) => void response.write(line),
        end: () => void response.end(),
        reset: () => void socket.destroy(),
      };
    },
    onClose(fn) {
      response.once("close", fn);
    },
    abort() {
      socket.destroy();
    },
  };
}

function http2Exchange(stream: ServerHttp2Stream, tls: TLSSocket): Exchange {
  // A stream reset by either side emits 'error'; nothing to do about it here.
  stream.on("error", () => {});
  const headersOf = (status: number, headers: Record<string, string>) => {
    const out: Record<string, string | number> = { ":status": status };
    for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
    return out;
  };
  return {
    httpVersion: "2.0",
    tls,
    remotePort: tls.remotePort,
    send(status, headers, text) {
      if (stream.destroyed || stream.closed) return;
      // The HEADERS and DATA frames would go in separate writes: hold them, release together.
      tls.cork();
      try {
        stream.respond(headersOf(status, headers));
        stream.end(text);
      } finally {
        setImmediate(() => {
          try {
            tls.uncork();
          } catch { /* session gone */ }
        });
      }
    },
    stream(status, headers) {
      stream.respond(headersOf(status, headers));
      return {
        write: (line) => void stream.write(line),
        end: () => void stream.end(),
        reset: () => void stream.destroy(new Error("watch dropped by the test API server")),
      };
    },
    onClose(fn) {
      stream.once("close", fn);
    },
    abort() {
      stream.destroy(new Error("dropped by the test API server"));
    },
  };
}

/** A `<Kind>List` answer; built-in kinds list their items without type meta. */
function listBody(
  collection: { kind: string; apiVersion: string; itemsKeepTypeMeta: boolean },
  items: { apiVersion?: string; kind?: string }[],
  revision: number,
): Record<string, unknown> {
  return {
    kind: `${collection.kind}List`,
    apiVersion: collection.apiVersion,
    metadata: { resourceVersion: String(revision) },
    items: collection.itemsKeepTypeMeta
      ? items
      : items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest),
  };
}

function objectKey(obj: StoredObject): string {
  return `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
}

function faultMatches(fault: Fault, method: string, path: string): boolean {
  if (fault.method && fault.method.toUpperCase() !== method) return false;
  if (fault.path === undefined) return true;
  if (fault.path instanceof RegExp) return fault.path.test(path);
  if (fault.path.endsWith("*")) return path.startsWith(fault.path.slice(0, -1));
  return path === fault.path;
}

function statusBody(code: number, message: string): KubeStatus {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason: REASONS[code] ?? "Unknown",
    code,
  };
}

function notFound(kind: string, name: string, group = ""): { status: number; body: KubeStatus } {
  const qualified = group ? `${kind}.${group}` : kind;
  const body = statusBody(404, `${qualified} "${name}" not found`);
  body.details = { name, ...(group ? { group } : {}), kind };
  return { status: 404, body };
}

function conflict(name: string, why: string): { status: number; body: KubeStatus } {
  const body = statusBody(409, `Operation cannot be fulfilled on pods "${name}": ${why}`);
  body.details = { name, kind: "pods" };
  return { status: 409, body };
}

function invalid(kind: string, name: string, cause: string): { status: number; body: KubeStatus } {
  const kindName = kind === "events" ? "Event" : kind;
  const body = statusBody(422, `${kindName} "${name}" is invalid: ${cause}`);
  body.details = {
    name,
    kind: kindName,
    causes: [{ reason: "FieldValueInvalid", message: cause }],
  };
  return { status: 422, body };
}

/** What kube-apiserver says for an injected status. */
function defaultMessage(status: number, path: string): string {
  const name = path.split("/").filter(Boolean).at(-1) ?? "";
  switch (status) {
    case 401:
      return "Unauthorized";
    case 403:
      return `forbidden: injected 403 for ${path}`;
    case 404:
      return `pods "${name}" not found`;
    case 409:
      return `Operation cannot be fulfilled on pods "${name}": the object has been modified; please apply your changes to the latest version and try again`;
    case 422:
      return `Pod "${name}" is invalid: injected`;
    case 429:
      return "Too many requests, please try again later.";
    case 500:
      return "Internal error occurred: injected";
    case 503:
      return "the server is currently unable to handle the request";
    default:
      return `injected ${status}`;
  }
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObj(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

function isObj(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readBody(req: IncomingMessage | Http2ServerRequest): Promise<Uint8Array> {
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", () => {
      const size = chunks.reduce((n, c) => n + c.length, 0);
      const all = new Uint8Array(size);
      let offset = 0;
      for (const c of chunks) {
        all.set(c, offset);
        offset += c.length;
      }
      resolve(all);
    });
    req.on("error", () => resolve(new Uint8Array()));
  });
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `test-token-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function dirOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(stderr)}`);
  }
}

/** A CA, a server certificate, a client certificate, and a rogue CA with its client. */
async function generateCertificates(dir: string): Promise<Certificates> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const makeCa = (name: string, cn: string) =>
    openssl(dir, [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-subj",
      `/CN=${cn}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ]);
  const makeLeaf = async (name: string, options: { ca: string; subj: string; ext: string }) => {
    await openssl(dir, [
      "req",
      "-new",
      ...ec,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      options.subj,
    ]);
    await Deno.writeTextFile(`${dir}/${name}.ext`, options.ext);
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${options.ca}.crt`,
      "-CAkey",
      `${options.ca}.key`,
      "-set_serial",
      String(Math.floor(Math.random() * 2 ** 31)),
      "-days",
      "2",
      "-out",
      `${name}.crt`,
      "-extfile",
      `${name}.ext`,
    ]);
  };
  const clientExt =
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";
  await Promise.all([makeCa("ca", "test-apiserver-ca"), makeCa("rogue-ca", "rogue-ca")]);
  await Promise.all([
    makeLeaf("server", {
      ca: "ca",
      subj: "/CN=kube-apiserver",
      ext: "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n" +
        "extendedKeyUsage=serverAuth\n" +
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n",
    }),
    makeLeaf("client", { ca: "ca", subj: "/O=system:nodes/CN=system:node:test", ext: clientExt }),
    makeLeaf("rogue-client", {
      ca: "rogue-ca",
      subj: "/O=system:nodes/CN=system:node:test",
      ext: clientExt,
    }),
  ]);
  const read = (file: string) => Deno.readTextFile(`${dir}/${file}`);
  return {
    caFile: `${dir}/ca.crt`,
    caPem: await read("ca.crt"),
    serverCertPem: await read("server.crt"),
    serverKeyPem: await read("server.key"),
    clientCertFile: `${dir}/client.crt`,
    clientKeyFile: `${dir}/client.key`,
    rogueCertFile: `${dir}/rogue-client.crt`,
    rogueKeyFile: `${dir}/rogue-client.key`,
  };
}
