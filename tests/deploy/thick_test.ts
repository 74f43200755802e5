/**
 * deploy/thick/, the daemon-mode deployment, checked against what the binary accepts and
 * what the node needs: the installer's and the daemon's command lines parsed by their own
 * parsers, the ConfigMap's daemon-config.json loaded as the daemon loads it, every path the
 * configs name reachable at the same host path in the daemon container, the socket where
 * the shim looks, chrootDir on the host's root, the grace period and memory limit matching
 * the daemon's own bounds, and the extra RBAC limited to what the daemon's caches need.
 * (Schema and unknown-field checks of every file are in manifests_test.ts.)
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { parseInstallFlags, toHostPath } from "../../src/install/flags.ts";
import { parseDaemonArgs, parseDaemonConfig } from "../../src/daemon/config.ts";
import { REPO_ROOT } from "../helpers/plugin_run.ts";

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

async function objects(file: string): Promise<Obj[]> {
  const docs = parseAllDocuments(await Deno.readTextFile(join(REPO_ROOT, "deploy", file)));
  return (Array.isArray(docs) ? docs : [docs]).map((d) => d.toJS() as Obj).filter(Boolean);
}

async function one(file: string, kind: string, name?: string): Promise<Obj> {
  const found = (await objects(file)).filter((o) =>
    o.kind === kind && (!name || o.metadata.name === name)
  );
  assert.equal(found.length, 1, `one ${kind} ${name ?? ""} in deploy/${file}`);
  return found[0];
}

const thick = await one("thick/20-daemonset-thick.yaml", "DaemonSet");
const thin = await one("20-daemonset.yaml", "DaemonSet");
const configMap = await one("thick/15-daemon-config.yaml", "ConfigMap");
const pod = thick.spec.template.spec;
const volumes = new Map<string, Obj>(pod.volumes.map((v: Obj) => [v.name, v]));
const installer = pod.initContainers.find((c: Obj) => c.name === "install");
const daemon = pod.containers.find((c: Obj) => c.name === "daemon");

/** The volume and host path behind a container path, through the container's mounts. */
function resolveMount(container: Obj, path: string) {
  let best: Obj | undefined;
  for (const m of container.volumeMounts) {
    if (path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, "")}/`)) {
      if (!best || m.mountPath.length > best.mountPath.length) best = m;
    }
  }
  if (!best) return undefined;
  const volume = volumes.get(best.name)!;
  const rest = path.slice(best.mountPath.length);
  return {
    mount: best,
    volume,
    host: volume.hostPath ? join(volume.hostPath.path, rest) : undefined,
    rest: rest.replace(/^\//, ""),
  };
}

const installFlags = parseInstallFlags(installer.command.slice(2));
const daemonArgs = parseDaemonArgs(daemon.command.slice(2), {});
const daemonConfigText = (() => {
  const at = resolveMount(daemon, daemonArgs.configFile);
  assert.ok(at?.volume.configMap, `${daemonArgs.configFile} is the ConfigMap's mount`);
  assert.equal(at.volume.configMap.name, configMap.metadata.name);
  const item = at.volume.configMap.items.find((i: Obj) => i.path === at.rest);
  assert.ok(item, `${at.rest} is an item of the ConfigMap volume`);
  return configMap.data[item.key] as string;
})();
const daemonConfig = parseDaemonConfig(daemonConfigText, {
  file: daemonArgs.configFile,
  nodeName: "node-1",
});

Deno.test("deploy/thick replaces the thin DaemonSet in place, one node at a time", () => {
  for (const key of ["name", "namespace", "labels"]) {
    assert.deepEqual(thick.metadata[key], thin.metadata[key], `metadata.${key}`);
  }
  assert.deepEqual(thick.spec.selector, thin.spec.selector);
  assert.deepEqual(thick.spec.template.metadata.labels, thin.spec.template.metadata.labels);
  assert.equal(configMap.metadata.namespace, thick.metadata.namespace);
  // Never two daemons on one node's socket: the old pod goes before the new one starts.
  assert.equal(thick.spec.updateStrategy.rollingUpdate.maxSurge, 0);
  assert.equal(pod.serviceAccountName, thin.spec.template.spec.serviceAccountName);
  assert.equal(pod.priorityClassName, "system-node-critical");
  assert.ok(pod.tolerations.some((t: Obj) => t.operator === "Exists" && !t.key && !t.effect));
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.hostPID, true);
  const image = thin.spec.template.spec.containers[0].image;
  assert.equal(installer.image, image);
  assert.equal(daemon.image, image);
});

Deno.test("the thick installer is a sidecar running multus install --mode=daemon on the host's directories", () => {
  assert.equal(installer.restartPolicy, "Always", "a native sidecar keeps watching");
  assert.deepEqual(installer.command.slice(0, 2), ["/usr/bin/multus", "install"]);
  assert.equal(installFlags.mode, "daemon");
  assert.equal(installFlags.skipConfigWatch, false);
  assert.equal(installFlags.multusConfFile, "auto");
  assert.equal(installFlags.daemonConfigFile, "", "the daemon reads the ConfigMap itself");
  for (
    const [flag, path] of [
      ["--cni-bin-dir", installFlags.cniBinDir],
      ["--cni-conf-dir", installFlags.cniConfDir],
      ["--multus-autoconfig-dir", installFlags.multusAutoconfigDir],
      ["--multus-cni-conf-dir", installFlags.multusCniConfDir],
    ]
  ) {
    const at = resolveMount(installer, path);
    assert.ok(at?.host, `${flag} ${path} is on a hostPath mount`);
    assert.ok(!at.mount.readOnly, `${flag} is writable`);
    assert.equal(at.host, toHostPath(path, installFlags.hostPrefix), `${flag}: --host-prefix`);
  }
  assert.equal(installer.securityContext.privileged, false);
});

Deno.test("the daemon's command, config and mounts fit what the installer writes", () => {
  assert.deepEqual(daemon.command.slice(0, 2), ["/usr/bin/multus", "daemon"]);
  const node = daemon.env.find((e: Obj) => e.name === "MULTUS_NODE_NAME");
  assert.deepEqual(node.valueFrom, { fieldRef: { fieldPath: "spec.nodeName" } });
  assert.equal(daemon.securityContext.privileged, true);

  // The ConfigMap's keys are all known and used by the daemon.
  assert.deepEqual(
    daemonConfig.warnings.filter((w) => !/"chrootDir" .* not applied yet/.test(w)),
    [],
  );

  // The socket: where the shim config says (--daemon-socket-dir), a host directory.
  assert.equal(`${daemonConfig.socketDir}/`, installFlags.daemonSocketDir);
  const socket = resolveMount(daemon, daemonConfig.socketPath);
  assert.equal(socket?.host, join(installFlags.daemonSocketDir, "multus.sock"));
  assert.ok(!socket.mount.readOnly);

  // chrootDir: the host's root, with pod network namespaces appearing as they are made.
  const root = resolveMount(daemon, daemonConfig.chrootDir);
  assert.equal(root?.host, "/");
  assert.equal(root.mount.mountPath, daemonConfig.chrootDir);
  assert.equal(root.mount.mountPropagation, "HostToContainer");
  for (const netns of ["/run/netns", "/var/run/netns"]) {
    const at = resolveMount(daemon, `${netns}/cni-1234`);
    assert.equal(at?.host, `${netns}/cni-1234`, netns);
    assert.equal(at.mount.mountPropagation, "HostToContainer", netns);
  }

  // The host paths the shim config and the daemon's defaults name, at the same paths.
  const confDir = toHostPath(installFlags.cniConfDir, installFlags.hostPrefix);
  for (
    const [what, path, writable] of [
      ["a primary config (clusterNetwork)", `${confDir}/10-flannel.conflist`, false],
      ["confDir", toHostPath(installFlags.multusCniConfDir, installFlags.hostPrefix), false],
      [
        "a plugin (binDir)",
        `${toHostPath(installFlags.cniBinDir, installFlags.hostPrefix)}/bridge`,
        false,
      ],
      ["the scratch cache (cniDir)", "/var/lib/cni/multus/ctr", true],
      ["the results cache", "/var/lib/cni/results/net-ctr-eth0", true],
      ["device-info files", "/var/run/k8s.cni.cncf.io/devinfo/cni/x", true],
      ["the kubelet's PodResources socket", "/var/lib/kubelet/pod-resources/kubelet.sock", false],
      [
        "the kubelet's device checkpoint",
        "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint",
        false,
      ],
    ] as const
  ) {
    const at = resolveMount(daemon, path);
    assert.equal(at?.host, path, `${what}: ${path} is the host's`);
    if (writable) assert.ok(!at.mount.readOnly, `${what} is writable`);
  }
});

Deno.test("the grace period and the memory limit match the daemon's configured bounds", () => {
  assert.ok(
    pod.terminationGracePeriodSeconds > daemonConfig.shutdownGraceSeconds,
    "running requests finish before the kubelet's SIGKILL",
  );
  const mebibytes = (q: string) => {
    const m = /^(\d+)(Mi|Gi)$/.exec(q);
    assert.ok(m, q);
    return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
  };
  const limit = mebibytes(daemon.resources.limits.memory);
  // The daemon's own peak (200 MiB in a 50-pod burst) plus ~16 MiB per delegate process
  // running at once, all in this container's cgroup.
  assert.ok(
    limit >= 200 + daemonConfig.maxParallelRequests * 16,
    `${limit} MiB for ${daemonConfig.maxParallelRequests} requests at once`,
  );
  assert.ok(mebibytes(daemon.resources.requests.memory) <= limit);
  assert.equal(daemon.resources.limits.cpu, undefined, "no CPU throttling of ADDs");
});

Deno.test("the daemon's extra RBAC is list and watch of pods, for the same ServiceAccount", async () => {
  const role = await one("thick/10-rbac-daemon.yaml", "ClusterRole");
  const grants = role.rules.flatMap((r: Obj) =>
    r.apiGroups.flatMap((g: string) =>
      r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${g}/${res}:${v}`))
    )
  );
  assert.deepEqual(grants.sort(), ["/pods:list", "/pods:watch"]);
  const binding = await one("thick/10-rbac-daemon.yaml", "ClusterRoleBinding");
  assert.deepEqual(binding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: role.metadata.name,
  });
  const sa = await one("10-rbac.yaml", "ServiceAccount");
  assert.deepEqual(binding.subjects, [
    { kind: "ServiceAccount", name: sa.metadata.name, namespace: sa.metadata.namespace },
  ]);
  assert.equal(pod.serviceAccountName, sa.metadata.name);
  // NADs are listed and watched with the base role's grant.
  const base = await one("10-rbac.yaml", "ClusterRole", "multus");
  const nads = base.rules.find((r: Obj) => r.resources.includes("network-attachment-definitions"));
  assert.ok(nads.verbs.includes("list") && nads.verbs.includes("watch"));
});
