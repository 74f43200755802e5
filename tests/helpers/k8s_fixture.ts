/**
 * @module
 * A node and a cluster for Kubernetes-mode tests: a temporary CNI root with the plugin, the
 * test API server, a pod network namespace, a host veth for macvlan networks, and the cluster
 * network as a bridge + host-local config file. Everything is removed by `cleanup()`.
 */

import { join } from "node:path";
import { makeTestRoot, type TestRoot, uniqueSuffix } from "./plugin_run.ts";
import { deleteHostLink, HostVeth, TestNetns } from "./netns.ts";
import { type KubeconfigAuth, startTestApiServer, type TestApiServer } from "../k8s_api/server.ts";

/** Options of {@linkcode startK8sFixture}. */
export interface K8sFixtureOptions {
  /** First three octets of the cluster network's /24, e.g. "10.241.7". */
  clusterSubnet: string;
  /** How the plugin's kubeconfig authenticates (default `token`). */
  auth?: KubeconfigAuth;
  /** Multus config `name` (default `multus-cni-network`). */
  name?: string;
}

/** The environment of one Kubernetes-mode test. */
export interface K8sFixture {
  root: TestRoot;
  api: TestApiServer;
  ns: TestNetns;
  veth: HostVeth;
  bridge: string;
  leaseDir: string;
  clusterNetworkFile: string;
  kubeconfig: string;
  /** A Multus config for this node: kubeconfig, clusterNetwork, debug log, 5 s API budget. */
  multusConf(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Stores a NAD whose config is a macvlan on the host veth (plus `extra` keys). */
  macvlanNad(
    name: string,
    options: {
      namespace?: string;
      ipam?: Record<string, unknown>;
      extra?: Record<string, unknown>;
    },
  ): void;
  cleanup(): Promise<void>;
}

/** Sets up the node and the cluster. */
export async function startK8sFixture(options: K8sFixtureOptions): Promise<K8sFixture> {
  const root = await makeTestRoot();
  const api = await startTestApiServer();
  const ns = await TestNetns.create();
  const veth = await HostVeth.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  const leaseDir = join(root.dir, "leases");
  const clusterNetworkFile = join(root.dir, "10-bridge.conf");
  await Deno.writeTextFile(
    clusterNetworkFile,
    JSON.stringify({
      cniVersion: "1.0.0",
      name: "cluster-bridge",
      type: "bridge",
      bridge,
      isGateway: true,
      ipam: {
        type: "host-local",
        subnet: `${options.clusterSubnet}.0/24`,
        dataDir: leaseDir,
        routes: [{ dst: "0.0.0.0/0" }],
      },
    }),
  );
  const kubeconfig = await api.writeKubeconfig({ auth: options.auth ?? "token" });
  return {
    root,
    api,
    ns,
    veth,
    bridge,
    leaseDir,
    clusterNetworkFile,
    kubeconfig,
    multusConf: (extra = {}) => ({
      cniVersion: "1.0.0",
      name: options.name ?? "multus-cni-network",
      type: "multus",
      kubeconfig,
      clusterNetwork: clusterNetworkFile,
      cniDir: root.cniDir,
      binDir: root.binDir,
      confDir: root.confDir,
      logFile: root.logFile,
      logLevel: "debug",
      logToStderr: false,
      apiTimeoutSeconds: 5,
      ...extra,
    }),
    macvlanNad(name, nad) {
      const config: Record<string, unknown> = {
        cniVersion: "1.0.0",
        type: "macvlan",
        master: veth.a,
        mode: "bridge",
        ...nad.extra,
      };
      if (nad.ipam) config.ipam = nad.ipam;
      api.setNad({
        metadata: { name, namespace: nad.namespace ?? "default" },
        spec: { config: JSON.stringify(config) },
      });
    },
    async cleanup() {
      await ns.remove();
      await veth.remove();
      await deleteHostLink(bridge);
      await api.close();
      await root.cleanup();
    },
  };
}
