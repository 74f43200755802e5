/**
 * @module
 * The daemon's Kubernetes access, as its requests get it: the shared clients, the watch
 * caches of the daemon's own API server (its `kubeconfig`, or the in-cluster environment)
 * and the event queue. A request whose configuration names another kubeconfig gets that
 * kubeconfig's shared client, without caches (they watch the daemon's own cluster only).
 */

import { applyOverlay, type ConfOverlay } from "../multus/config/conf_overlay.ts";
import { loadMultusNetConf, type MultusNetConf } from "../multus/config/netconf.ts";
import type { KubeAccess } from "../multus/kube/session.ts";
import type { ListWatchClient } from "../k8s/watch_cache.ts";
import { errorMessage } from "../util/errors.ts";
import { DaemonKubeCaches, type PodChangeListener } from "./kube_caches.ts";
import { EventQueue } from "./event_queue.ts";
import { ApiCallCounts, clientKey, KubeClientPool } from "./kube_clients.ts";

/** Options of {@linkcode DaemonKube}. */
export interface DaemonKubeOptions {
  /** The netconf keys of the daemon's configuration (its `kubeconfig`, `apiTimeoutSeconds`). */
  overlay: ConfOverlay;
  /** The node's name ("" when unknown: no pod cache). */
  nodeName: string;
  /** The daemon's environment (in-cluster API variables). */
  env: Record<string, string | undefined>;
  /** Where problems are reported. */
  log: (level: "debug" | "warn", message: string) => void;
  /** Backoff of the watches (tests shorten it). */
  backoff?: { initialMs?: number; maxMs?: number };
}

/** The shared clients, watch caches and event queue of a daemon. */
export class DaemonKube {
  /** API calls made by every client, by verb, resource and result. */
  readonly apiCalls: ApiCallCounts = new ApiCallCounts();
  /** The pod events waiting to be posted. */
  readonly events: EventQueue;
  readonly #pool: KubeClientPool;
  readonly #ownKey: string | undefined;
  readonly #ownConf: MultusNetConf | undefined;
  readonly #options: DaemonKubeOptions;
  #caches: DaemonKubeCaches | undefined;
  readonly #podListeners = new Set<PodChangeListener>();
  #stopped = false;

  constructor(options: DaemonKubeOptions) {
    this.#options = options;
    this.#ownConf = daemonNetConf(options.overlay, options.log);
    this.#ownKey = this.#ownConf ? clientKey(this.#ownConf, options.env) : undefined;
    this.#pool = new KubeClientPool(this.#ownKey, { counts: this.apiCalls });
    this.events = new EventQueue({ log: (message) => options.log("warn", message) });
  }

  /** The watch caches, once the daemon's own client is open; undefined before or without. */
  get caches(): DaemonKubeCaches | undefined {
    return this.#caches;
  }

  /**
   * Follows the node's pods: `listener` gets every change of the pod cache once the caches
   * run (they start with the daemon's own client), as {@linkcode DaemonKubeCaches.onPodChange}
   * gives them. May be called before they start. Returns the unsubscribe function.
   */
  onPodChange(listener: PodChangeListener): () => void {
    this.#podListeners.add(listener);
    return () => {
      this.#podListeners.delete(listener);
    };
  }

  /**
   * Opens the daemon's own client and starts the caches. A kubeconfig that cannot be read
   * yet is said; the next request that needs it tries again (and starts the caches then).
   */
  async start(): Promise<void> {
    if (!this.#ownConf || this.#ownKey === undefined) return;
    if (this.#options.nodeName === "") {
      this.#options.log(
        "warn",
        "no node name (MULTUS_NODE_NAME or --node-name): no pod cache, each request reads its pod from the API server",
      );
    }
    try {
      await this.access(this.#ownConf, this.#options.env);
    } catch (err) {
      this.#options.log(
        "warn",
        `cannot open the API client yet (${
          errorMessage(err)
        }); requests open it when they need it, and the watch caches start then`,
      );
    }
  }

  /** The access of one request's configuration (a daemon's `openKubeClient`). */
  access = async (
    conf: MultusNetConf,
    env: Record<string, string | undefined>,
  ): Promise<KubeAccess | undefined> => {
    const client = await this.#pool.client(conf, env);
    if (!client) return undefined;
    const reopen = () => this.#pool.client(conf, env);
    if (clientKey(conf, env) !== this.#ownKey || this.#stopped) {
      return { client, events: this.events, reopen };
    }
    if (!this.#caches) {
      this.#caches = new DaemonKubeCaches({
        client: this.#currentOwnClient(conf, env),
        nodeName: this.#options.nodeName,
        log: this.#options.log,
        backoff: this.#options.backoff,
      });
      this.#caches.onPodChange((change) => {
        for (const listener of [...this.#podListeners]) {
          try {
            listener(change);
          } catch (err) {
            this.#options.log("warn", `a pod change listener failed on ${change.key}: ${err}`);
          }
        }
      });
      this.#caches.start();
    }
    return { client, cache: this.#caches, events: this.events, reopen };
  };

  /**
   * The daemon's own client as the pool has it at each call: after a 401 the pool opens the
   * kubeconfig again, and the caches' next list or watch uses the new client.
   */
  #currentOwnClient(
    conf: MultusNetConf,
    env: Record<string, string | undefined>,
  ): ListWatchClient {
    const current = async () => {
      const client = await this.#pool.client(conf, env);
      if (!client) throw new Error("the daemon's API access is gone");
      return client;
    };
    return {
      list: async (resource, options) => await (await current()).list(resource, options),
      watch: async function* (resource, options) {
        yield* (await current()).watch(resource, options);
      },
    } as ListWatchClient;
  }

  /**
   * Stops the caches, gives the queued events `eventDeadlineMs` to be posted, and closes the
   * clients.
   *
   * @returns Events left unsent.
   */
  async stop(eventDeadlineMs: number): Promise<number> {
    this.#stopped = true;
    await this.#caches?.stop();
    const unsent = await this.events.close(eventDeadlineMs);
    this.#pool.close();
    return unsent;
  }
}

/** The daemon configuration's netconf keys read as a multus configuration; undefined if not. */
function daemonNetConf(
  overlay: ConfOverlay,
  log: DaemonKubeOptions["log"],
): MultusNetConf | undefined {
  const text = applyOverlay('{"cniVersion":"1.0.0","name":"daemon","type":"multus"}', overlay);
  try {
    return loadMultusNetConf(text);
  } catch (err) {
    log("warn", `cannot read the API settings of the daemon configuration: ${errorMessage(err)}`);
    return undefined;
  }
}
