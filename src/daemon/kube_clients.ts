/**
 * @module
 * The daemon's API clients: one per kubeconfig, shared by every request that names it, so
 * each keeps its connection (HTTP/2 when the server offers it) warm between pods. The
 * daemon's own client is kept for its lifetime; clients of other kubeconfigs that requests
 * name are kept in a small least-recently-used set. No client-side rate limit: the daemon's
 * request limiter bounds how many requests run at once. Every API call is counted by verb,
 * resource and result.
 */

import type { KubeCredentials } from "../k8s/kubeconfig.ts";
import { KubeClient, type KubeClientOptions } from "../k8s/client.ts";
import { K8sApiError } from "../k8s/errors.ts";
import type { ApiResource, NetworkAttachmentDefinition, Pod } from "../k8s/types.ts";
import type { WatchEvent } from "../k8s/types.ts";
import type { MultusNetConf } from "../multus/config/netconf.ts";
import { openKubeClient } from "../multus/kube/session.ts";

/** API calls made, by verb, resource and result (`ok`, `error`). */
export class ApiCallCounts {
  readonly #counts = new Map<string, number>();

  /** Counts one call. */
  add(verb: string, resource: string, ok: boolean): void {
    const key = `${verb}\t${resource}\t${ok ? "ok" : "error"}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  /** Every count, with its labels. */
  entries(): { labels: { verb: string; resource: string; result: string }; value: number }[] {
    return [...this.#counts].map(([key, value]) => {
      const [verb, resource, result] = key.split("\t");
      return { labels: { verb, resource, result }, value };
    });
  }
}

/**
 * A {@linkcode KubeClient} whose calls are counted (a call: retries included), and which
 * says when the server rejected its credentials (401).
 */
export class CountedKubeClient extends KubeClient {
  readonly #counts: ApiCallCounts;
  readonly #onUnauthorized: () => void;

  constructor(
    credentials: KubeCredentials,
    options: KubeClientOptions,
    counts: ApiCallCounts,
    onUnauthorized: () => void = () => {},
  ) {
    super(credentials, options);
    this.#counts = counts;
    this.#onUnauthorized = onUnauthorized;
  }

  override getPod(namespace: string, name: string): Promise<Pod> {
    return this.#count("get", "pods", super.getPod(namespace, name));
  }

  override getNetworkAttachmentDefinition(
    namespace: string,
    name: string,
  ): Promise<NetworkAttachmentDefinition> {
    return this.#count(
      "get",
      "network-attachment-definitions",
      super.getNetworkAttachmentDefinition(namespace, name),
    );
  }

  override getResourceClaim(...args: Parameters<KubeClient["getResourceClaim"]>) {
    return this.#count("get", "resourceclaims", super.getResourceClaim(...args));
  }

  override setPodAnnotations(
    pod: Pod,
    annotations: Record<string, string | null>,
    options?: { partial?: boolean },
  ): Promise<Pod> {
    return this.#count("patch", "pods/status", super.setPodAnnotations(pod, annotations, options));
  }

  override createEvent(...args: Parameters<KubeClient["createEvent"]>) {
    return this.#count("create", "events", super.createEvent(...args));
  }

  override list<T>(...args: Parameters<KubeClient["list"]>) {
    return this.#count("list", args[0].plural, super.list<T>(...args));
  }

  override async *watch<T>(
    resource: ApiResource,
    options?: Parameters<KubeClient["watch"]>[1],
  ): AsyncGenerator<WatchEvent<T>, void, undefined> {
    try {
      yield* super.watch<T>(resource, options);
      this.#counts.add("watch", resource.plural, true);
    } catch (err) {
      this.#counts.add("watch", resource.plural, false);
      this.#noteFailure(err);
      throw err;
    }
  }

  async #count<T>(verb: string, resource: string, call: Promise<T>): Promise<T> {
    try {
      const value = await call;
      this.#counts.add(verb, resource, true);
      return value;
    } catch (err) {
      this.#counts.add(verb, resource, false);
      this.#noteFailure(err);
      throw err;
    }
  }

  #noteFailure(err: unknown): void {
    if (err instanceof K8sApiError && err.status === 401) this.#onUnauthorized();
  }
}

/** Options of {@linkcode KubeClientPool}. */
export interface KubeClientPoolOptions {
  /** Clients of kubeconfigs other than the daemon's kept at once (default 4). */
  maxOthers?: number;
  /** Where the calls of every client are counted. */
  counts: ApiCallCounts;
  /**
   * How a client is made (default: as the thin plugin does, but counted); it calls
   * `onUnauthorized` when the server rejects its credentials.
   */
  open?: (
    conf: MultusNetConf,
    env: Record<string, string | undefined>,
    onUnauthorized: () => void,
  ) => Promise<KubeClient | undefined>;
}

/** The client key of a configuration: its kubeconfig path, or the in-cluster environment. */
export function clientKey(
  conf: Pick<MultusNetConf, "kubeconfig">,
  env: Record<string, string | undefined>,
): string | undefined {
  if (conf.kubeconfig !== "") return conf.kubeconfig;
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) return "<in-cluster>";
  return undefined;
}

/**
 * Shared clients by kubeconfig. The first client opened for `pinnedKey` is kept; others are
 * kept up to `maxOthers`, the least recently used closed (after a grace, as a request may
 * still be using it) when another is needed. A client whose credentials the server rejected
 * (401: a rotated token or certificate) is let go the same way: the next request opens the
 * kubeconfig again and reads the credentials anew, as the thin plugin does at every start.
 */
export class KubeClientPool {
  readonly #maxOthers: number;
  readonly #counts: ApiCallCounts;
  readonly #open: NonNullable<KubeClientPoolOptions["open"]>;
  /** Insertion order is recency: a hit moves its entry to the end. */
  readonly #clients = new Map<string, Promise<KubeClient | undefined>>();
  readonly #pinned: string | undefined;
  /** Evicted clients waiting for their grace to end, with their timers. */
  readonly #evicted = new Map<Promise<KubeClient | undefined>, ReturnType<typeof setTimeout>>();
  #closed = false;

  constructor(pinnedKey: string | undefined, options: KubeClientPoolOptions) {
    this.#pinned = pinnedKey;
    this.#maxOthers = options.maxOthers ?? 4;
    this.#counts = options.counts;
    this.#open = options.open ??
      ((conf, env, onUnauthorized) => this.#openCounted(conf, env, onUnauthorized));
  }

  /** Clients open now (the pinned one included). */
  get size(): number {
    return this.#clients.size;
  }

  /**
   * The shared client of `conf`'s kubeconfig (or of the in-cluster environment), opened on
   * first use; undefined without API access. A client that cannot be opened (an unreadable
   * kubeconfig) is not kept: the next request tries again.
   */
  async client(
    conf: MultusNetConf,
    env: Record<string, string | undefined>,
  ): Promise<KubeClient | undefined> {
    if (this.#closed) throw new TypeError("Cannot use a closed KubeClientPool");
    const key = clientKey(conf, env);
    if (key === undefined) return undefined;
    let opening = this.#clients.get(key);
    if (opening) {
      this.#clients.delete(key);
      this.#clients.set(key, opening);
      return await opening;
    }
    opening = this.#open(conf, env, () => {
      if (this.#clients.get(key) === opening) this.#retire(key);
    });
    this.#clients.set(key, opening);
    opening.catch(() => {
      if (this.#clients.get(key) === opening) this.#clients.delete(key);
    });
    this.#evict();
    return await opening;
  }

  /** Closes every client. */
  close(): void {
    this.#closed = true;
    for (const [opening, timer] of this.#evicted) {
      clearTimeout(timer);
      closeWhenOpen(opening);
    }
    this.#evicted.clear();
    for (const opening of this.#clients.values()) closeWhenOpen(opening);
    this.#clients.clear();
  }

  #evict(): void {
    const others = [...this.#clients.keys()].filter((key) => key !== this.#pinned);
    for (const key of others.slice(0, Math.max(0, others.length - this.#maxOthers))) {
      this.#retire(key);
    }
  }

  /** Forgets the client of `key`; closes it once any request using it would have given up. */
  #retire(key: string): void {
    const opening = this.#clients.get(key);
    if (!opening) return;
    this.#clients.delete(key);
    const timer = setTimeout(() => {
      this.#evicted.delete(opening);
      closeWhenOpen(opening);
    }, EVICTED_CLIENT_GRACE_MS);
    Deno.unrefTimer(timer);
    this.#evicted.set(opening, timer);
  }

  async #openCounted(
    conf: MultusNetConf,
    env: Record<string, string | undefined>,
    onUnauthorized: () => void,
  ): Promise<KubeClient | undefined> {
    const counts = this.#counts;
    // The thin plugin's loading (files bounded in size and time), with a counted client.
    return await openKubeClient(
      conf,
      env,
      (credentials, options) => new CountedKubeClient(credentials, options, counts, onUnauthorized),
    );
  }
}

function closeWhenOpen(opening: Promise<KubeClient | undefined>): void {
  opening.then((client) => client?.close(), () => {});
}

/** How long an evicted client stays open for the requests that still use it. */
const EVICTED_CLIENT_GRACE_MS = 5 * 60_000;
