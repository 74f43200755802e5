/**
 * @module
 * A watch cache of one resource (a reflector and informer, as client-go's): it lists, then
 * watches from the list's resourceVersion with bookmarks, and keeps the objects, trimmed by a
 * caller-given function, in memory by `namespace/name`. A 410 Gone lists again; a watch that
 * ends or fails opens again from the last resourceVersion, after an exponential backoff with
 * jitter when it was not healthy. Every wait has a bound and {@linkcode WatchCache.stop}
 * ends them all.
 */

import { backoffDelay, type BackoffOptions, sleep } from "../util/backoff.ts";
import type { KubeClient } from "./client.ts";
import { K8sApiError } from "./errors.ts";
import type { ApiResource, KubeObject } from "./types.ts";

/** What a cache needs of a client: {@linkcode KubeClient.list} and {@linkcode KubeClient.watch}. */
export type ListWatchClient = Pick<KubeClient, "list" | "watch">;

/** One change of the cached set, as {@linkcode WatchCacheOptions.onChange} receives it. */
export interface CacheChange<T> {
  type: "ADDED" | "MODIFIED" | "DELETED";
  /** `namespace/name`, or `name` for a cluster-scoped object. */
  key: string;
  /** The object now; for `DELETED`, its last state. */
  object: T;
  /** The object before, for `MODIFIED` and `DELETED` (absent if it was never cached). */
  previous?: T;
  /** True when a list found the change (after a 410 or a lost watch), not a watch event. */
  fromList: boolean;
}

/** Counters and state of a {@linkcode WatchCache}. */
export interface WatchCacheStats {
  /** Objects cached. */
  size: number;
  /** The last resourceVersion seen (list, event or bookmark); empty before the first list. */
  resourceVersion: string;
  /** True once the first list has been applied. */
  synced: boolean;
  /** True while a watch is open. */
  watching: boolean;
  /** When the last list was applied (`Date.now()`). */
  lastListAt?: number;
  /** When the last event or bookmark arrived (`Date.now()`). */
  lastEventAt?: number;
  /**
   * How long the cache may have missed changes, in milliseconds: 0 while a watch is open,
   * else the time since the last watch ended (or since start, before the first list).
   */
  staleMs: number;
  /** Lists made, the first included. */
  lists: number;
  /** Lists after the first: 410 Gone, an oversized or malformed event. */
  relists: number;
  /** Watches opened again from the last resourceVersion, without a list. */
  reconnects: number;
  /** ADDED, MODIFIED and DELETED events applied. */
  events: number;
  /** Bookmarks received. */
  bookmarks: number;
  /** Watches answered with 410 Gone. */
  expired: number;
  /** Event lines over the size limit. */
  oversizedEvents: number;
  /** Watches ended because the server sent nothing for the idle timeout. */
  idleTimeouts: number;
  /** Failed lists and watches (refused, dropped, error answers, timeouts). */
  errors: number;
  /** The last backoff waited, in milliseconds (0 before any). */
  lastBackoffMs: number;
  /** The message of the last error. */
  lastError?: string;
}

/** Options of a {@linkcode WatchCache}. */
export interface WatchCacheOptions<T> {
  /** The client to list and watch with (not closed by the cache). */
  client: ListWatchClient;
  /** The resource: `POD_RESOURCE`, `NAD_RESOURCE`, … */
  resource: ApiResource;
  /** Only this namespace; all when absent. */
  namespace?: string;
  /** A field selector, e.g. `spec.nodeName=<node>`. */
  fieldSelector?: string;
  /** Cuts each object down to what is kept (`trimPod`, `trimNad`); default: all of it. */
  trim?: (object: T) => T;
  /** Called for every change, synchronously, in order; what it throws is logged and ignored. */
  onChange?: (change: CacheChange<T>) => void;
  /** Where the cache reports what it does (default: nowhere). */
  log?: (level: "debug" | "warn", message: string) => void;
  /** Backoff after failures (default: from 200 ms, doubling, capped at 30 s). */
  backoff?: Partial<BackoffOptions>;
  /**
   * Each watch asks the server to end it after a random time in [n, 2n) seconds (default 300,
   * as client-go), so that a node's caches do not all reconnect at once.
   */
  watchTimeoutSeconds?: number;
  /** Longest silence of an open watch (default: the client's, 120 s). */
  idleTimeoutMs?: number;
  /** Longest event line (default: the client's, 4 MiB); a longer one is counted, then a relist. */
  maxEventBytes?: number;
  /**
   * A watch that stayed open this long, or delivered an event, was healthy: the backoff starts
   * over (default 1000 ms). A watch that ends sooner without one counts as a failure.
   */
  healthyAfterMs?: number;
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 30_000 };

/** How one watch ended. */
type WatchOutcome = "ended" | "expired" | "failed" | "resync" | "stopped";

/**
 * An in-memory, self-updating copy of one resource.
 *
 * @example
 * ```ts ignore
 * const pods = new WatchCache<Pod>({
 *   client,
 *   resource: POD_RESOURCE,
 *   fieldSelector: `spec.nodeName=${node}`,
 *   trim: trimPod,
 * });
 * pods.start();
 * if (await pods.waitForSync({ timeoutMs: 10_000 })) pods.get("default", "web");
 * await pods.stop();
 * ```
 */
export class WatchCache<T extends KubeObject> {
  #client: ListWatchClient;
  #resource: ApiResource;
  #namespace: string | undefined;
  #fieldSelector: string | undefined;
  #trim: (object: T) => T;
  #onChange: ((change: CacheChange<T>) => void) | undefined;
  #log: (level: "debug" | "warn", message: string) => void;
  #backoff: BackoffOptions;
  #watchTimeoutSeconds: number;
  #idleTimeoutMs: number | undefined;
  #maxEventBytes: number | undefined;
  #healthyAfterMs: number;

  #items = new Map<string, T>();
  #resourceVersion = "";
  #controller = new AbortController();
  #running: Promise<void> | undefined;
  #synced = false;
  #syncWaiters = new Set<(synced: boolean) => void>();
  #watching = false;
  /** `performance.now()` when the cache was last known complete (see `staleMs`). */
  #freshAt = performance.now();
  #stats = {
    lastListAt: undefined as number | undefined,
    lastEventAt: undefined as number | undefined,
    lists: 0,
    relists: 0,
    reconnects: 0,
    events: 0,
    bookmarks: 0,
    expired: 0,
    oversizedEvents: 0,
    idleTimeouts: 0,
    errors: 0,
    lastBackoffMs: 0,
    lastError: undefined as string | undefined,
  };

  constructor(options: WatchCacheOptions<T>) {
    this.#client = options.client;
    this.#resource = options.resource;
    this.#namespace = options.namespace;
    this.#fieldSelector = options.fieldSelector;
    this.#trim = options.trim ?? ((object) => object);
    this.#onChange = options.onChange;
    this.#log = options.log ?? (() => {});
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#watchTimeoutSeconds = options.watchTimeoutSeconds ?? 300;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#maxEventBytes = options.maxEventBytes;
    this.#healthyAfterMs = options.healthyAfterMs ?? 1000;
  }

  /** Starts listing and watching (once; a stopped cache does not start again). */
  start(): void {
    if (this.#running || this.#controller.signal.aborted) return;
    this.#freshAt = performance.now();
    this.#running = this.#run();
  }

  /** Stops: ends the open request or wait, and resolves once nothing is left running. */
  async stop(): Promise<void> {
    this.#controller.abort();
    await this.#running;
    for (const waiter of [...this.#syncWaiters]) waiter(false);
  }

  /**
   * The cached object, or undefined; `namespace` empty or absent for cluster-scoped ones.
   * The object is the cache's own: read it, do not change it.
   */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.#items.get(namespace ? `${namespace}/${name}` : name);
  }

  /** Every cached object. */
  values(): IterableIterator<T> {
    return this.#items.values();
  }

  /** How many objects are cached. */
  get size(): number {
    return this.#items.size;
  }

  /** True once the first list has been applied (the cache may still lag the server). */
  get synced(): boolean {
    return this.#synced;
  }

  /** The last resourceVersion seen. */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /**
   * Waits for the first list, at most `timeoutMs`.
   *
   * @returns true once synced; false at the deadline, on abort, or when the cache stops.
   */
  waitForSync(options: { timeoutMs: number; signal?: AbortSignal }): Promise<boolean> {
    if (this.#synced) return Promise.resolve(true);
    if (this.#controller.signal.aborted || options.signal?.aborted) {
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      const done = (synced: boolean) => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        this.#syncWaiters.delete(done);
        resolve(synced);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), options.timeoutMs);
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.#syncWaiters.add(done);
    });
  }

  /** Counters and state, for logs and metrics. */
  stats(): WatchCacheStats {
    return {
      ...this.#stats,
      size: this.#items.size,
      resourceVersion: this.#resourceVersion,
      synced: this.#synced,
      watching: this.#watching,
      staleMs: this.#watching ? 0 : performance.now() - this.#freshAt,
    };
  }

  async #run(): Promise<void> {
    const signal = this.#controller.signal;
    let failures = 0;
    let listNeeded = true;
    while (!signal.aborted) {
      if (failures > 0) {
        const delay = backoffDelay(failures, this.#backoff);
        this.#stats.lastBackoffMs = delay;
        this.#log("debug", `${this.#what()}: next attempt in ${Math.round(delay)} ms`);
        if (!await sleep(delay, signal)) break;
      }
      if (listNeeded) {
        try {
          await this.#list(signal);
          listNeeded = false;
        } catch (err) {
          if (signal.aborted) break;
          this.#noteError("list", err);
          failures++;
          continue;
        }
      } else {
        this.#stats.reconnects++;
      }
      const { outcome, healthy } = await this.#watch(signal);
      if (outcome === "stopped") break;
      if (healthy) failures = 0;
      if (outcome === "expired" || outcome === "resync") listNeeded = true;
      // Reconnect (or list) at once after a healthy watch; back off after an unhealthy one.
      if (outcome === "failed" || !healthy) failures++;
    }
  }

  /** Lists and replaces the cached set, telling `onChange` what differs. */
  async #list(signal: AbortSignal): Promise<void> {
    const list = await this.#client.list<T>(this.#resource, {
      namespace: this.#namespace,
      fieldSelector: this.#fieldSelector,
      signal,
    });
    const resourceVersion = list.metadata?.resourceVersion;
    if (!resourceVersion) {
      throw new K8sApiError(`Cannot watch ${this.#what()}: the list has no resourceVersion`, {
        status: 200,
        reason: "InvalidResponse",
        verb: "list",
        path: "",
      });
    }
    const fresh = new Map<string, T>();
    for (const item of list.items) {
      if (typeof item?.metadata?.name !== "string") continue;
      const object = this.#trim(item);
      fresh.set(keyOf(object), object);
    }
    const previous = this.#items;
    this.#items = fresh;
    this.#resourceVersion = resourceVersion;
    this.#stats.lists++;
    if (this.#stats.lists > 1) this.#stats.relists++;
    this.#stats.lastListAt = Date.now();
    this.#freshAt = performance.now();
    this.#log("debug", `${this.#what()}: listed ${fresh.size} at ${resourceVersion}`);
    for (const [key, object] of fresh) {
      const before = previous.get(key);
      if (!before) this.#emit({ type: "ADDED", key, object, fromList: true });
      else if (before.metadata.resourceVersion !== object.metadata.resourceVersion) {
        this.#emit({ type: "MODIFIED", key, object, previous: before, fromList: true });
      }
    }
    for (const [key, before] of previous) {
      if (!fresh.has(key)) {
        this.#emit({ type: "DELETED", key, object: before, previous: before, fromList: true });
      }
    }
    if (!this.#synced) {
      this.#synced = true;
      for (const waiter of [...this.#syncWaiters]) waiter(true);
    }
  }

  /** One watch, from the last resourceVersion, applied until it ends. */
  async #watch(signal: AbortSignal): Promise<{ outcome: WatchOutcome; healthy: boolean }> {
    const opened = performance.now();
    let delivered = 0;
    const healthy = () => delivered > 0 || performance.now() - opened >= this.#healthyAfterMs;
    const timeoutSeconds = this.#watchTimeoutSeconds * (1 + Math.random());
    try {
      const events = this.#client.watch<T>(this.#resource, {
        namespace: this.#namespace,
        fieldSelector: this.#fieldSelector,
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
        idleTimeoutMs: this.#idleTimeoutMs,
        maxEventBytes: this.#maxEventBytes,
        signal,
        onOpen: () => {
          this.#watching = true;
        },
      });
      for await (const event of events) {
        this.#stats.lastEventAt = Date.now();
        if (event.type === "ERROR") {
          const status = event.object;
          if (status.code === 410) {
            this.#stats.expired++;
            this.#log("debug", `${this.#what()}: ${status.message ?? "410 Gone"}; listing again`);
            return { outcome: "expired", healthy: healthy() };
          }
          this.#noteError("watch", new Error(status.message ?? `error event ${status.code}`));
          return { outcome: "failed", healthy: false };
        }
        delivered++;
        const meta = event.object.metadata;
        if (event.type === "BOOKMARK") {
          this.#stats.bookmarks++;
          if (meta.resourceVersion) this.#resourceVersion = meta.resourceVersion;
          continue;
        }
        if (typeof meta.name !== "string" || !meta.resourceVersion) {
          this.#noteError("watch", new Error(`${event.type} event without name or version`));
          return { outcome: "resync", healthy: false };
        }
        this.#apply(event.type, event.object);
      }
      return { outcome: signal.aborted ? "stopped" : "ended", healthy: healthy() };
    } catch (err) {
      if (signal.aborted) return { outcome: "stopped", healthy: false };
      if (err instanceof K8sApiError) {
        if (err.status === 410) {
          this.#stats.expired++;
          return { outcome: "expired", healthy: false };
        }
        if (err.reason === "WatchEventTooLarge" || err.reason === "InvalidResponse") {
          if (err.reason === "WatchEventTooLarge") this.#stats.oversizedEvents++;
          this.#noteError("watch", err);
          return { outcome: "resync", healthy: false };
        }
        if (err.reason === "IdleTimeout") this.#stats.idleTimeouts++;
      }
      this.#noteError("watch", err);
      return { outcome: "failed", healthy: healthy() };
    } finally {
      this.#watching = false;
      this.#freshAt = performance.now();
    }
  }

  #apply(type: "ADDED" | "MODIFIED" | "DELETED", received: T): void {
    const object = this.#trim(received);
    const key = keyOf(object);
    const previous = this.#items.get(key);
    this.#resourceVersion = object.metadata.resourceVersion ?? this.#resourceVersion;
    this.#stats.events++;
    if (type === "DELETED") {
      this.#items.delete(key);
      this.#emit({ type, key, object, previous, fromList: false });
      return;
    }
    this.#items.set(key, object);
    if (previous) this.#emit({ type: "MODIFIED", key, object, previous, fromList: false });
    else this.#emit({ type: "ADDED", key, object, fromList: false });
  }

  #emit(change: CacheChange<T>): void {
    if (!this.#onChange) return;
    try {
      this.#onChange(change);
    } catch (err) {
      this.#log("warn", `${this.#what()}: the change handler failed on ${change.key}: ${err}`);
    }
  }

  #noteError(what: "list" | "watch", err: unknown): void {
    this.#stats.errors++;
    const message = err instanceof Error ? err.message : String(err);
    this.#stats.lastError = message;
    this.#log("warn", `${this.#what()}: ${what} failed: ${message}`);
  }

  #what(): string {
    let text = `${this.#resource.plural} cache`;
    if (this.#namespace !== undefined) text += ` of namespace "${this.#namespace}"`;
    if (this.#fieldSelector) text += ` (${this.#fieldSelector})`;
    return text;
  }
}

function keyOf(object: KubeObject): string {
  const { namespace, name } = object.metadata;
  return namespace ? `${namespace}/${name}` : name;
}
