/**
 * @module
 * A request's session with the API server: the client (this request's own, or a daemon's
 * shared one) and the reads this request made, so a pod naming one network twice costs one
 * request and the pod read started early is the one ADD uses. A session lives as long as
 * its request; only the client and its connections may be shared.
 */

import { KubeClient } from "../../k8s/client.ts";
import type { NetworkAttachmentDefinition, Pod } from "../../k8s/types.ts";
import { inClusterCredentials, loadKubeconfig } from "../../k8s/kubeconfig.ts";
import type { Invocation, KubeSession } from "../config/invocation.ts";
import type { MultusNetConf } from "../config/netconf.ts";

/** Opens the API client a configuration names; undefined without API access. */
export type OpenKubeClient = (
  conf: MultusNetConf,
  env: Record<string, string | undefined>,
) => Promise<KubeClient | undefined>;

/**
 * The client of a configuration: from `kubeconfig` when set, else from the in-cluster
 * environment, else none (delegates and files only).
 */
export async function openKubeClient(
  conf: MultusNetConf,
  env: Record<string, string | undefined>,
): Promise<KubeClient | undefined> {
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

/** Opens the session of one request, or undefined when there is no API access. */
export async function openKubeSession(
  inv: Pick<Invocation, "conf" | "env"> & Partial<Pick<Invocation, "log">>,
  open: OpenKubeClient = openKubeClient,
): Promise<KubeSession | undefined> {
  const client = await open(inv.conf, inv.env);
  inv.log?.debug(
    `API client ${client ? `for ${client.server} ` : ""}ready ${
      Math.round(performance.now())
    } ms after start`,
  );
  return client ? new RequestKubeSession(client) : undefined;
}

/** A {@linkcode KubeSession} that remembers its reads for the length of one request. */
class RequestKubeSession implements KubeSession {
  readonly client: KubeClient;
  readonly #nads = new Map<string, Promise<NetworkAttachmentDefinition>>();
  #podRead: { key: string; read: Promise<Pod> } | undefined;

  constructor(client: KubeClient) {
    this.client = client;
  }

  readNad(namespace: string, name: string): Promise<NetworkAttachmentDefinition> {
    const key = `${namespace}/${name}`;
    let read = this.#nads.get(key);
    if (!read) {
      read = this.client.getNetworkAttachmentDefinition(namespace, name);
      this.#nads.set(key, read);
    }
    return read;
  }

  readPod(namespace: string, name: string): Promise<Pod> {
    const key = `${namespace}/${name}`;
    if (this.#podRead?.key !== key) {
      const read = this.client.getPod(namespace, name);
      // Awaited later by the caller; a failure must not surface as an unhandled rejection
      // when ADD stops earlier for another reason.
      read.catch(() => {});
      this.#podRead = { key, read };
    }
    return this.#podRead.read;
  }
}

/**
 * Starts reading the pod while the rest of ADD loads: the first HTTPS request of a process
 * pays for the TLS client's set-up. Errors are left for the real read to report.
 */
export function prefetchPod(inv: Invocation): void {
  const pod = inv.pod;
  if (!pod) return;
  inv.kube().then((session) => {
    if (session) session.readPod(pod.namespace, pod.name);
  }).catch(() => {});
}
