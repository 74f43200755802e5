/**
 * @module
 * Just enough of an API server for `kubectl apply` to run against it: discovery (legacy
 * format) of the kinds deploy/ uses, GET of an object (404 until created) and create (POST),
 * which it records in order. Like a real cluster, it serves NetworkAttachmentDefinitions only
 * once their CRD has been created. Plain HTTP on 127.0.0.1.
 */

/** One resource kind the server knows. */
interface Resource {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

const BUILT_IN: Resource[] = [
  { group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true },
  { group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true },
  { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true },
  { group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false },
  { group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets", namespaced: true },
  {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "ClusterRole",
    plural: "clusterroles",
    namespaced: false,
  },
  {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "ClusterRoleBinding",
    plural: "clusterrolebindings",
    namespaced: false,
  },
  {
    group: "apiextensions.k8s.io",
    version: "v1",
    kind: "CustomResourceDefinition",
    plural: "customresourcedefinitions",
    namespaced: false,
  },
];

/** A create the server accepted: `Kind namespace/name` (no namespace for cluster objects). */
export type Created = string;

/** A running fake API server. */
export interface FakeApiServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The objects created, in order. */
  created: Created[];
  /** The objects replaced (PUT, as `kubectl replace` does), in order. */
  replaced: Created[];
  /** The stored object `Kind namespace/name` (as in `created`), if any. */
  stored(label: string): Obj | undefined;
  /** Requests that failed (unknown path or kind), for assertion messages. */
  rejected: string[];
  close(): Promise<void>;
}

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

/** Starts the server on an ephemeral port. */
export function startFakeApiServer(): FakeApiServer {
  const resources = [...BUILT_IN];
  const objects = new Map<string, Obj>();
  const created: Created[] = [];
  const replaced: Created[] = [];
  const byLabel = new Map<string, Obj>();
  const rejected: string[] = [];
  let uid = 0;

  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json" },
    });
  const status = (code: number, reason: string, message: string) =>
    json(code, { kind: "Status", apiVersion: "v1", status: "Failure", reason, message, code });
  const groupVersion = (r: Resource) => r.group === "" ? r.version : `${r.group}/${r.version}`;

  function discovery(path: string): Response | undefined {
    if (path === "/version") return json(200, { major: "1", minor: "32", gitVersion: "v1.32.0" });
    if (path === "/api") return json(200, { kind: "APIVersions", versions: ["v1"] });
    if (path === "/apis") {
      const groups = [...new Set(resources.filter((r) => r.group !== "").map(groupVersion))]
        .map((gv) => {
          const [name, version] = gv.split("/");
          const preferred = { groupVersion: gv, version };
          return { name, versions: [preferred], preferredVersion: preferred };
        });
      return json(200, { kind: "APIGroupList", apiVersion: "v1", groups });
    }
    // /api/<version> (the core group) or /apis/<group>/<version>
    const m = /^\/api\/([^/]+)$/.exec(path) ?? /^\/apis\/([^/]+\/[^/]+)$/.exec(path);
    const gv = m?.[1];
    const list = resources.filter((r) => groupVersion(r) === gv);
    if (list.length > 0) {
      return json(200, {
        kind: "APIResourceList",
        apiVersion: "v1",
        groupVersion: gv,
        resources: list.map((r) => ({
          name: r.plural,
          singularName: r.kind.toLowerCase(),
          namespaced: r.namespaced,
          kind: r.kind,
          verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
        })),
      });
    }
    return undefined;
  }

  /** The resource and the object path (without name) a URL path names, if any. */
  function route(path: string): { resource: Resource; namespace?: string; name?: string } | null {
    for (const r of resources) {
      const base = r.group === "" ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
      const pattern = r.namespaced
        ? new RegExp(`^${base}/namespaces/([^/]+)/${r.plural}(?:/([^/]+))?$`)
        : new RegExp(`^${base}/${r.plural}(?:/([^/]+))?$`);
      const m = pattern.exec(path);
      if (!m) continue;
      return r.namespaced
        ? { resource: r, namespace: m[1], name: m[2] }
        : { resource: r, name: m[1] };
    }
    return null;
  }

  async function handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    if (req.method === "GET") {
      const found = discovery(path);
      if (found) return found;
    }
    const target = route(path);
    if (!target) {
      rejected.push(`${req.method} ${path}`);
      return status(404, "NotFound", `the server could not find the requested resource`);
    }
    const { resource, namespace } = target;
    if (req.method === "GET" && target.name) {
      const obj = objects.get(path);
      return obj ? json(200, obj) : status(
        404,
        "NotFound",
        `${resource.plural} "${target.name}" not found`,
      );
    }
    if (req.method === "POST" && !target.name) {
      const obj = await req.json() as Obj;
      const name = obj.metadata?.name;
      if (obj.kind !== resource.kind || obj.apiVersion !== groupVersion(resource) || !name) {
        rejected.push(`POST ${path}: ${obj.apiVersion} ${obj.kind} ${name}`);
        return status(400, "BadRequest", "the object does not match the path");
      }
      const key = `${path}/${name}`;
      if (objects.has(key)) return status(409, "AlreadyExists", `"${name}" already exists`);
      obj.metadata = {
        ...obj.metadata,
        ...(namespace ? { namespace } : {}),
        uid: `uid-${++uid}`,
        resourceVersion: String(uid),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      };
      objects.set(key, obj);
      const label = `${obj.kind} ${namespace ? `${namespace}/` : ""}${name}`;
      byLabel.set(label, obj);
      created.push(label);
      if (obj.kind === "CustomResourceDefinition") {
        for (const v of obj.spec.versions) {
          resources.push({
            group: obj.spec.group,
            version: v.name,
            kind: obj.spec.names.kind,
            plural: obj.spec.names.plural,
            namespaced: obj.spec.scope === "Namespaced",
          });
        }
      }
      return json(201, obj);
    }
    if (req.method === "PUT" && target.name && objects.has(path)) {
      const obj = await req.json() as Obj;
      const before = objects.get(path)!;
      obj.metadata = {
        ...obj.metadata,
        uid: before.metadata.uid,
        resourceVersion: String(++uid),
        creationTimestamp: before.metadata.creationTimestamp,
      };
      objects.set(path, obj);
      const label = `${obj.kind} ${namespace ? `${namespace}/` : ""}${target.name}`;
      byLabel.set(label, obj);
      replaced.push(label);
      return json(200, obj);
    }
    rejected.push(`${req.method} ${path}`);
    return status(405, "MethodNotAllowed", `${req.method} is not supported here`);
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handle);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    created,
    replaced,
    stored: (label) => byLabel.get(label),
    rejected,
    close: () => server.shutdown(),
  };
}
