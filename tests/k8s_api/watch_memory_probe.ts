/**
 * @module
 * Run by `client_watch_memory_test.ts` with `--v8-flags=--expose-gc`: opens one watch of
 * pods on the test API server, takes `count` events one at a time (each its own body read),
 * and prints as JSON the external memory (buffers outside the V8 heap) after a full garbage
 * collection, once after the first events and once after all, with the watch still open.
 */

import { startTestApiServer } from "./server.ts";
import { KubeClient } from "../../src/k8s/client.ts";
import { loadKubeconfig } from "../../src/k8s/kubeconfig.ts";
import { POD_RESOURCE } from "../../src/k8s/types.ts";

const count = Number(Deno.args[0] ?? "400");
const gc = (globalThis as unknown as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

/** External bytes after a full collection. */
function external(): number {
  gc!();
  return Deno.memoryUsage().external;
}

const server = await startTestApiServer();
const client = new KubeClient(await loadKubeconfig(await server.writeKubeconfig()));
const controller = new AbortController();
try {
  const events = client.watch(POD_RESOURCE, { signal: controller.signal })[Symbol.asyncIterator]();
  let baseline = 0;
  for (let i = 0; i < count; i++) {
    server.setPod({ metadata: { name: `pod-${i}`, namespace: "default" }, spec: {} });
    const next = await events.next();
    if (next.done) throw new Error(`the watch ended after ${i} events`);
    if (i === 9) baseline = external();
  }
  Deno.stdout.writeSync(
    new TextEncoder().encode(JSON.stringify({ baseline, after: external() }) + "\n"),
  );
  await events.return?.(undefined); // ends the watch (and its idle timer)
} finally {
  controller.abort();
  client.close();
  await server.close();
}
