/**
 * @module
 * The daemon's DRA objects: a bounded cache of the ResourceClaims its requests read, and a
 * watch cache of its node's ResourceSlices started at the first request that needs one (most
 * nodes never use DRA: no watch, no RBAC noise until a pod does). Where the slices cannot be
 * watched (403) each request lists them, as the thin plugin does, and the daemon says once
 * which RBAC rule to add.
 */

import type { KubeClient } from "../k8s/client.ts";
import { K8sApiError } from "../k8s/errors.ts";
import {
  RESOURCE_SLICE_RESOURCE,
  type ResourceClaim,
  type ResourceSlice,
  resourceSliceProblem,
} from "../k8s/types.ts";
import { type ListWatchClient, WatchCache, type WatchCacheStats } from "../k8s/watch_cache.ts";
import { ApiDraObjects, type DraObjects } from "../multus/kube/dra_objects.ts";
import { DEVICE_ID_ATTRIBUTE, RESOURCE_NAME_ATTRIBUTE } from "../multus/kube/dra_devices.ts";
import { ErrorCode } from "../util/errors.ts";

/** Options of {@linkcode DaemonDraObjects}. */
export interface DaemonDraObjectsOptions {
  /** The daemon's own client as it is at each call (a new one after a 401). */
  client: () => Promise<KubeClient>;
  /** The daemon's node ("" when unknown: every request lists its slices). */
  nodeName: string;
  /** Where problems are reported. */
  log: (level: "debug" | "warn", message: string) => void;
  /** Claims kept (default 512); the least recently used is dropped beyond. */
  maxClaims?: number;
  /** How long the first DRA request waits for the slice cache's list (default 5 s). */
  syncWaitMs?: number;
  /** After a 403, how long requests list their slices before the watch is tried again (10 min). */
  retryForbiddenMs?: number;
  /** Backoff of the slice watch (tests shorten it). */
  backoff?: { initialMs?: number; maxMs?: number };
}

/** Sizes and state of the DRA caches, for metrics. */
export interface DaemonDraStats {
  /** Claims cached. */
  claims: number;
  /** The node's slice cache; absent until the first DRA request, or while forbidden. */
  slices?: WatchCacheStats;
}

/**
 * A slice cache that has not heard from the server for this long (its watch down and
 * reconnecting) is not trusted: requests list their slices until it is back.
 */
const STALE_LIMIT_MS = 10_000;

/**
 * {@linkcode DraObjects} of a daemon, shared by its requests.
 *
 * Claims: each GET's answer is kept (at most `maxClaims`, least recently used dropped, and
 * dropped when a pod it is reserved for is deleted: {@linkcode forgetPod}). A kept claim
 * answers a request only when it has an allocation and its `status.reservedFor` names the
 * request's pod UID: the API server does not let an allocation change or go while the claim
 * is reserved for a pod, and a request for that pod means the pod still exists. Anything
 * else costs one GET.
 *
 * Slices: the node's (`spec.nodeName=<node>`), listed then watched, trimmed to the fields
 * read, filtered by driver in memory. A request for another node's slices, or while the
 * cache is not usable (not listed within `syncWaitMs`, watch down for more than 10 s,
 * forbidden), lists them as the thin plugin does.
 */
export class DaemonDraObjects implements DraObjects {
  readonly #options: DaemonDraObjectsOptions;
  readonly #maxClaims: number;
  /** Insertion order is recency: a hit moves its entry to the end. */
  readonly #claims = new Map<string, ResourceClaim>();
  #slices: WatchCache<ResourceSlice> | undefined;
  /** `performance.now()` when a list or watch of the slices was forbidden. */
  #forbiddenAt: number | undefined;
  #forbiddenSaid = false;
  readonly #stopping = new Set<Promise<void>>();
  #stopped = false;

  constructor(options: DaemonDraObjectsOptions) {
    this.#options = options;
    this.#maxClaims = options.maxClaims ?? 512;
  }

  async resourceClaim(namespace: string, name: string, podUid: string): Promise<ResourceClaim> {
    const key = `${namespace}/${name}`;
    const kept = this.#claims.get(key);
    if (kept && podUid !== "" && reservedFor(kept, podUid) && allocated(kept)) {
      this.#claims.delete(key);
      this.#claims.set(key, kept);
      return kept;
    }
    const claim = await this.#call((client) => client.getResourceClaim(namespace, name));
    this.#claims.delete(key);
    if (allocated(claim) && reservations(claim).length > 0) {
      this.#claims.set(key, trimClaim(claim));
      for (const old of this.#claims.keys()) {
        if (this.#claims.size <= this.#maxClaims) break;
        this.#claims.delete(old);
      }
    }
    return claim;
  }

  async resourceSlices(nodeName: string, driver: string): Promise<ResourceSlice[]> {
    const cache = nodeName !== "" && nodeName === this.#options.nodeName
      ? await this.#usableSlices()
      : undefined;
    if (!cache) {
      return await this.#call((client) =>
        new ApiDraObjects(client).resourceSlices(nodeName, driver)
      );
    }
    const slices: ResourceSlice[] = [];
    for (const slice of cache.values()) {
      const spec = (slice as { spec?: { driver?: unknown } }).spec;
      const sliceDriver = typeof spec === "object" && spec !== null ? spec.driver : undefined;
      if (typeof sliceDriver === "string" && sliceDriver !== driver) continue;
      const problem = resourceSliceProblem(slice);
      if (problem) {
        throw new K8sApiError(
          `Cannot read resourceslices (spec.nodeName=${nodeName}): the API server sent a ResourceSlice "${slice.metadata?.name}" whose${problem}`,
          {
            status: 200,
            reason: "InvalidResponse",
            verb: "watch",
            path: "/apis/resource.k8s.io/v1/resourceslices",
            code: ErrorCode.Internal,
          },
        );
      }
      slices.push(slice);
    }
    return slices;
  }

  /** Drops the claims reserved for the pod `uid` (deleted); returns how many. */
  forgetPod(uid: string): number {
    let dropped = 0;
    for (const [key, claim] of this.#claims) {
      if (reservedFor(claim, uid)) {
        this.#claims.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** Sizes and state. */
  stats(): DaemonDraStats {
    return { claims: this.#claims.size, slices: this.#slices?.stats() };
  }

  /** Stops the slice cache; resolves once its requests have ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const cache = this.#slices;
    this.#slices = undefined;
    await Promise.all([cache?.stop(), ...this.#stopping]);
  }

  /**
   * The slice cache once it has listed and is current; starts it at the first call. Undefined
   * (the request lists its slices) while forbidden, not listed within the wait, or stale.
   */
  async #usableSlices(): Promise<WatchCache<ResourceSlice> | undefined> {
    if (this.#stopped) return undefined;
    if (this.#forbiddenAt !== undefined) {
      const retryMs = this.#options.retryForbiddenMs ?? 10 * 60_000;
      if (performance.now() - this.#forbiddenAt < retryMs) return undefined;
      this.#forbiddenAt = undefined;
    }
    let cache = this.#slices;
    if (!cache) {
      cache = this.#slices = this.#newSliceCache();
      cache.start();
      this.#options.log("debug", `watching the ResourceSlices of node "${this.#options.nodeName}"`);
    }
    if (!cache.synced) {
      const synced = await cache.waitForSync({ timeoutMs: this.#options.syncWaitMs ?? 5000 });
      if (!synced) return undefined;
    }
    // Forbidden or stopped meanwhile: the cache was let go.
    if (this.#slices !== cache) return undefined;
    if (cache.stats().staleMs > STALE_LIMIT_MS) return undefined;
    return cache;
  }

  #newSliceCache(): WatchCache<ResourceSlice> {
    const current = this.#options.client;
    const forbidden = (verb: string, err: unknown) => {
      if (err instanceof K8sApiError && err.status === 403) this.#onForbidden(verb, err);
    };
    const client = {
      list: async (resource, options) => {
        try {
          return await (await current()).list(resource, options);
        } catch (err) {
          forbidden("list", err);
          throw err;
        }
      },
      watch: async function* (resource, options) {
        try {
          yield* (await current()).watch(resource, options);
        } catch (err) {
          forbidden("watch", err);
          throw err;
        }
      },
    } as ListWatchClient;
    return new WatchCache<ResourceSlice>({
      client,
      resource: RESOURCE_SLICE_RESOURCE,
      fieldSelector: `spec.nodeName=${this.#options.nodeName}`,
      trim: trimSlice,
      log: this.#options.log,
      backoff: this.#options.backoff,
    });
  }

  /** Lets the slice cache go: requests list their slices; says once what to grant. */
  #onForbidden(verb: string, err: K8sApiError): void {
    this.#forbiddenAt = performance.now();
    const cache = this.#slices;
    this.#slices = undefined;
    if (cache) {
      const stopping = cache.stop();
      this.#stopping.add(stopping);
      stopping.finally(() => this.#stopping.delete(stopping));
    }
    const what =
      `cannot ${verb} the ResourceSlices of node "${this.#options.nodeName}" (${err.message}); each request that needs them lists them instead`;
    if (this.#forbiddenSaid) {
      this.#options.log("debug", what);
      return;
    }
    this.#forbiddenSaid = true;
    this.#options.log(
      "warn",
      `${what}. To serve them from a watch, grant the daemon's account "list" and "watch" on "resourceslices": add the ClusterRole rule {apiGroups: ["resource.k8s.io"], resources: ["resourceslices"], verbs: ["list", "watch"]} (as in deploy/thick/10-rbac-daemon.yaml)`,
    );
  }

  /** A call with the daemon's client; once more with a new one after a 401. */
  async #call<T>(call: (client: KubeClient) => Promise<T>): Promise<T> {
    const used = await this.#options.client();
    try {
      return await call(used);
    } catch (err) {
      if (!(err instanceof K8sApiError) || err.status !== 401) throw err;
      const fresh = await this.#options.client();
      if (fresh === used) throw err;
      return await call(fresh);
    }
  }
}

interface Reservation {
  uid?: unknown;
  resource?: unknown;
}

function reservations(claim: ResourceClaim): Reservation[] {
  const reserved = claim.status?.reservedFor;
  return Array.isArray(reserved)
    ? reserved.filter((r): r is Reservation => typeof r === "object" && r !== null)
    : [];
}

/** True when `status.reservedFor` names the pod `uid`. */
function reservedFor(claim: ResourceClaim, uid: string): boolean {
  return reservations(claim).some((r) => r.uid === uid && (r.resource ?? "pods") === "pods");
}

function allocated(claim: ResourceClaim): boolean {
  const results = claim.status?.allocation?.devices?.results;
  return Array.isArray(results) && results.length > 0;
}

/** A claim cut down to what is read: metadata, the allocation's results, the reservations. */
function trimClaim(claim: ResourceClaim): ResourceClaim {
  const { name, namespace, uid, resourceVersion } = claim.metadata;
  return {
    apiVersion: claim.apiVersion,
    kind: claim.kind,
    metadata: { name, namespace, uid, resourceVersion },
    status: {
      allocation: { devices: { results: claim.status?.allocation?.devices?.results } },
      reservedFor: reservations(claim).map(({ uid, resource }) => ({ uid, resource })),
    },
  };
}

/**
 * A slice cut down to its driver, node, pool and each device's name and two network
 * attributes. A slice without the fields read is kept whole, for the request to say so.
 */
function trimSlice(slice: ResourceSlice): ResourceSlice {
  if (resourceSliceProblem(slice)) return slice;
  const { name, resourceVersion, uid } = slice.metadata;
  const { driver, nodeName, pool } = slice.spec;
  return {
    metadata: { name, resourceVersion, uid },
    spec: {
      driver,
      nodeName,
      pool: { name: pool.name, generation: pool.generation },
      devices: (slice.spec.devices ?? []).map((device) => {
        const attributes: Record<string, { string?: string }> = {};
        for (const key of [DEVICE_ID_ATTRIBUTE, RESOURCE_NAME_ATTRIBUTE]) {
          const value = device.attributes?.[key];
          if (value) attributes[key] = { string: value.string };
        }
        return { name: device.name, attributes };
      }),
    },
  };
}
