/**
 * @module
 * The API client of this run: from `kubeconfig` when set, else from the in-cluster
 * environment, else none (delegates and files only). Read once per run.
 */

import { KubeClient } from "../../k8s/client.ts";
import type { NetworkAttachmentDefinition, Pod } from "../../k8s/types.ts";
import { inClusterCredentials, loadKubeconfig } from "../../k8s/kubeconfig.ts";
import type { Invocation } from "../config/invocation.ts";

let session: Promise<KubeClient | undefined> | undefined;

/** The API client for this run, or undefined when no API access is configured. */
export function openKubeClient(inv: Invocation): Promise<KubeClient | undefined> {
  session ??= create(inv);
  return session;
}

async function create(inv: Invocation): Promise<KubeClient | undefined> {
  const { conf } = inv;
  const env = Deno.env.toObject();
  const total = conf.apiTimeoutSeconds * 1000;
  const requestTimeoutMs = Math.min(10_000, total);
  // Each credential file gets the time of one API request.
  const options = { readTimeoutMs: requestTimeoutMs };
  let credentials;
  if (conf.kubeconfig !== "") credentials = await loadKubeconfig(conf.kubeconfig, options);
  else if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) {
    credentials = await inClusterCredentials(env, undefined, options);
  } else return undefined;
  return new KubeClient(credentials, { totalTimeoutMs: total, requestTimeoutMs });
}

const nads = new Map<string, Promise<NetworkAttachmentDefinition>>();

/**
 * Reads a NetworkAttachmentDefinition once per run: a pod that names the same network twice
 * (two interfaces on one network) costs one request.
 */
export function readNad(
  kube: KubeClient,
  namespace: string,
  name: string,
): Promise<NetworkAttachmentDefinition> {
  const key = `${namespace}/${name}`;
  let read = nads.get(key);
  if (!read) {
    read = kube.getNetworkAttachmentDefinition(namespace, name);
    nads.set(key, read);
  }
  return read;
}

let podRead: { key: string; read: Promise<Pod> } | undefined;

/** Reads the pod once per run (the read may have been started early by {@linkcode prefetchPod}). */
export function readPod(kube: KubeClient, namespace: string, name: string): Promise<Pod> {
  const key = `${namespace}/${name}`;
  if (podRead?.key !== key) {
    const read = kube.getPod(namespace, name);
    // Awaited later by the caller; a failure must not surface as an unhandled rejection when
    // ADD stops earlier for another reason.
    read.catch(() => {});
    podRead = { key, read };
  }
  return podRead.read;
}

/**
 * Starts reading the pod while the rest of ADD loads: the first HTTPS request of a process
 * pays for the TLS client's set-up. Errors are left for the real read to report.
 */
export function prefetchPod(inv: Invocation): void {
  const pod = inv.pod;
  if (!pod) return;
  openKubeClient(inv).then((kube) => {
    if (kube) readPod(kube, pod.namespace, pod.name);
  }).catch(() => {});
}
