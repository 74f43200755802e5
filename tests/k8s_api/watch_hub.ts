/**
 * @module
 * The watch side of the test API server: a bounded history of writes (each with its global
 * resourceVersion), field selectors, and the open watches that receive them as kube-apiserver
 * sends them: one JSON line per event, `ADDED`/`MODIFIED`/`DELETED` as the object enters,
 * changes in or leaves the selection, `BOOKMARK`s to watches that asked for them, and an
 * `ERROR` event with a 410 `Status` to a watch that starts before the oldest kept write.
 */

/** An object as stored by the test server. */
export interface StoredObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [key: string]: unknown;
}

/** One write, as the history keeps it. */
export interface HistoryEntry {
  /** Global resourceVersion of the write. */
  rv: number;
  /** Resource (`pods`, `network-attachment-definitions`). */
  resource: string;
  type: "ADDED" | "MODIFIED" | "DELETED";
  /** The object after the write (for `DELETED`, the last state, with the deletion's RV). */
  object: StoredObject;
  /** The object before the write, for `MODIFIED`. */
  previous?: StoredObject;
}

/** One term of a field selector: `field=value`, `field==value` or `field!=value`. */
export interface FieldRequirement {
  field: string;
  equals: boolean;
  value: string;
}

/** Where a watch's lines go: the HTTP/1.1 or HTTP/2 response of one request. */
export interface WatchSink {
  /** Writes one line (one write on the connection). */
  write(line: string): void;
  /** Ends the response cleanly (as a `timeoutSeconds` expiry does). */
  end(): void;
  /** Breaks the response off (reset stream or closed connection): the client sees an error. */
  reset(): void;
}

/** What one watch selects. */
export interface WatchSelection {
  resource: string;
  /** Only this namespace; all when absent. */
  namespace?: string;
  selector: FieldRequirement[];
  /** `allowWatchBookmarks=true`. */
  bookmarks: boolean;
  /** `kind` and `apiVersion` of the bookmark objects. */
  kind: string;
  apiVersion: string;
}

/**
 * Parses a field selector against the fields the resource supports.
 *
 * @returns The requirements, or the message of kube-apiserver's 400 answer.
 */
export function parseFieldSelector(
  text: string | null,
  supported: readonly string[],
): FieldRequirement[] | { error: string } {
  if (!text) return [];
  const out: FieldRequirement[] = [];
  for (const term of text.split(",")) {
    if (term === "") continue;
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term);
    if (!m) return { error: `invalid field selector: ${term}` };
    const field = m[1].trim();
    if (!supported.includes(field)) {
      return { error: `field label not supported: ${field}` };
    }
    out.push({ field, equals: m[2] !== "!=", value: m[3] });
  }
  return out;
}

/** True when `obj` has the namespace and passes every requirement. */
export function selects(
  obj: StoredObject,
  namespace: string | undefined,
  selector: readonly FieldRequirement[],
): boolean {
  if (namespace !== undefined && obj.metadata.namespace !== namespace) return false;
  return selector.every((r) => (fieldValue(obj, r.field) === r.value) === r.equals);
}

function fieldValue(obj: StoredObject, path: string): string {
  let current: unknown = obj;
  for (const part of path.split(".")) {
    if (typeof current !== "object" || current === null) return "";
    current = (current as Record<string, unknown>)[part];
  }
  if (current === undefined || current === null) return "";
  return String(current);
}

/** Options of a {@linkcode WatchHub}. */
export interface WatchHubOptions {
  /** Writes kept for watches that resume from an older resourceVersion. */
  historyLimit: number;
  /** The resourceVersion before the first write. */
  startRevision: number;
}

/** History and open watches of the test server. */
export class WatchHub {
  #history: HistoryEntry[] = [];
  #limit: number;
  /** Every write after this resourceVersion is still in the history. */
  #oldest: number;
  #watches = new Set<OpenWatch>();
  #latencyMs = 0;

  constructor(options: WatchHubOptions) {
    this.#limit = options.historyLimit;
    this.#oldest = options.startRevision;
  }

  /** The resourceVersion a watch must start at or after. */
  get oldestRevision(): number {
    return this.#oldest;
  }

  /** Watches open now. */
  get openWatches(): number {
    return this.#watches.size;
  }

  /** Delay of every watch event from now on, in milliseconds. */
  set latencyMs(ms: number) {
    this.#latencyMs = Math.max(0, ms);
  }

  get latencyMs(): number {
    return this.#latencyMs;
  }

  /** Records a write and sends it to the watches that select it. */
  record(entry: HistoryEntry): void {
    this.#history.push(entry);
    while (this.#history.length > this.#limit) {
      this.#oldest = this.#history.shift()!.rv;
    }
    for (const watch of this.#watches) watch.offer(entry);
  }

  /** Forgets every write up to `revision`: a watch from before it gets 410 Gone. */
  compact(revision: number): void {
    this.#history = this.#history.filter((e) => e.rv > revision);
    this.#oldest = Math.max(this.#oldest, revision);
  }

  /**
   * Opens a watch. From `fromRevision` it replays the kept writes after it (or answers 410
   * when they are gone); without one it starts with an `ADDED` for every object in `initial`.
   */
  open(
    selection: WatchSelection,
    sink: WatchSink,
    start: { fromRevision?: number; initial: StoredObject[]; timeoutMs?: number },
  ): { close(how: "reset" | "end"): void } {
    const watch = new OpenWatch(selection, sink, () => this.#latencyMs, () => {
      this.#watches.delete(watch);
    });
    this.#watches.add(watch);
    if (start.fromRevision !== undefined && start.fromRevision < this.#oldest) {
      watch.expire(start.fromRevision, this.#oldest);
      return watch;
    }
    if (start.fromRevision === undefined) {
      for (const obj of start.initial) watch.send("ADDED", obj);
    } else {
      for (const entry of this.#history) {
        if (entry.rv > start.fromRevision) watch.offer(entry);
      }
    }
    if (start.timeoutMs !== undefined) watch.endAfter(start.timeoutMs);
    return watch;
  }

  /** Sends a bookmark at `revision` to every watch that allows them; returns how many. */
  bookmark(revision: number): number {
    let n = 0;
    for (const watch of this.#watches) if (watch.bookmark(revision)) n++;
    return n;
  }

  /** Ends (cleanly) or breaks off every open watch; returns how many. */
  drop(how: "reset" | "end"): number {
    const watches = [...this.#watches];
    for (const watch of watches) watch.close(how);
    return watches.length;
  }

  /** Breaks off every watch and stops their timers. */
  close(): void {
    this.drop("reset");
  }
}

interface Pending {
  due: number;
  line: string;
  /** Ends the watch once sent. */
  last?: boolean;
}

/** One open watch: converts writes into its events and sends them, in order, after the latency. */
class OpenWatch {
  #selection: WatchSelection;
  #sink: WatchSink;
  #latency: () => number;
  #onClose: () => void;
  #queue: Pending[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    selection: WatchSelection,
    sink: WatchSink,
    latency: () => number,
    onClose: () => void,
  ) {
    this.#selection = selection;
    this.#sink = sink;
    this.#latency = latency;
    this.#onClose = onClose;
  }

  /** Sends `entry` if it concerns this watch, as the event the selection sees. */
  offer(entry: HistoryEntry): void {
    const { resource, namespace, selector } = this.#selection;
    if (entry.resource !== resource) return;
    const now = entry.type !== "DELETED" && selects(entry.object, namespace, selector);
    const before = entry.type === "DELETED"
      ? selects(entry.object, namespace, selector)
      : entry.previous !== undefined && selects(entry.previous, namespace, selector);
    if (now && before) this.send("MODIFIED", entry.object);
    else if (now) this.send("ADDED", entry.object);
    else if (before && entry.type === "DELETED") this.send("DELETED", entry.object);
    else if (before) {
      // Left the selection: kube-apiserver sends the previous state, at the new version.
      const gone = structuredClone(entry.previous!);
      gone.metadata.resourceVersion = String(entry.rv);
      this.send("DELETED", gone);
    }
  }

  send(type: string, object: StoredObject): void {
    this.#enqueue(JSON.stringify({ type, object }) + "\n");
  }

  bookmark(revision: number): boolean {
    if (!this.#selection.bookmarks || this.#closed) return false;
    const { kind, apiVersion } = this.#selection;
    this.send("BOOKMARK", {
      kind,
      apiVersion,
      metadata: { resourceVersion: String(revision) } as StoredObject["metadata"],
    });
    return true;
  }

  /** Answers a watch from a compacted resourceVersion: an ERROR event with 410, then the end. */
  expire(from: number, oldest: number): void {
    const status = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: `too old resource version: ${from} (${oldest})`,
      reason: "Expired",
      code: 410,
    };
    this.#enqueue(JSON.stringify({ type: "ERROR", object: status }) + "\n", true);
  }

  /** Ends the watch cleanly after `ms` (`timeoutSeconds`). */
  endAfter(ms: number): void {
    this.#deadline = setTimeout(() => this.close("end"), ms);
  }

  close(how: "reset" | "end"): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.#queue = [];
    this.#onClose();
    try {
      if (how === "end") this.#sink.end();
      else this.#sink.reset();
    } catch { /* connection already gone */ }
  }

  #enqueue(line: string, last = false): void {
    if (this.#closed) return;
    this.#queue.push({ due: performance.now() + this.#latency(), line, last });
    if (this.#timer === undefined) this.#flush();
  }

  #flush(): void {
    this.#timer = undefined;
    while (this.#queue.length > 0 && !this.#closed) {
      const head = this.#queue[0];
      const wait = head.due - performance.now();
      if (wait > 0) {
        this.#timer = setTimeout(() => this.#flush(), wait);
        return;
      }
      this.#queue.shift();
      try {
        this.#sink.write(head.line);
      } catch {
        this.close("reset");
        return;
      }
      if (head.last) this.close("end");
    }
  }
}
