import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Pod } from "kubernetes-models/v1/Pod";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { parseInstallFlags, toHostPath } from "../../src/install/flags.ts";
import { unknownFields } from "./_strict_fields.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DEPLOY = join(REPO, "deploy");

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

interface Manifest {
  file: string;
  index: number;
  obj: Obj;
}

/** Model class (validator) and module (field list) per apiVersion/kind. */
const MODELS: Record<string, { model: { new (data: Obj): { validate(): void } }; module: string }> =
  {
    "apiextensions.k8s.io/v1/CustomResourceDefinition": {
      model: CustomResourceDefinition as never,
      module: "kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition",
    },
    "apps/v1/DaemonSet": {
      model: DaemonSet as never,
      module: "kubernetes-models/apps/v1/DaemonSet",
    },
    "rbac.authorization.k8s.io/v1/ClusterRole": {
      model: ClusterRole as never,
      module: "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole",
    },
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": {
      model: ClusterRoleBinding as never,
      module: "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding",
    },
    "v1/ConfigMap": { model: ConfigMap as never, module: "kubernetes-models/v1/ConfigMap" },
    "v1/Pod": { model: Pod as never, module: "kubernetes-models/v1/Pod" },
    "v1/ServiceAccount": {
      model: ServiceAccount as never,
      module: "kubernetes-models/v1/ServiceAccount",
    },
  };

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...await yamlFiles(path));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out.sort();
}

async function loadManifests(): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (const path of await yamlFiles(DEPLOY)) {
    const file = relative(REPO, path);
    const docs = parseAllDocuments(await Deno.readTextFile(path));
    assert.ok(Array.isArray(docs), `${file}: not a YAML stream`);
    docs.forEach((doc, index) => {
      assert.deepEqual(doc.errors.map((e) => e.message), [], `${file} document ${index}`);
      const obj = doc.toJS();
      if (obj !== null) out.push({ file, index, obj });
    });
  }
  return out;
}

const manifests = await loadManifests();

/** The one `kind` (named `name`) of the thin deployment (deploy/thick/ has its own test). */
function only(kind: string, name?: string): Obj {
  const found = manifests.filter((m) =>
    !m.file.startsWith("deploy/thick/") &&
    m.obj.kind === kind && (!name || m.obj.metadata?.name === name)
  );
  assert.equal(found.length, 1, `exactly one ${kind} ${name ?? ""} in deploy/`);
  return found[0].obj;
}

/** A minimal structural-schema check: types, properties, required, no unknown fields. */
function checkSchema(value: unknown, schema: Obj, path: string, errors: string[]): void {
  if (schema["x-kubernetes-preserve-unknown-fields"] && schema.type === undefined) return;
  const type = schema.type;
  const actual = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  const ok = type === undefined ||
    (type === "integer" ? Number.isInteger(value) : type === actual);
  if (!ok) {
    errors.push(`${path}: ${actual}, schema wants ${type}`);
    return;
  }
  if (type === "array" && schema.items) {
    (value as unknown[]).forEach((v, i) => checkSchema(v, schema.items, `${path}[${i}]`, errors));
  }
  if (type !== "object") return;
  const obj = value as Obj;
  for (const req of schema.required ?? []) {
    if (!(req in obj)) errors.push(`${path}.${req}: required`);
  }
  if (path === "metadata" || !schema.properties) return; // ObjectMeta is checked on its own
  for (const [k, v] of Object.entries(obj)) {
    const sub = schema.properties[k];
    if (sub) checkSchema(v, sub, path ? `${path}.${k}` : k, errors);
    else if (!schema["x-kubernetes-preserve-unknown-fields"]) {
      errors.push(`${path ? `${path}.` : ""}${k}: unknown field (the API server would drop it)`);
    }
  }
}

Deno.test("deploy/: every YAML document is a valid Kubernetes object with no unknown fields", () => {
  assert.deepEqual(manifests.map((m) => m.obj.kind).sort(), [
    "ClusterRole",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "CustomResourceDefinition",
    "DaemonSet",
    "DaemonSet",
    "NetworkAttachmentDefinition",
    "NetworkAttachmentDefinition",
    "Pod",
    "ServiceAccount",
  ]);
  const crd = only("CustomResourceDefinition");
  for (const { file, index, obj } of manifests) {
    const where = `${file} #${index} (${obj.kind} ${obj.metadata?.name})`;
    assert.equal(typeof obj.apiVersion, "string", where);
    assert.equal(typeof obj.kind, "string", where);
    assert.equal(typeof obj.metadata?.name, "string", where);
    const key = `${obj.apiVersion}/${obj.kind}`;
    if (key === `${crd.spec.group}/${crd.spec.versions[0].name}/${crd.spec.names.kind}`) {
      continue; // custom resources: checked against the CRD below
    }
    const entry = MODELS[key];
    assert.ok(entry, `${where}: no schema for ${key}; add it to MODELS`);
    assert.doesNotThrow(() => new entry.model(obj).validate(), where);
    assert.deepEqual(unknownFields(obj, entry.module), [], `${where}: unknown fields`);
  }
});

Deno.test("the strict field check catches a typo the OpenAPI validator accepts", () => {
  const ds = structuredClone(only("DaemonSet"));
  ds.spec.template.spec.containers[0].volumeMounts[0].mountPropogation = "Bidirectional";
  ds.spec.template.spec.hostNetwrok = true;
  assert.doesNotThrow(() => new DaemonSet(ds).validate());
  assert.deepEqual(unknownFields(ds, "kubernetes-models/apps/v1/DaemonSet").sort(), [
    "spec.template.spec.containers[0].volumeMounts[0].mountPropogation",
    "spec.template.spec.hostNetwrok",
  ]);
  ds.spec.template.spec.containers[0].command = "multus";
  assert.throws(() => new DaemonSet(ds).validate(), /command must be array/);
});

Deno.test("the NetworkAttachmentDefinition CRD matches Multus's and accepts the example NADs", () => {
  const crd = only("CustomResourceDefinition");
  assert.equal(crd.metadata.name, "network-attachment-definitions.k8s.cni.cncf.io");
  assert.equal(crd.spec.group, "k8s.cni.cncf.io");
  assert.equal(crd.spec.scope, "Namespaced");
  assert.deepEqual(crd.spec.names.kind, "NetworkAttachmentDefinition");
  assert.deepEqual(crd.spec.names.plural, "network-attachment-definitions");
  assert.ok(crd.spec.names.shortNames.includes("net-attach-def"));
  assert.equal(crd.spec.versions.length, 1);
  const v1 = crd.spec.versions[0];
  assert.deepEqual([v1.name, v1.served, v1.storage], ["v1", true, true]);
  const schema = v1.schema.openAPIV3Schema;
  assert.equal(schema.properties.spec.properties.config.type, "string");

  const nads = manifests.filter((m) => m.obj.kind === "NetworkAttachmentDefinition");
  assert.ok(nads.length >= 2, "two example NADs");
  for (const { file, obj } of nads) {
    assert.equal(obj.apiVersion, "k8s.cni.cncf.io/v1", file);
    const errors: string[] = [];
    checkSchema(obj, schema, "", errors);
    assert.deepEqual(errors, [], file);
    // metadata is an ObjectMeta: check it as the metadata of a (field-less) ConfigMap.
    assert.doesNotThrow(() => new ConfigMap({ metadata: obj.metadata }).validate(), file);
    assert.deepEqual(
      unknownFields({ metadata: obj.metadata }, "kubernetes-models/v1/ConfigMap"),
      [],
    );
    const conf = JSON.parse(obj.spec.config);
    assert.equal(typeof conf.cniVersion, "string", `${file}: cniVersion`);
    assert.equal(conf.name, obj.metadata.name, `${file}: the CNI name matches the NAD name`);
    const types = conf.plugins ? conf.plugins.map((p: Obj) => p.type) : [conf.type];
    assert.ok(types.every((t: unknown) => typeof t === "string" && t !== ""), file);
  }

  // The schema check itself rejects what the API server would not store as written.
  const bad: string[] = [];
  checkSchema({ ...nads[0].obj, spec: { config: { type: "bridge" }, extra: 1 } }, schema, "", bad);
  assert.deepEqual(bad, [
    "spec.config: object, schema wants string",
    "spec.extra: unknown field (the API server would drop it)",
  ]);
});

Deno.test("the example pod asks only for networks that the examples define", () => {
  const pod = only("Pod");
  const requested = JSON.parse(pod.metadata.annotations["k8s.v1.cni.cncf.io/networks"]);
  const defined = new Set(
    manifests.filter((m) => m.obj.kind === "NetworkAttachmentDefinition")
      .map((m) => `${m.obj.metadata.namespace ?? "default"}/${m.obj.metadata.name}`),
  );
  assert.equal(requested.length, 2);
  for (const sel of requested) {
    const ns = sel.namespace ?? pod.metadata.namespace ?? "default";
    assert.ok(defined.has(`${ns}/${sel.name}`), `${ns}/${sel.name} is defined`);
  }
  const macvlan = manifests.find((m) => m.obj.metadata.name === "macvlan-net")!.obj;
  const conf = JSON.parse(macvlan.spec.config);
  assert.equal(conf.plugins[0].capabilities.ips, true, "ips requests need the ips capability");
});

Deno.test("RBAC grants exactly the least privilege the plugin needs", () => {
  const role = only("ClusterRole", "multus");
  const grants = new Set<string>();
  for (const rule of role.rules) {
    for (const g of rule.apiGroups) {
      for (const r of rule.resources) for (const v of rule.verbs) grants.add(`${g}/${r}:${v}`);
    }
  }
  assert.deepEqual([...grants].sort(), [
    "/events:create",
    "/events:patch",
    "/pods/status:get",
    "/pods/status:patch",
    "/pods/status:update",
    "/pods:get",
    "events.k8s.io/events:create",
    "events.k8s.io/events:patch",
    "k8s.cni.cncf.io/network-attachment-definitions:get",
    "k8s.cni.cncf.io/network-attachment-definitions:list",
    "k8s.cni.cncf.io/network-attachment-definitions:watch",
    "resource.k8s.io/resourceclaims:get",
    "resource.k8s.io/resourceslices:list",
  ]);
  assert.ok(role.rules.every((r: Obj) => !r.resourceNames && !r.nonResourceURLs));

  const sa = only("ServiceAccount");
  const binding = only("ClusterRoleBinding", "multus");
  assert.deepEqual(binding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: "multus",
  });
  assert.deepEqual(binding.subjects, [
    { kind: "ServiceAccount", name: sa.metadata.name, namespace: sa.metadata.namespace },
  ]);
  assert.equal(sa.metadata.namespace, "kube-system");
  const ds = only("DaemonSet");
  assert.equal(ds.spec.template.spec.serviceAccountName, sa.metadata.name);
  assert.equal(ds.metadata.namespace, sa.metadata.namespace);
});

Deno.test("the DaemonSet's command parses with parseInstallFlags and matches its mounts", () => {
  const ds = only("DaemonSet");
  const pod = ds.spec.template.spec;
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.priorityClassName, "system-node-critical");
  assert.ok(pod.tolerations.some((t: Obj) => t.operator === "Exists" && !t.key && !t.effect));
  assert.deepEqual(ds.spec.selector.matchLabels, { name: "multus" });
  assert.equal(pod.automountServiceAccountToken, undefined, "the SA token must be mounted");
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0];
  for (const kind of ["requests", "limits"]) {
    assert.ok(c.resources[kind].cpu && c.resources[kind].memory, `resources.${kind}`);
  }

  const argv = [...c.command, ...(c.args ?? [])];
  assert.deepEqual(argv.slice(0, 2), ["/usr/bin/multus", "install"]);
  const flags = parseInstallFlags(argv.slice(2));
  assert.equal(flags.skipConfigWatch, false, "the DaemonSet keeps watching");
  assert.equal(flags.multusConfFile, "auto");

  const volumes = new Map<string, Obj>(pod.volumes.map((v: Obj) => [v.name, v]));
  /** The host path behind a container path, through the mounts. */
  function hostPathOf(path: string): { host: string; readOnly: boolean } | undefined {
    let best: Obj | undefined;
    for (const m of c.volumeMounts) {
      if (path === m.mountPath || path.startsWith(`${m.mountPath}/`)) {
        if (!best || m.mountPath.length > best.mountPath.length) best = m;
      }
    }
    const hostPath = best && volumes.get(best.name)?.hostPath?.path;
    if (!hostPath) return undefined;
    return { host: hostPath + path.slice(best!.mountPath.length), readOnly: !!best!.readOnly };
  }
  for (
    const [flag, path] of [
      ["--cni-bin-dir", flags.cniBinDir],
      ["--cni-conf-dir", flags.cniConfDir],
      ["--multus-autoconfig-dir", flags.multusAutoconfigDir],
      ["--multus-cni-conf-dir", flags.multusCniConfDir],
    ]
  ) {
    const mapped = hostPathOf(path);
    assert.ok(mapped, `${flag} ${path} is on a hostPath mount`);
    assert.equal(mapped.readOnly, false, `${flag} is writable`);
    assert.equal(mapped.host, toHostPath(path, flags.hostPrefix), `${flag}: --host-prefix maps it`);
  }
  assert.equal(
    flags.multusKubeconfigFileHost,
    `${toHostPath(flags.cniConfDir, flags.hostPrefix)}/multus.d/multus.kubeconfig`,
  );
  const hostPaths = [...volumes.values()].map((v) => v.hostPath?.path).filter(Boolean);
  for (
    const p of [
      "/opt/cni/bin",
      "/etc/cni/net.d",
      "/var/lib/cni/multus",
      "/var/lib/kubelet/pod-resources",
    ]
  ) {
    assert.ok(hostPaths.includes(p), `hostPath ${p} is mounted`);
  }
  const podResources = c.volumeMounts.find((m: Obj) =>
    volumes.get(m.name)?.hostPath?.path === "/var/lib/kubelet/pod-resources"
  );
  assert.equal(podResources.readOnly, true);
});

Deno.test("the image puts the binary where the DaemonSet runs it, under the name build.sh writes", async () => {
  const containerfile = await Deno.readTextFile(join(DEPLOY, "Containerfile"));
  const copy = /^COPY dist\/multus-\$\{TARGETARCH\} (\S+)$/m.exec(containerfile);
  assert.ok(copy, "Containerfile copies dist/multus-${TARGETARCH}");
  assert.equal(copy[1], only("DaemonSet").spec.template.spec.containers[0].command[0]);
  assert.match(containerfile, /^FROM gcr\.io\/distroless\/cc-debian12/m);
  const build = await Deno.readTextFile(join(REPO, "scripts", "build.sh"));
  assert.match(build, /x86_64\) target=x86_64-unknown-linux-gnu; docker_arch=amd64/);
  assert.match(build, /aarch64\) target=aarch64-unknown-linux-gnu; docker_arch=arm64/);
  assert.match(build, /ln -f "\$out" "dist\/multus-\$docker_arch"/);
  const permissions = (await Deno.readTextFile(join(REPO, "scripts", "permission_flags"))).trim();
  assert.match(build, /read -r -a permissions <"\$root\/scripts\/permission_flags"/);
  assert.equal(permissions, "--no-prompt --allow-all");
});
