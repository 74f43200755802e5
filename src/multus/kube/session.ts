/**
 * @module
 * A request's session with the API server: the client (this request's own, or a daemon's
 * shared one) and the reads this request made, so a pod naming one network twice costs one
 * request and the pod read started early is the one ADD uses. A session lives as long as
 * its request; only the client and its connections may be shared.
 */

import { KubeClient, type KubeClientOptions, type PodEventOptions } from "../../k8s/client.ts";
import { K8sApiError } from "../../k8s/errors.ts";
import type { NetworkAttachmentDefinition, Pod } from "../../k8s/types.ts";
import {
  inClusterCredentials,
  type KubeCredentials,
  loadKubeconfig,
} from "../../k8s/kubeconfig.ts";
import { errorMessage } from "../../util/errors.ts";
import type { Invocation, KubeSession } from "../config/invocation.ts";
import type { MultusNetConf } from "../config/netconf.ts";

/**
 * Objects a daemon's watch caches hold, for its requests to read before asking the server.
 * Each answer is the cache's own trimmed copy, or undefined when the server must be asked.
 */
export interface KubeObjectCache {
  /** The pod with this UID, or undefined (not cached, another UID, the cache not synced). */
  pod(namespace: string, name: string, uid: string): Pod | undefined;
  /** The NetworkAttachmentDefinition, or undefined (not cached, the cache not synced). */
  nad(namespace: string, name: string): NetworkAttachmentDefinition | undefined;
}

/** Takes events to post later, off the request's path (a daemon's bounded queue). */
export interface EventSink {
  /** Queues the event (or drops and counts it when the queue is full); never throws. */
  post(client: KubeClient, pod: Pod, event: PodEventOptions): void;
}

/** What a request's session is built on: a client and, in a daemon, what goes with it. */
export interface KubeAccess {
  client: KubeClient;
  /** Read first, before asking the server; absent in the thin plugin. */
  cache?: KubeObjectCache;
  /** Where events go; absent: posted by the request itself. */
  events?: EventSink;
  /**
   * A client to use instead once the server rejected `client`'s credentials (401: a token
   * or certificate rotated since a long-lived client read them); absent in the thin
   * plugin, which reads them at every start.
   */
  reopen?: () => Promise<KubeClient | undefined>;
}

/** Opens the API access a configuration names; undefined without API access. */
export type OpenKubeAccess = (
  conf: MultusNetConf,
  env: Record<string, string | undefined>,
) => Promise<KubeAccess | undefined>;

/** Makes the client once the credentials are loaded (a daemon's counts its calls). */
export type MakeKubeClient = (
  credentials: KubeCredentials,
  options: KubeClientOptions,
) => KubeClient;

/**
 * The client of a configuration: from `kubeconfig` when set, else from the in-cluster
 * environment, else none (delegates and files only).
 */
export async function openKubeClient(
  conf: MultusNetConf,
  env: Record<string, string | undefined>,
  make: MakeKubeClient = (credentials, options) => new KubeClient(credentials, options),
): Promise<KubeClient | undefined> {
  const total = conf.apiTimeoutSeconds * 1000;
  const requestTimeoutMs = Math.min(10_000, total);
  // Each credential file gets the time of one API request.
  const options = { readTimeoutMs: requestTimeoutMs };
  let credentials;
  if (conf.kubeconfig !== "") credentials = await loadKubeconfig(conf.kubeconfig, options);
  else if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) {
    credentials = await inClusterCredentials(env, undefined, options);
  } else return undefined;
  return make(credentials, { totalTimeoutMs: total, requestTimeoutMs });
}

/** The thin plugin's access: its own client, no caches, events posted directly. */
async function openOwnAccess(
  conf: MultusNetConf,
  env: Record<string, string | undefined>,
): Promise<KubeAccess | undefined> {
  const client = await openKubeClient(conf, env);
  return client ? { client } : undefined;
}

/** Opens the session of one request, or undefined when there is no API access. */
export async function openKubeSession(
  inv: Pick<Invocation, "conf" | "env" | "pod" | "log">,
  open: OpenKubeAccess = openOwnAccess,
): Promise<KubeSession | undefined> {
  const access = await open(inv.conf, inv.env);
  return access ? new RequestKubeSession(access, inv) : undefined;
}

/**
 * A {@linkcode KubeSession} that remembers its reads for the length of one request. With a
 * cache, the pod of the request's UID and the NADs it holds are taken from it; anything
 * else (a pod created just now, another UID, a NAD created just now, a cache not synced
 * yet) costs one direct read, since the server may be ahead of the watch.
 */
class RequestKubeSession implements KubeSession {
  client: KubeClient;
  readonly #reopen: KubeAccess["reopen"];
  readonly #cache: KubeObjectCache | undefined;
  readonly #events: EventSink | undefined;
  readonly #uid: string;
  readonly #log: Invocation["log"];
  readonly #nads = new Map<string, Promise<NetworkAttachmentDefinition>>();
  #podRead: { key: string; read: Promise<Pod> } | undefined;
  /** Pods handed out from the cache: trimmed, so an update must read the whole pod first. */
  readonly #trimmed = new WeakSet<Pod>();

  constructor(access: KubeAccess, inv: Pick<Invocation, "pod" | "log">) {
    this.client = access.client;
    this.#reopen = access.reopen;
    this.#cache = access.cache;
    this.#events = access.events;
    this.#uid = inv.pod?.uid ?? "";
    this.#log = inv.log;
  }

  readNad(namespace: string, name: string): Promise<NetworkAttachmentDefinition> {
    const key = `${namespace}/${name}`;
    let read = this.#nads.get(key);
    if (!read) {
      const cached = this.#cache?.nad(namespace, name);
      read = cached
        ? Promise.resolve(structuredClone(cached))
        : this.#call((c) => c.getNetworkAttachmentDefinition(namespace, name));
      this.#nads.set(key, read);
    }
    return read;
  }

  readPod(namespace: string, name: string): Promise<Pod> {
    const key = `${namespace}/${name}`;
    if (this.#podRead?.key !== key) {
      // Only a request that names its pod's UID can tell the cached pod is the right one.
      const cached = this.#uid ? this.#cache?.pod(namespace, name, this.#uid) : undefined;
      let read: Promise<Pod>;
      if (cached) {
        const copy = structuredClone(cached);
        this.#trimmed.add(copy);
        read = Promise.resolve(copy);
      } else {
        read = this.#call((c) => c.getPod(namespace, name));
        // Awaited later by the caller; a failure must not surface as an unhandled rejection
        // when ADD stops earlier for another reason.
        read.catch(() => {});
      }
      this.#podRead = { key, read };
    }
    return this.#podRead.read;
  }

  async setPodAnnotations(pod: Pod, annotations: Record<string, string | null>): Promise<void> {
    const partial = this.#trimmed.has(pod);
    await this.#call((c) => c.setPodAnnotations(pod, annotations, { partial }));
  }

  /**
   * Makes a call; when the server rejects the credentials and the access can reopen the
   * client (a daemon's, after a token rotation), once more with the new client.
   */
  async #call<T>(call: (client: KubeClient) => Promise<T>): Promise<T> {
    const used = this.client;
    try {
      return await call(used);
    } catch (err) {
      if (!(err instanceof K8sApiError) || err.status !== 401 || !this.#reopen) throw err;
      const fresh = this.client !== used ? this.client : await this.#reopen();
      if (!fresh || fresh === used) throw err;
      this.client = fresh;
      return await call(fresh);
    }
  }

  async postEvent(pod: Pod, event: PodEventOptions): Promise<void> {
    if (this.#events) {
      this.#events.post(this.client, pod, event);
      return;
    }
    try {
      await this.client.createEvent(pod, event);
    } catch (err) {
      this.#log.verbose(`event "${event.message}" not sent: ${errorMessage(err)}`);
    }
  }
}

/**
 * Starts reading the pod while the rest of ADD loads: the first HTTPS request of a process
 * pays for the TLS client's set-up. Errors are left for the real read to report.
 */
export function prefetchPod(inv: Invocation): void {
  const pod = inv.pod;
  if (!pod) return;
  inv.kube().then((session) => {
    if (session) session.readPod(pod.namespace, pod.name);
  }).catch(() => {});
}
