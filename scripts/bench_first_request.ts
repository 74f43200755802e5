/**
 * @module
 * What a fresh process pays for its first API requests, as the plugin makes them (GET pod,
 * GET NAD, PATCH pods/status on one client), over HTTP/2 (what `fetch` with
 * `Deno.createHttpClient` negotiates with kube-apiserver and the test API server) and over
 * HTTP/1.1 (`http2: false`). The server runs in a process of its own.
 *
 *     deno run --allow-all scripts/bench_first_request.ts [--runs N]
 */

import { startTestApiServer } from "../tests/k8s_api/server.ts";

const SELF = new URL(import.meta.url).pathname;
const encoder = new TextEncoder();

function print(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

async function serve(): Promise<void> {
  const api = await startTestApiServer({
    pods: [{ metadata: { name: "web", namespace: "default" }, spec: { nodeName: "node-1" } }],
    nads: [{ metadata: { name: "macvlan", namespace: "default" }, spec: { config: "{}" } }],
  });
  print(JSON.stringify({ url: api.url, ca: api.caPem, token: api.token }));
  // Until the parent closes stdin.
  for await (const _ of Deno.stdin.readable) { /* nothing */ }
  print(JSON.stringify(api.requests().map((r) => r.httpVersion)));
  await api.close();
}

/** One plugin-like run: three requests on a new client; prints their times. */
async function client(target: { url: string; ca: string; token: string }, http2: boolean) {
  const client = Deno.createHttpClient({ caCerts: [target.ca], http2 });
  const headers = { Authorization: `Bearer ${target.token}`, Accept: "application/json" };
  const times: number[] = [];
  const timed = async (path: string, init: RequestInit = {}) => {
    const started = performance.now();
    const res = await fetch(`${target.url}${path}`, {
      ...init,
      headers: { ...headers, ...init.headers },
      client,
    });
    await res.text();
    times.push(performance.now() - started);
  };
  await timed("/api/v1/namespaces/default/pods/web");
  await timed("/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/macvlan");
  await timed("/api/v1/namespaces/default/pods/web/status", {
    method: "PATCH",
    headers: { "Content-Type": "application/merge-patch+json" },
    body: JSON.stringify({ metadata: { annotations: { x: String(Math.random()) } } }),
  });
  client.close();
  print(JSON.stringify(times));
}

async function main(): Promise<void> {
  const runsAt = Deno.args.indexOf("--runs");
  const runs = runsAt >= 0 ? Number(Deno.args[runsAt + 1]) : 20;
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", SELF, "--serve"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const line = async () => {
    while (!buffer.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("the server ended early");
      buffer += value;
    }
    const at = buffer.indexOf("\n");
    const text = buffer.slice(0, at);
    buffer = buffer.slice(at + 1);
    return text;
  };
  const target = await line();
  const samples = { h2: [] as number[][], h1: [] as number[][] };
  for (let i = 0; i < runs; i++) {
    for (const version of ["h2", "h1"] as const) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--quiet", SELF, "--client", version, target],
        stdout: "piped",
        stderr: "null",
      }).output();
      samples[version].push(JSON.parse(new TextDecoder().decode(out.stdout)));
    }
  }
  await server.stdin.close();
  const versions = JSON.parse(await line()) as string[];
  await lines.cancel();
  await server.status;
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)];
  };
  print(`## First API requests of a fresh process (${runs} runs each, median ms)`);
  print();
  print("| client | GET pod (TLS + first request) | GET NAD | PATCH status | total |");
  print("| --- | ---: | ---: | ---: | ---: |");
  for (const version of ["h2", "h1"] as const) {
    const cols = [0, 1, 2].map((k) => median(samples[version].map((s) => s[k])));
    const total = median(samples[version].map((s) => s[0] + s[1] + s[2]));
    print(
      `| ${version === "h2" ? "HTTP/2 (default)" : "HTTP/1.1 (http2: false)"} | ${
        cols.map((c) => c.toFixed(1)).join(" | ")
      } | ${total.toFixed(1)} |`,
    );
  }
  const count = (v: string) => versions.filter((x) => x === v).length;
  print();
  print(`Server request log: ${count("2.0")} requests over HTTP/2, ${count("1.1")} over HTTP/1.1.`);
}

if (Deno.args[0] === "--serve") await serve();
else if (Deno.args[0] === "--client") await client(JSON.parse(Deno.args[2]), Deno.args[1] === "h2");
else await main();
