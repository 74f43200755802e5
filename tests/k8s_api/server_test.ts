import assert from "node:assert/strict";
import { startTestApiServer, type TestApiServer } from "./server.ts";

const POD_PATH = "/api/v1/namespaces/default/pods/web";

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** Runs `fn` with a server holding pod default/web and a `call` helper; closes everything. */
async function withServer(
  fn: (ctx: {
    server: TestApiServer;
    call: (
      method: string,
      path: string,
      options?: {
        body?: unknown;
        contentType?: string;
        auth?: "token" | "cert" | "rogue" | "none" | "bad";
      },
    ) => Promise<Answer>;
  }) => Promise<void>,
): Promise<void> {
  const server = await startTestApiServer({
    pods: [{
      metadata: {
        name: "web",
        namespace: "default",
        uid: "uid-1",
        annotations: { a: "1", b: "2" },
      },
      spec: { nodeName: "node-1" },
    }],
    nads: [{ metadata: { name: "macvlan", namespace: "default" }, spec: { config: "{}" } }],
  });
  const clients: Deno.HttpClient[] = [];
  const clientFor = async (auth: string) => {
    const options: Deno.CreateHttpClientOptions & Partial<Deno.TlsCertifiedKeyPem> = {
      caCerts: [server.caPem],
    };
    if (auth === "cert" || auth === "rogue") {
      options.cert = await Deno.readTextFile(
        auth === "cert" ? server.clientCertFile : server.rogueCertFile,
      );
      options.key = await Deno.readTextFile(
        auth === "cert" ? server.clientKeyFile : server.rogueKeyFile,
      );
    }
    const client = Deno.createHttpClient(options as Deno.CreateHttpClientOptions);
    clients.push(client);
    return client;
  };
  try {
    await fn({
      server,
      call: async (method, path, options = {}) => {
        const auth = options.auth ?? "token";
        const headers: Record<string, string> = {};
        if (auth === "token") headers.Authorization = `Bearer ${server.token}`;
        if (auth === "bad") headers.Authorization = "Bearer nope";
        let body: string | undefined;
        if (options.body !== undefined) {
          body = JSON.stringify(options.body);
          headers["Content-Type"] = options.contentType ?? "application/json";
        }
        const res = await fetch(`${server.url}${path}`, {
          method,
          headers,
          body,
          client: await clientFor(auth),
        });
        return { status: res.status, headers: res.headers, body: await res.json() };
      },
    });
  } finally {
    for (const client of clients) client.close();
    await server.close();
  }
}

Deno.test("test API server rejects unauthenticated requests with a 401 Status", async () => {
  await withServer(async ({ server, call }) => {
    for (const auth of ["none", "bad", "rogue"] as const) {
      const res = await call("GET", POD_PATH, { auth });
      assert.equal(res.status, 401, auth);
      assert.deepEqual(res.body, {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: "Unauthorized",
        reason: "Unauthorized",
        code: 401,
      });
    }
    assert.deepEqual(server.requests().map((r) => r.auth), [
      "none",
      "invalid-token",
      "untrusted-cert",
    ]);
  });
});

Deno.test("test API server accepts the token and the CA-signed client certificate", async () => {
  await withServer(async ({ server, call }) => {
    assert.equal((await call("GET", POD_PATH, { auth: "token" })).status, 200);
    assert.equal((await call("GET", POD_PATH, { auth: "cert" })).status, 200);
    const [token, cert] = server.requests();
    assert.deepEqual([token.auth, token.user], ["token", server.tokenUser]);
    assert.deepEqual([cert.auth, cert.user], ["cert", "system:node:test"]);
  });
});

Deno.test("test API server answers 404 like kube-apiserver", async () => {
  await withServer(async ({ call }) => {
    let res = await call("GET", "/api/v1/namespaces/default/pods/x");
    assert.equal(res.status, 404);
    assert.deepEqual(res.body, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: 'pods "x" not found',
      reason: "NotFound",
      details: { name: "x", kind: "pods" },
      code: 404,
    });
    res = await call(
      "GET",
      "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/x",
    );
    assert.equal(res.body.message, 'network-attachment-definitions.k8s.cni.cncf.io "x" not found');
    assert.deepEqual(res.body.details, {
      name: "x",
      group: "k8s.cni.cncf.io",
      kind: "network-attachment-definitions",
    });
    res = await call("GET", "/api/v1/nothing");
    assert.equal(res.status, 404);
  });
});

Deno.test("test API server applies merge patches to pods/status; null deletes", async () => {
  await withServer(async ({ server, call }) => {
    const before = server.getPod("default", "web")!;
    for (
      const contentType of [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
      ]
    ) {
      const res = await call("PATCH", `${POD_PATH}/status`, {
        body: {
          metadata: { annotations: { a: null, [contentType]: "x" } },
          spec: { nodeName: "evil" },
        },
        contentType,
      });
      assert.equal(res.status, 200);
    }
    const after = server.getPod("default", "web")!;
    assert.deepEqual(after.metadata.annotations, {
      b: "2",
      "application/merge-patch+json": "x",
      "application/strategic-merge-patch+json": "x",
    });
    assert.deepEqual(after.spec, { nodeName: "node-1" }, "pods/status keeps the spec");
    assert.ok(Number(after.metadata.resourceVersion) > Number(before.metadata.resourceVersion));
  });
});

Deno.test("test API server enforces uid and resourceVersion preconditions (409)", async () => {
  await withServer(async ({ server, call }) => {
    let res = await call("PATCH", `${POD_PATH}/status`, {
      body: { metadata: { uid: "other", annotations: { c: "3" } } },
      contentType: "application/merge-patch+json",
    });
    assert.equal(res.status, 409);
    assert.equal(res.body.reason, "Conflict");
    assert.match(
      String(res.body.message),
      /^Operation cannot be fulfilled on pods "web": .*Precondition failed: UID in precondition: other, UID in object meta: uid-1$/,
    );
    res = await call("PATCH", `${POD_PATH}/status`, {
      body: { metadata: { resourceVersion: "1", annotations: { c: "3" } } },
      contentType: "application/merge-patch+json",
    });
    assert.equal(res.status, 409);
    assert.match(String(res.body.message), /the object has been modified/);
    assert.equal(server.getPod("default", "web")?.metadata.annotations?.c, undefined);
    res = await call("PATCH", `${POD_PATH}/status`, {
      body: { metadata: { uid: "uid-1", annotations: { c: "3" } } },
      contentType: "application/merge-patch+json",
    });
    assert.equal(res.status, 200);
  });
});

Deno.test("test API server refuses other patch types (415) and non-string annotations (400)", async () => {
  await withServer(async ({ call }) => {
    let res = await call("PATCH", `${POD_PATH}/status`, {
      body: [],
      contentType: "application/json",
    });
    assert.equal(res.status, 415);
    res = await call("PATCH", `${POD_PATH}/status`, {
      body: { metadata: { annotations: { n: 1 } } },
      contentType: "application/merge-patch+json",
    });
    assert.equal(res.status, 400);
  });
});

Deno.test("test API server checks resourceVersion on PUT", async () => {
  await withServer(async ({ server, call }) => {
    const pod = server.getPod("default", "web")!;
    pod.metadata.annotations = { put: "yes" };
    let res = await call("PUT", `${POD_PATH}/status`, { body: pod });
    assert.equal(res.status, 200);
    assert.deepEqual(server.getPod("default", "web")?.metadata.annotations, { put: "yes" });
    res = await call("PUT", `${POD_PATH}/status`, { body: pod }); // stale resourceVersion now
    assert.equal(res.status, 409);
    assert.equal(
      res.body.message,
      'Operation cannot be fulfilled on pods "web": the object has been modified; please apply your changes to the latest version and try again',
    );
    res = await call("PUT", `${POD_PATH}/status`, {
      body: { ...pod, metadata: { ...pod.metadata, name: "other" } },
    });
    assert.equal(res.status, 400);
  });
});

Deno.test("test API server answers 403 for forbidden verbs until allowed", async () => {
  await withServer(async ({ server, call }) => {
    server.forbid("patch", "pods/status");
    server.forbid("get", "network-attachment-definitions");
    let res = await call("PATCH", `${POD_PATH}/status`, {
      body: { metadata: {} },
      contentType: "application/merge-patch+json",
    });
    assert.equal(res.status, 403);
    assert.deepEqual(res.body, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message:
        `pods "web" is forbidden: User "${server.tokenUser}" cannot patch resource "pods/status" in API group "" in the namespace "default"`,
      reason: "Forbidden",
      details: { name: "web", kind: "pods" },
      code: 403,
    });
    res = await call(
      "GET",
      "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/macvlan",
    );
    assert.equal(
      res.body.message,
      `network-attachment-definitions.k8s.cni.cncf.io "macvlan" is forbidden: User "${server.tokenUser}" cannot get resource "network-attachment-definitions" in API group "k8s.cni.cncf.io" in the namespace "default"`,
    );
    assert.equal((await call("GET", POD_PATH)).status, 200, "get pods still allowed");
    server.allow("patch", "pods/status");
    res = await call("PATCH", `${POD_PATH}/status`, {
      body: { metadata: {} },
      contentType: "application/merge-patch+json",
    });
    assert.equal(res.status, 200);
  });
});

Deno.test("test API server injects statuses N times, with Retry-After", async () => {
  await withServer(async ({ server, call }) => {
    server.inject({
      kind: "status",
      status: 429,
      retryAfter: 3,
      times: 2,
      path: "/api/v1/*",
      method: "GET",
    });
    let res = await call("GET", POD_PATH);
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "3");
    assert.equal(res.body.reason, "TooManyRequests");
    assert.deepEqual(res.body.details, { retryAfterSeconds: 3 });
    assert.equal((await call("GET", POD_PATH)).status, 429);
    assert.equal((await call("GET", POD_PATH)).status, 200);
    server.inject({ kind: "status", status: 503, path: /\/status$/ });
    assert.equal((await call("GET", POD_PATH)).status, 200, "path did not match");
    res = await call("PUT", `${POD_PATH}/status`, { body: server.getPod("default", "web") });
    assert.equal(res.status, 503);
    assert.deepEqual(
      server.requests().map((r) => [r.status, r.fault]),
      [[429, "status"], [429, "status"], [200, undefined], [200, undefined], [503, "status"]],
    );
  });
});

Deno.test("test API server delays answers with a latency fault", async () => {
  await withServer(async ({ server, call }) => {
    server.inject({ kind: "latency", ms: 200, times: 1 });
    const started = performance.now();
    assert.equal((await call("GET", POD_PATH)).status, 200);
    assert.ok(performance.now() - started >= 190);
    assert.ok(server.requests()[0].durationMs >= 190);
  });
});

Deno.test("test API server stores events and validates their namespace", async () => {
  await withServer(async ({ server, call }) => {
    const event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "web.1", namespace: "default" },
      involvedObject: { kind: "Pod", name: "web", namespace: "default" },
      reason: "AddedInterface",
      message: "m",
      type: "Normal",
    };
    let res = await call("POST", "/api/v1/namespaces/default/events", { body: event });
    assert.equal(res.status, 201);
    assert.equal(server.events().length, 1);
    res = await call("POST", "/api/v1/namespaces/default/events", { body: event });
    assert.equal(res.status, 409);
    assert.equal(res.body.reason, "AlreadyExists");
    res = await call("POST", "/api/v1/namespaces/default/events", {
      body: { ...event, metadata: { name: "web.2" }, involvedObject: { namespace: "other" } },
    });
    assert.equal(res.status, 422);
    assert.equal(res.body.reason, "Invalid");
  });
});

Deno.test("test API server hangs and drops requests on demand, and close() ends them", async () => {
  await withServer(async ({ server, call }) => {
    server.inject({ kind: "drop", times: 1 });
    await assert.rejects(() => call("GET", POD_PATH), TypeError);
    server.inject({ kind: "hang", times: 1 });
    const hung = call("GET", POD_PATH).then(() => "answered", () => "failed");
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(server.requests().map((r) => [r.status, r.fault]), [[0, "drop"], [0, "hang"]]);
    await server.close();
    assert.equal(await hung, "failed");
  });
});

Deno.test("test API server writes kubeconfigs with relative file references", async () => {
  await withServer(async ({ server }) => {
    const path = await server.writeKubeconfig({ auth: "certFile", tls: "caFile" });
    const text = await Deno.readTextFile(path);
    assert.match(text, /certificate-authority: "ca\.crt"/);
    assert.match(text, /client-certificate: "client\.crt"/);
    assert.match(text, /current-context: multus-context/);
    const json = JSON.parse(
      await Deno.readTextFile(await server.writeKubeconfig({ auth: "tokenFile", format: "json" })),
    );
    const tokenFile = json.users[0].user.tokenFile;
    assert.equal((await Deno.readTextFile(`${server.dir}/${tokenFile}`)).trim(), server.token);
  });
});
