/**
 * @module
 * Prometheus metrics in the text exposition format (version 0.0.4): counters, gauges (set or
 * read when scraped) and histograms with fixed buckets, all with labels, and the HTTP server
 * that serves them at `/metrics`.
 *
 * Hand-written: npm `prom-client` 15.1.3 is CommonJS that pulls `node:http`, `node:https`,
 * `node:zlib`, `node:cluster` and `node:util` (plus tdigest/bintrees and
 * `@opentelemetry/api`); the daemon lives in the plugin's bundle, where those imports are
 * hoisted into every plugin start (measured bundled: ~+80 ms of CPU per start).
 */

/** Label values by label name. */
export type Labels = Record<string, string>;

interface Metric {
  render(): string[];
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

function labelText(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts = names.map((name, i) => `${name}="${escapeLabel(values[i])}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

/** Series of one metric, keyed by their label values. */
class Series<T> {
  #names: readonly string[];
  #byKey = new Map<string, { values: string[]; state: T }>();
  #create: () => T;

  constructor(names: readonly string[], create: () => T) {
    this.#names = names;
    this.#create = create;
  }

  get(labels: Labels): T {
    const values = this.#names.map((name) => {
      const value = labels[name];
      if (value === undefined) throw new TypeError(`Missing label "${name}"`);
      return value;
    });
    const key = JSON.stringify(values);
    let entry = this.#byKey.get(key);
    if (!entry) {
      entry = { values, state: this.#create() };
      this.#byKey.set(key, entry);
    }
    return entry.state;
  }

  entries(): { values: string[]; state: T }[] {
    return [...this.#byKey.values()];
  }
}

/** A value that only goes up. */
export class Counter implements Metric {
  readonly name: string;
  #help: string;
  #labels: readonly string[];
  #series: Series<{ value: number }>;

  constructor(name: string, help: string, labels: readonly string[] = []) {
    this.name = name;
    this.#help = help;
    this.#labels = labels;
    this.#series = new Series(labels, () => ({ value: 0 }));
  }

  /** Adds `by` (default 1) to the series of `labels`. */
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`A counter cannot go down (${by})`);
    this.#series.get(labels).value += by;
  }

  /** The current value of a series (0 when never incremented). */
  value(labels: Labels = {}): number {
    return this.#series.get(labels).value;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.#help)}`, `# TYPE ${this.name} counter`];
    for (const { values, state } of this.#series.entries()) {
      lines.push(`${this.name}${labelText(this.#labels, values)} ${formatValue(state.value)}`);
    }
    return lines;
  }
}

/** A value that goes up and down: set, or read from `collect` at every scrape. */
export class Gauge implements Metric {
  readonly name: string;
  #help: string;
  #labels: readonly string[];
  #series: Series<{ value: number }>;
  #collect?: (gauge: Gauge) => void;

  constructor(
    name: string,
    help: string,
    options: { labels?: readonly string[]; collect?: (gauge: Gauge) => void } = {},
  ) {
    this.name = name;
    this.#help = help;
    this.#labels = options.labels ?? [];
    this.#series = new Series(this.#labels, () => ({ value: 0 }));
    this.#collect = options.collect;
  }

  set(labels: Labels, value: number): void {
    this.#series.get(labels).value = value;
  }

  render(): string[] {
    this.#collect?.(this);
    const lines = [`# HELP ${this.name} ${escapeHelp(this.#help)}`, `# TYPE ${this.name} gauge`];
    for (const { values, state } of this.#series.entries()) {
      lines.push(`${this.name}${labelText(this.#labels, values)} ${formatValue(state.value)}`);
    }
    return lines;
  }
}

/** Observations counted in fixed buckets (cumulative, as Prometheus expects), sum and count. */
export class Histogram implements Metric {
  readonly name: string;
  #help: string;
  #labels: readonly string[];
  #bounds: readonly number[];
  #series: Series<{ counts: number[]; sum: number; count: number }>;

  constructor(
    name: string,
    help: string,
    buckets: readonly number[],
    labels: readonly string[] = [],
  ) {
    this.name = name;
    this.#help = help;
    this.#labels = labels;
    this.#bounds = [...buckets].sort((a, b) => a - b);
    this.#series = new Series(labels, () => ({
      counts: this.#bounds.map(() => 0),
      sum: 0,
      count: 0,
    }));
  }

  observe(labels: Labels, value: number): void {
    const s = this.#series.get(labels);
    for (let i = 0; i < this.#bounds.length; i++) if (value <= this.#bounds[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  render(): string[] {
    const lines = [
      `# HELP ${this.name} ${escapeHelp(this.#help)}`,
      `# TYPE ${this.name} histogram`,
    ];
    for (const { values, state } of this.#series.entries()) {
      this.#bounds.forEach((bound, i) => {
        const le = `le="${formatValue(bound)}"`;
        lines.push(`${this.name}_bucket${labelText(this.#labels, values, le)} ${state.counts[i]}`);
      });
      lines.push(
        `${this.name}_bucket${labelText(this.#labels, values, 'le="+Inf"')} ${state.count}`,
        `${this.name}_sum${labelText(this.#labels, values)} ${formatValue(state.sum)}`,
        `${this.name}_count${labelText(this.#labels, values)} ${state.count}`,
      );
    }
    return lines;
  }
}

/** A counter whose series are read from elsewhere at every scrape. */
export class ObservedCounter implements Metric {
  readonly name: string;
  #help: string;
  #labels: readonly string[];
  #read: () => { labels: Labels; value: number }[];

  constructor(
    name: string,
    help: string,
    labels: readonly string[],
    read: () => { labels: Labels; value: number }[],
  ) {
    this.name = name;
    this.#help = help;
    this.#labels = labels;
    this.#read = read;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.#help)}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.#read()) {
      const values = this.#labels.map((name) => labels[name] ?? "");
      lines.push(`${this.name}${labelText(this.#labels, values)} ${formatValue(value)}`);
    }
    return lines;
  }
}

/** The metrics of one process, rendered together. */
export class MetricsRegistry {
  #metrics: Metric[] = [];
  #names = new Set<string>();

  /** Adds a metric; throws on a duplicate name. */
  register<T extends Metric & { name: string }>(metric: T): T {
    if (this.#names.has(metric.name)) throw new TypeError(`Duplicate metric "${metric.name}"`);
    this.#names.add(metric.name);
    this.#metrics.push(metric);
    return metric;
  }

  /** The text exposition of every metric. */
  render(): string {
    return this.#metrics.flatMap((m) => m.render()).join("\n") + "\n";
  }
}

/** Content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A running `/metrics` server. */
export interface MetricsServer {
  /** The port it listens on. */
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `registry` at `GET /metrics` on `hostname:port` (404 elsewhere). `beforeScrape`
 * runs first (e.g. to read counters kept in files).
 */
export function serveMetrics(
  registry: MetricsRegistry,
  options: { hostname: string; port: number; beforeScrape?: () => void },
): MetricsServer {
  const server = Deno.serve(
    { hostname: options.hostname, port: options.port, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      if (path !== "/metrics") return new Response("not found\n", { status: 404 });
      if (request.method !== "GET" && request.method !== "HEAD") {
        return new Response("Method not allowed\n", { status: 405 });
      }
      options.beforeScrape?.();
      return new Response(registry.render(), { headers: { "Content-Type": METRICS_CONTENT_TYPE } });
    },
  );
  return { port: server.addr.port, close: () => server.shutdown() };
}
