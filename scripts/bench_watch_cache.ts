/**
 * @module
 * What the watch caches cost: heap per cached pod and per NAD (trimmed and whole, realistic
 * objects), the RSS of a process holding a node's caches, and the time from a write to the
 * cache seeing it, over the test API server (HTTPS, HTTP/2, in a process of its own).
 *
 *     deno run --allow-all scripts/bench_watch_cache.ts [--quick]
 *
 * Roles (the script starts itself as children): `--serve` runs the API server and writes on
 * command; `--measure <config>` holds caches and prints its heap; `--latency` times writes.
 */

import { startTestApiServer, type TestApiServer } from "../tests/k8s_api/server.ts";
import { realisticNad, realisticPod } from "../tests/helpers/realistic_objects.ts";
import { KubeClient } from "../src/k8s/client.ts";
import { loadKubeconfig } from "../src/k8s/kubeconfig.ts";
import {
  NAD_RESOURCE,
  type NetworkAttachmentDefinition,
  type Pod,
  POD_RESOURCE,
  trimNad,
  trimPod,
} from "../src/k8s/types.ts";
import { WatchCache } from "../src/k8s/watch_cache.ts";

const NODE = "node-1";
const NODE_PODS = 110;
const OTHER_PODS = 400;
const NADS = 200;
const NAD_NAMESPACES = 20;
const WRITTEN_AT = "bench.example.com/written-at";
const SELF = new URL(import.meta.url).pathname;
const encoder = new TextEncoder();

function print(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

function stats(samples: number[]): { median: number; p90: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return { median: at(0.5), p90: at(0.9), max: sorted[sorted.length - 1] };
}

const ms = (v: number) => v < 10 ? v.toFixed(2) : v.toFixed(1);

// ---- role: server ----

async function serve(): Promise<void> {
  const pods: Pod[] = [];
  for (let i = 0; i < NODE_PODS + OTHER_PODS; i++) {
    const node = i < NODE_PODS ? NODE : `node-${2 + (i % 4)}`;
    pods.push(realisticPod({
      name: `app${i % 37}-7c9f8d6b5d-${i.toString(36).padStart(5, "x")}`,
      namespace: `team-${i % 10}`,
      nodeName: node,
      index: i,
    }));
  }
  const nads: NetworkAttachmentDefinition[] = [];
  for (let i = 0; i < NADS; i++) {
    nads.push(realisticNad(`net-${i}`, `team-${i % NAD_NAMESPACES}`, i));
  }
  const api = await startTestApiServer({ pods, nads, historyLimit: 10_000 });
  const kubeconfig = await api.writeKubeconfig();
  print(JSON.stringify({ kubeconfig }));
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let buffer = "";
  for await (const chunk of lines) {
    buffer += chunk;
    let at;
    while ((at = buffer.indexOf("\n")) >= 0) {
      const [command, ...args] = buffer.slice(0, at).split(" ");
      buffer = buffer.slice(at + 1);
      if (command === "write") await writes(api, Number(args[0]), Number(args[1]));
      print("done");
    }
  }
  await api.close();
}

/** `count` writes of node pods, `gapMs` apart, each stamped with its time. */
async function writes(api: TestApiServer, count: number, gapMs: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const pod = api.getPod(
      `team-${i % 10}`,
      `app${i % 37}-7c9f8d6b5d-${i.toString(36).padStart(5, "x")}`,
    )!;
    pod.metadata.annotations = { ...pod.metadata.annotations, [WRITTEN_AT]: String(now()) };
    api.setPod(pod);
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
}

// ---- role: caches held, heap measured ----

type Config = "client" | "pods-trimmed" | "pods-whole" | "nads-trimmed" | "nads-whole" | "both";

async function measure(config: Config, kubeconfig: string): Promise<void> {
  const client = new KubeClient(await loadKubeconfig(kubeconfig));
  const caches: WatchCache<Pod | NetworkAttachmentDefinition>[] = [];
  // "client": the same connection and requests with nothing in them (a node with no pods).
  const podSelector = config === "client" ? "spec.nodeName=nowhere" : `spec.nodeName=${NODE}`;
  if (config !== "nads-trimmed" && config !== "nads-whole") {
    caches.push(
      new WatchCache<Pod>({
        client,
        resource: POD_RESOURCE,
        fieldSelector: podSelector,
        trim: config === "pods-whole" ? undefined : trimPod,
      }) as WatchCache<Pod | NetworkAttachmentDefinition>,
    );
  }
  if (config !== "pods-trimmed" && config !== "pods-whole") {
    caches.push(
      new WatchCache<NetworkAttachmentDefinition>({
        client,
        resource: NAD_RESOURCE,
        namespace: config === "client" ? "nowhere" : undefined,
        trim: config === "nads-whole" ? undefined : trimNad,
      }) as WatchCache<Pod | NetworkAttachmentDefinition>,
    );
  }
  for (const cache of caches) cache.start();
  for (const cache of caches) {
    if (!await cache.waitForSync({ timeoutMs: 30_000 })) throw new Error("no sync");
  }
  while (!caches.every((c) => c.stats().watching)) await sleep(10);
  await sleep(200);
  const gc = (globalThis as { gc?: () => void }).gc!;
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(20);
  }
  const memory = Deno.memoryUsage();
  print(JSON.stringify({
    heapUsed: memory.heapUsed,
    rss: memory.rss,
    sizes: caches.map((c) => c.size),
  }));
  for (const cache of caches) await cache.stop();
  client.close();
}

// ---- role: latency ----

async function latency(kubeconfig: string, count: number): Promise<void> {
  const client = new KubeClient(await loadKubeconfig(kubeconfig));
  const seen = new Map<string, (at: number) => void>();
  const serverWrites: number[] = [];
  const pods = new WatchCache<Pod>({
    client,
    resource: POD_RESOURCE,
    fieldSelector: `spec.nodeName=${NODE}`,
    trim: trimPod,
    onChange: (change) => {
      const at = now();
      const stamp = change.object.metadata.annotations?.[WRITTEN_AT];
      if (
        change.type === "MODIFIED" && stamp &&
        stamp !== change.previous?.metadata.annotations?.[WRITTEN_AT]
      ) {
        serverWrites.push(at - Number(stamp));
      }
      const mine = change.object.metadata.annotations?.["bench.example.com/mine"];
      if (mine) seen.get(mine)?.(at);
    },
  });
  pods.start();
  if (!await pods.waitForSync({ timeoutMs: 30_000 })) throw new Error("no sync");
  while (!pods.stats().watching) await sleep(10);
  // Writes through the API from this process: PATCH sent → the cache has it, and the PATCH's
  // answer → the cache has it (negative: the event came first).
  const viaApi: number[] = [];
  const afterAnswer: number[] = [];
  const names = [...pods.values()].map((p) => p.metadata);
  for (let i = 0; i < count; i++) {
    const meta = names[i % names.length];
    const pod = pods.get(meta.namespace, meta.name)!;
    const token = `${i}-${crypto.randomUUID()}`;
    const arrived = new Promise<number>((resolve) => seen.set(token, resolve));
    const sent = now();
    await client.setPodAnnotations(pod, { "bench.example.com/mine": token });
    const answered = now();
    const at = await arrived;
    seen.delete(token);
    viaApi.push(at - sent);
    afterAnswer.push(at - answered);
    await sleep(10);
  }
  print(JSON.stringify({ viaApi, afterAnswer }));
  // Writes made in the server's process, stamped there.
  const done = await readLine();
  print(JSON.stringify({ serverWrites, done }));
  await pods.stop();
  client.close();
}

let stdinBuffer = "";
let stdinReader: ReadableStreamDefaultReader<string> | undefined;
async function readLine(): Promise<string> {
  stdinReader ??= Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  while (!stdinBuffer.includes("\n")) {
    const { value, done } = await stdinReader.read();
    if (done) return stdinBuffer;
    stdinBuffer += value;
  }
  const at = stdinBuffer.indexOf("\n");
  const line = stdinBuffer.slice(0, at);
  stdinBuffer = stdinBuffer.slice(at + 1);
  return line;
}

function sleep(msec: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msec));
}

// ---- orchestration ----

/** A child Deno process of this script, talking JSON lines on stdin/stdout. */
class Child {
  #process: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(args: string[], v8Flags: string[] = []) {
    this.#process = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        ...(v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : []),
        SELF,
        ...args,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      env: { DENO_NO_UPDATE_CHECK: "1" },
    }).spawn();
    this.#writer = this.#process.stdin.getWriter();
    this.#reader = this.#process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  async line(): Promise<string> {
    while (!this.#buffer.includes("\n")) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("the child ended early");
      this.#buffer += value;
    }
    const at = this.#buffer.indexOf("\n");
    const line = this.#buffer.slice(0, at);
    this.#buffer = this.#buffer.slice(at + 1);
    return line;
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(encoder.encode(`${line}\n`));
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#reader.cancel().catch(() => {});
    await this.#process.status;
  }
}

async function main(): Promise<void> {
  const quick = Deno.args.includes("--quick");
  const repeats = quick ? 1 : 3;
  const server = new Child(["--serve"]);
  const { kubeconfig } = JSON.parse(await server.line());
  try {
    const configs: Config[] = [
      "client",
      "pods-trimmed",
      "pods-whole",
      "nads-trimmed",
      "nads-whole",
      "both",
    ];
    const heap = new Map<Config, number[]>();
    const rss = new Map<Config, number[]>();
    const sizes = new Map<Config, number[]>();
    for (let r = 0; r < repeats; r++) {
      for (const config of configs) {
        const child = new Child(["--measure", config, kubeconfig], ["--expose-gc"]);
        const result = JSON.parse(await child.line());
        await child.close();
        heap.set(config, [...heap.get(config) ?? [], result.heapUsed]);
        rss.set(config, [...rss.get(config) ?? [], result.rss]);
        sizes.set(config, result.sizes);
      }
    }
    const med = (config: Config, from = heap) => stats(from.get(config)!).median;
    const kib = (bytes: number) => (bytes / 1024).toFixed(1);
    const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
    const base = med("client");
    print(`## Watch caches: memory (realistic objects, ${repeats} run(s) each, median)`);
    print();
    print("| cache | objects | heap over a client with empty caches | per object |");
    print("| --- | ---: | ---: | ---: |");
    const row = (label: string, config: Config, count: number) => {
      const over = med(config) - base;
      print(`| ${label} | ${count} | ${kib(over)} KiB | ${(over / count / 1024).toFixed(2)} KiB |`);
    };
    row("pods of the node, trimmed (trimPod)", "pods-trimmed", NODE_PODS);
    row("pods of the node, whole", "pods-whole", NODE_PODS);
    row("NADs of the cluster, trimmed (trimNad)", "nads-trimmed", NADS);
    row("NADs of the cluster, whole", "nads-whole", NADS);
    row("both, trimmed", "both", NODE_PODS + NADS);
    print();
    print(
      `Process (Deno, client, both caches trimmed, after GC): heap ${mib(med("both"))} MiB, RSS ${
        mib(stats(rss.get("both")!).median)
      } MiB; ` +
        `with empty caches: heap ${mib(base)} MiB, RSS ${
          mib(stats(rss.get("client")!).median)
        } MiB. ` +
        `Cache sizes seen: pods ${sizes.get("pods-trimmed")}, NADs ${sizes.get("nads-trimmed")}.`,
    );
    print();

    const count = quick ? 20 : 100;
    const watcher = new Child(["--latency", kubeconfig, String(count)]);
    const { viaApi, afterAnswer } = JSON.parse(await watcher.line());
    await server.send(`write ${count} 20`);
    await server.line();
    await watcher.send("go");
    const { serverWrites } = JSON.parse(await watcher.line());
    await watcher.close();
    print(`## Watch caches: write to cache (${count} writes each, ms: median / p90 / max)`);
    print();
    print("| write | until the cache has it |");
    print("| --- | ---: |");
    const line = (label: string, samples: number[]) => {
      const s = stats(samples);
      print(`| ${label} | ${ms(s.median)} / ${ms(s.p90)} / ${ms(s.max)} |`);
    };
    line("in the server's process (setPod), to the event applied", serverWrites);
    line("PATCH pods/status from the cache's process, from sending it", viaApi);
    line("the same, from its answer (negative: the event came first)", afterAnswer);
  } finally {
    await server.close();
  }
}

if (Deno.args[0] === "--serve") await serve();
else if (Deno.args[0] === "--measure") await measure(Deno.args[1] as Config, Deno.args[2]);
else if (Deno.args[0] === "--latency") await latency(Deno.args[1], Number(Deno.args[2]));
else await main();
