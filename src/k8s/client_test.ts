import assert from "node:assert/strict";
import { startTestApiServer, type TestApiServer } from "../../tests/k8s_api/server.ts";
import { KubeClient, type KubeClientOptions } from "./client.ts";
import { K8sApiError } from "./errors.ts";
import { type KubeCredentials, loadKubeconfig } from "./kubeconfig.ts";
import { type KubeObject, NAD_RESOURCE, type Pod, POD_RESOURCE, type WatchEvent } from "./types.ts";

const POD: Pod = {
  metadata: {
    name: "web",
    namespace: "default",
    annotations: { "k8s.v1.cni.cncf.io/networks": "macvlan", keep: "me" },
  },
  spec: { nodeName: "node-1" },
  status: { phase: "Pending" },
};

const NAD = {
  metadata: { name: "macvlan", namespace: "default" },
  spec: { config: '{"cniVersion":"1.0.0","type":"macvlan"}' },
};

/** Runs `fn` with a fresh server (one pod, one NAD) and a client for it; closes both. */
async function withClient(
  options: {
    kubeconfig?: Parameters<TestApiServer["writeKubeconfig"]>[0];
    client?: KubeClientOptions;
  },
  fn: (ctx: { server: TestApiServer; client: KubeClient; creds: KubeCredentials }) => Promise<void>,
): Promise<void> {
  const server = await startTestApiServer({ pods: [POD], nads: [NAD] });
  let client: KubeClient | undefined;
  try {
    const creds = await loadKubeconfig(await server.writeKubeconfig(options.kubeconfig));
    client = new KubeClient(creds, options.client);
    await fn({ server, client, creds });
  } finally {
    client?.close();
    await server.close();
  }
}

/** Runs `fn`, expects a K8sApiError, checks no secret is in it, returns it. */
async function apiError(fn: () => Promise<unknown>, secrets: string[] = []): Promise<K8sApiError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof K8sApiError, `expected K8sApiError, got ${err}`);
    for (const secret of secrets) {
      assert.ok(!err.message.includes(secret), `secret in message: ${err.message}`);
      assert.ok(!(err.details ?? "").includes(secret), `secret in details: ${err.details}`);
    }
    return err;
  }
  throw new assert.AssertionError({ message: "expected a K8sApiError" });
}

function summary(server: TestApiServer): string[] {
  return server.requests().map((r) => `${r.method} ${r.status}${r.fault ? ` ${r.fault}` : ""}`);
}

Deno.test("KubeClient.getPod() authenticates with a bearer token", async () => {
  await withClient({}, async ({ server, client }) => {
    const pod = await client.getPod("default", "web");
    assert.equal(pod.metadata.name, "web");
    assert.equal(pod.metadata.uid, server.getPod("default", "web")?.metadata.uid);
    const [request] = server.requests();
    assert.equal(request.auth, "token");
    assert.equal(request.user, server.tokenUser);
    assert.equal(client.requestsMade, 1);
  });
});

Deno.test("KubeClient.getPod() authenticates with a client certificate (data and files)", async () => {
  for (const auth of ["cert", "certFile"] as const) {
    await withClient({ kubeconfig: { auth } }, async ({ server, client, creds }) => {
      assert.equal(creds.token, undefined);
      await client.getPod("default", "web");
      const [request] = server.requests();
      assert.equal(request.auth, "cert", auth);
      assert.equal(request.user, "system:node:test");
    });
  }
});

Deno.test("KubeClient reuses the connection and counts requests", async () => {
  await withClient({}, async ({ client }) => {
    await client.getPod("default", "web");
    await client.getNetworkAttachmentDefinition("default", "macvlan");
    await client.getPod("default", "web");
    assert.equal(client.requestsMade, 3);
  });
});

Deno.test("KubeClient rejects a rogue client certificate with 401, not retried", async () => {
  await withClient({ kubeconfig: { auth: "rogueCert" } }, async ({ server, client, creds }) => {
    const err = await apiError(() => client.getPod("default", "web"), [
      creds.keyPem!,
      creds.certPem!,
    ]);
    assert.equal(err.status, 401);
    assert.equal(err.reason, "Unauthorized");
    assert.equal(err.code, 999);
    assert.equal(err.retryable, false);
    assert.match(
      err.message,
      /^Cannot get pod "default\/web": the API server answered 401 Unauthorized/,
    );
    assert.ok(err.message.includes("were rejected"), err.message);
    assert.deepEqual(server.requests().map((r) => r.auth), ["untrusted-cert"]);
  });
});

Deno.test("KubeClient rejects a wrong token with 401 and never shows it", async () => {
  await withClient({ kubeconfig: { auth: "wrongToken" } }, async ({ server, client, creds }) => {
    const err = await apiError(() => client.getPod("default", "web"), [creds.token!, server.token]);
    assert.equal(err.status, 401);
    assert.equal(
      err.message,
      `Cannot get pod "default/web": the API server answered 401 Unauthorized (the credentials from "${creds.source}" were rejected: an expired or rotated token, or an untrusted client certificate)`,
    );
    assert.deepEqual(server.requests().map((r) => r.auth), ["invalid-token"]);
  });
});

Deno.test("KubeClient picks up a rotated token from tokenFile on the next load", async () => {
  await withClient({ kubeconfig: { auth: "tokenFile" } }, async ({ server, client }) => {
    await client.getPod("default", "web");
    const path = await server.writeKubeconfig({ auth: "tokenFile" });
    server.rotateToken();
    const stale = await apiError(() => client.getPod("default", "web"));
    assert.equal(stale.status, 401);
    // the kubelet rewrote the token file: the next run reads it
    const tokenFile = `${server.dir}/token-${path.split("-").at(-1)}`;
    await Deno.writeTextFile(tokenFile, server.token);
    const fresh = new KubeClient(await loadKubeconfig(path));
    try {
      await fresh.getPod("default", "web");
    } finally {
      fresh.close();
    }
  });
});

Deno.test("KubeClient answers 404 with a clear K8sApiError and no retry", async () => {
  await withClient({}, async ({ server, client }) => {
    let err = await apiError(() => client.getNetworkAttachmentDefinition("default", "missing"));
    assert.equal(err.status, 404);
    assert.equal(err.reason, "NotFound");
    assert.equal(err.notFound, true);
    assert.equal(err.verb, "get");
    assert.equal(
      err.path,
      "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/missing",
    );
    assert.equal(
      err.message,
      'Cannot get network-attachment-definition "default/missing": the API server answered 404 Not Found: network-attachment-definitions.k8s.cni.cncf.io "missing" not found',
    );
    assert.equal(err.kubeStatus?.details?.name, "missing");
    err = await apiError(() => client.getPod("default", "gone"));
    assert.equal(
      err.message,
      'Cannot get pod "default/gone": the API server answered 404 Not Found: pods "gone" not found',
    );
    assert.equal(server.requests().length, 2);
  });
});

Deno.test("KubeClient.getNetworkAttachmentDefinition() returns the NAD", async () => {
  await withClient({}, async ({ client }) => {
    const nad = await client.getNetworkAttachmentDefinition("default", "macvlan");
    assert.equal(nad.spec?.config, NAD.spec.config);
    assert.equal(nad.kind, "NetworkAttachmentDefinition");
  });
});

Deno.test("KubeClient refuses answers that are not the object asked for, saying what came back", async () => {
  await withClient({}, async ({ server, client }) => {
    const pod = server.getPod("default", "web")!;
    const podPath = "/api/v1/namespaces/default/pods/web";
    const nadPath =
      "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/macvlan";
    const storedNad = {
      apiVersion: "k8s.cni.cncf.io/v1",
      kind: "NetworkAttachmentDefinition",
      metadata: { name: "macvlan", namespace: "default", uid: "u-1" },
      spec: { config: NAD.spec.config },
    };
    const cases: [string, string, unknown, string][] = [
      [
        "a PodList",
        podPath,
        { kind: "PodList", apiVersion: "v1", metadata: {}, items: [pod] },
        'Cannot get pod "default/web": the API server answered 200 with a PodList (apiVersion "v1"), not a pod',
      ],
      [
        "a NAD served as the pod",
        podPath,
        storedNad,
        'Cannot get pod "default/web": the API server answered 200 with a NetworkAttachmentDefinition "default/macvlan" (apiVersion "k8s.cni.cncf.io/v1"), not a pod',
      ],
      [
        "another pod",
        podPath,
        { ...pod, metadata: { ...pod.metadata, name: "other" } },
        'Cannot get pod "default/web": the API server answered 200 with pod "default/other", not "default/web"',
      ],
      [
        "a pod of the wrong apiVersion",
        podPath,
        { ...pod, apiVersion: "v2" },
        'Cannot get pod "default/web": the API server answered 200 with a Pod "default/web" (apiVersion "v2"), not a pod',
      ],
      [
        "a numeric annotation",
        podPath,
        {
          ...pod,
          metadata: { ...pod.metadata, annotations: { "k8s.v1.cni.cncf.io/networks": 5 } },
        },
        'Cannot get pod "default/web": the API server answered 200 with pod "default/web" whose metadata.annotations["k8s.v1.cni.cncf.io/networks"] is a number instead of a string',
      ],
      [
        "a list",
        podPath,
        [pod],
        'Cannot get pod "default/web": the API server answered 200 with a list, not a pod',
      ],
      [
        "an empty body",
        podPath,
        "",
        'Cannot get pod "default/web": the API server answered 200 with nothing, not a pod',
      ],
      [
        "an object spec.config",
        nadPath,
        { ...storedNad, spec: { config: { type: "macvlan" } } },
        'Cannot get network-attachment-definition "default/macvlan": the API server answered 200 with network-attachment-definition "default/macvlan" whose spec.config is an object instead of a string',
      ],
      [
        "a pod served as the NAD",
        nadPath,
        pod,
        'Cannot get network-attachment-definition "default/macvlan": the API server answered 200 with a Pod "default/web" (apiVersion "v1"), not a network-attachment-definition',
      ],
    ];
    for (const [label, path, body, message] of cases) {
      server.clearRequests();
      server.inject({ kind: "status", status: 200, path, body });
      const err = await apiError(() =>
        path === podPath
          ? client.getPod("default", "web")
          : client.getNetworkAttachmentDefinition("default", "macvlan")
      );
      assert.equal(err.message, message, label);
      assert.equal(err.reason, "InvalidResponse", label);
      assert.equal(err.code, 999, label);
      assert.match(err.details ?? "", /"server" in/, label);
      assert.equal(server.requests().length, 1, `${label}: not retried`);
    }
  });
});

Deno.test("KubeClient takes null fields of an answer as absent, as Go does", async () => {
  await withClient({}, async ({ server, client }) => {
    const pod = server.getPod("default", "web")!;
    server.inject({
      kind: "status",
      status: 200,
      path: "/api/v1/namespaces/default/pods/web",
      body: { ...pod, metadata: { ...pod.metadata, annotations: null, labels: null }, spec: null },
    });
    const read = await client.getPod("default", "web");
    assert.equal(read.metadata.uid, pod.metadata.uid);
    assert.equal("annotations" in read.metadata, false);
    assert.equal("spec" in read, false);
  });
});

Deno.test("KubeClient.setPodAnnotations() refuses a write answered with another object", async () => {
  await withClient({}, async ({ server, client }) => {
    const pod = await client.getPod("default", "web");
    server.inject({
      kind: "status",
      status: 200,
      method: "PATCH",
      body: { ...pod, metadata: { ...pod.metadata, name: "other" } },
    });
    const err = await apiError(() => client.setPodAnnotations(pod, { a: "b" }));
    assert.equal(
      err.message,
      'Cannot patch pod "default/web" status: the API server answered 200 with pod "default/other", not "default/web"',
    );
  });
});

Deno.test("KubeClient retries 500 twice then succeeds, in three requests", async () => {
  await withClient({}, async ({ server, client }) => {
    server.inject({ kind: "status", status: 500, times: 2 });
    const pod = await client.getPod("default", "web");
    assert.equal(pod.metadata.name, "web");
    assert.deepEqual(summary(server), ["GET 500 status", "GET 500 status", "GET 200"]);
    assert.equal(client.requestsMade, 3);
  });
});

Deno.test("KubeClient honours Retry-After on 429", async () => {
  await withClient({}, async ({ server, client }) => {
    server.inject({ kind: "status", status: 429, retryAfter: 1 });
    const started = performance.now();
    await client.getPod("default", "web");
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 950, `retried after ${elapsed} ms`);
    const [first, second] = server.requests();
    assert.ok(second.time - first.time >= 950);
  });
});

Deno.test("KubeClient gives up at once when Retry-After exceeds the budget", async () => {
  await withClient({ client: { totalTimeoutMs: 2000 } }, async ({ server, client }) => {
    server.inject({ kind: "status", status: 429, retryAfter: 30 });
    const started = performance.now();
    const err = await apiError(() => client.getPod("default", "web"));
    assert.ok(performance.now() - started < 500);
    assert.equal(err.status, 429);
    assert.equal(err.code, 11);
    assert.match(err.message, /answered 429 Too Many Requests: Too many requests/);
    assert.equal(server.requests().length, 1);
  });
});

Deno.test("KubeClient stops retrying 503 after maxRetries", async () => {
  await withClient({ client: { maxRetries: 2 } }, async ({ server, client }) => {
    server.inject({ kind: "status", status: 503, times: 10 });
    const err = await apiError(() => client.getPod("default", "web"));
    assert.equal(err.status, 503);
    assert.equal(err.reason, "ServiceUnavailable");
    assert.equal(err.code, 11);
    assert.match(err.message, /\(3 attempts in \d+\.\d s\)$/);
    assert.equal(server.requests().length, 3);
  });
});

Deno.test("KubeClient does not retry 403, 409 or 422", async () => {
  await withClient({}, async ({ server, client }) => {
    for (const status of [403, 409, 422]) {
      server.clearRequests();
      server.inject({ kind: "status", status });
      const err = await apiError(() => client.getPod("default", "web"));
      assert.equal(err.status, status);
      assert.equal(err.code, 999);
      assert.equal(server.requests().length, 1);
    }
  });
});

Deno.test("KubeClient fails a hanging request within the request timeout", async () => {
  await withClient(
    { client: { requestTimeoutMs: 300, totalTimeoutMs: 500 } },
    async ({ server, client }) => {
      server.inject({ kind: "hang" });
      const started = performance.now();
      const err = await apiError(() => client.getPod("default", "web"));
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 1000, `failed after ${elapsed} ms`);
      assert.equal(err.status, 0);
      assert.equal(err.reason, "Timeout");
      assert.equal(err.code, 11);
      assert.match(
        err.message,
        /^Cannot get pod "default\/web": the API server at https:\/\/127\.0\.0\.1:\d+ did not answer within 300 ms$/,
      );
      // not enough budget left for another full attempt
      assert.equal(server.requests().length, 1);
    },
  );
});

Deno.test("KubeClient retries a timed-out request when the budget allows", async () => {
  await withClient(
    { client: { requestTimeoutMs: 600, totalTimeoutMs: 5000 } },
    async ({ server, client }) => {
      server.inject({ kind: "hang", times: 1 });
      await client.getPod("default", "web");
      assert.deepEqual(summary(server), ["GET 0 hang", "GET 200"]);
    },
  );
});

Deno.test("KubeClient retries refused connections, then fails clearly", async () => {
  await withClient({ client: { maxRetries: 3 } }, async ({ server, client }) => {
    server.inject({ kind: "refuse" });
    const err = await apiError(() => client.getPod("default", "web"));
    assert.equal(err.status, 0);
    assert.equal(err.reason, "ConnectionReset");
    assert.equal(err.code, 11);
    assert.match(
      err.message,
      /^Cannot get pod "default\/web": the connection to the API server at https:\/\/127\.0\.0\.1:\d+ was closed before it answered/,
    );
    assert.match(err.message, /\(4 attempts in/);
    assert.equal(server.requests().filter((r) => r.fault === "refuse").length, 4);
  });
});

Deno.test("KubeClient recovers when refused connections stop", async () => {
  await withClient({}, async ({ server, client }) => {
    server.inject({ kind: "refuse", times: 2 });
    await client.getPod("default", "web");
    assert.equal(client.requestsMade, 3);
  });
});

Deno.test("KubeClient reports connection refused on a closed port", async () => {
  await withClient({ client: { maxRetries: 1 } }, async ({ server }) => {
    const other = await startTestApiServer();
    const url = other.url;
    await other.close();
    const client = new KubeClient(
      await loadKubeconfig(await server.writeKubeconfig({ server: url })),
      {
        maxRetries: 1,
      },
    );
    try {
      const err = await apiError(() => client.getPod("default", "web"));
      assert.equal(err.reason, "ConnectionRefused");
      assert.equal(err.code, 11);
      assert.match(
        err.message,
        /cannot connect to the API server at https:\/\/127\.0\.0\.1:\d+: connection refused \(2 attempts/,
      );
      assert.equal(client.requestsMade, 2);
    } finally {
      client.close();
    }
  });
});

Deno.test("KubeClient retries dropped connections, then fails clearly", async () => {
  await withClient({ client: { maxRetries: 2 } }, async ({ server, client }) => {
    server.inject({ kind: "drop", path: "/api/v1/namespaces/default/pods/*" });
    const err = await apiError(() => client.getPod("default", "web"));
    assert.equal(err.status, 0);
    assert.equal(err.reason, "ConnectionReset");
    assert.deepEqual(summary(server), ["GET 0 drop", "GET 0 drop", "GET 0 drop"]);
    server.clearFaults();
    server.inject({ kind: "drop", times: 1 });
    await client.getPod("default", "web");
  });
});

Deno.test("KubeClient.setPodAnnotations() writes once: a merge patch with the pod's UID", async () => {
  await withClient({}, async ({ server, client }) => {
    const pod = await client.getPod("default", "web");
    server.clearRequests();
    const updated = await client.setPodAnnotations(pod, {
      "k8s.v1.cni.cncf.io/network-status": "[]",
      "k8s.v1.cni.cncf.io/networks": null,
    });
    const requests = server.requests();
    assert.equal(requests.length, 1);
    assert.equal(requests[0].method, "PATCH");
    assert.equal(requests[0].path, "/api/v1/namespaces/default/pods/web/status");
    assert.equal(requests[0].contentType, "application/merge-patch+json");
    assert.deepEqual(requests[0].body, {
      metadata: {
        uid: pod.metadata.uid,
        annotations: {
          "k8s.v1.cni.cncf.io/network-status": "[]",
          "k8s.v1.cni.cncf.io/networks": null,
        },
      },
    });
    const stored = server.getPod("default", "web")!;
    assert.deepEqual(stored.metadata.annotations, {
      keep: "me",
      "k8s.v1.cni.cncf.io/network-status": "[]",
    });
    assert.deepEqual(stored.spec, POD.spec);
    assert.equal(updated.metadata.resourceVersion, stored.metadata.resourceVersion);
    assert.notEqual(updated.metadata.resourceVersion, pod.metadata.resourceVersion);
  });
});

Deno.test("KubeClient.setPodAnnotations() fails with 409 when the pod was replaced", async () => {
  await withClient({}, async ({ server, client }) => {
    const pod = await client.getPod("default", "web");
    server.setPod({ ...POD, metadata: { ...POD.metadata, uid: "new-uid" } });
    const err = await apiError(() => client.setPodAnnotations(pod, { a: "b" }));
    assert.equal(err.status, 409);
    assert.equal(err.reason, "Conflict");
    assert.equal(err.code, 999);
    assert.match(
      err.message,
      /^Cannot patch pod "default\/web" status: the API server answered 409 Conflict: Operation cannot be fulfilled on pods "web": .*Precondition failed: UID in precondition/,
    );
    assert.equal(server.getPod("default", "web")?.metadata.annotations?.a, undefined);
  });
});

Deno.test("KubeClient.setPodAnnotations() falls back to PUT when patch is forbidden", async () => {
  await withClient({}, async ({ server, client }) => {
    server.forbid("patch", "pods/status");
    const pod = await client.getPod("default", "web");
    server.clearRequests();
    await client.setPodAnnotations(pod, { "k8s.v1.cni.cncf.io/network-status": "[]" });
    assert.deepEqual(
      server.requests().map((r) => `${r.method} ${r.path} ${r.status}`),
      [
        "PATCH /api/v1/namespaces/default/pods/web/status 403",
        "PUT /api/v1/namespaces/default/pods/web/status 200",
      ],
    );
    const put = server.requests()[1].body as Pod;
    assert.equal(put.metadata.resourceVersion, pod.metadata.resourceVersion);
    const stored = server.getPod("default", "web")!;
    assert.equal(stored.metadata.annotations?.["k8s.v1.cni.cncf.io/network-status"], "[]");
    assert.equal(stored.metadata.annotations?.keep, "me");
  });
});

Deno.test("KubeClient.setPodAnnotations() re-reads the pod on a 409 during the PUT fallback", async () => {
  await withClient({}, async ({ server, client }) => {
    server.forbid("patch", "pods/status");
    const pod = await client.getPod("default", "web");
    // someone else writes the pod meanwhile: our resourceVersion is stale
    const current = server.getPod("default", "web")!;
    current.metadata.annotations = { ...current.metadata.annotations, other: "writer" };
    delete current.metadata.resourceVersion;
    server.setPod(current);
    server.clearRequests();
    await client.setPodAnnotations(pod, { mine: "yes", keep: null });
    assert.deepEqual(summary(server), ["PATCH 403", "PUT 409", "GET 200", "PUT 200"]);
    assert.deepEqual(server.getPod("default", "web")?.metadata.annotations, {
      "k8s.v1.cni.cncf.io/networks": "macvlan",
      other: "writer",
      mine: "yes",
    });
  });
});

Deno.test("KubeClient.setPodAnnotations() stops the PUT fallback when the pod was replaced", async () => {
  await withClient({}, async ({ server, client }) => {
    server.forbid("patch", "pods/status");
    const pod = await client.getPod("default", "web");
    server.setPod({ ...POD, metadata: { ...POD.metadata, uid: "other-uid" } });
    const err = await apiError(() => client.setPodAnnotations(pod, { a: "b" }));
    assert.equal(err.status, 409);
    assert.match(err.message, /the pod was deleted and created again/);
  });
});

Deno.test("KubeClient.setPodAnnotations() reports 403 when update is forbidden too", async () => {
  await withClient({}, async ({ server, client }) => {
    server.forbid("patch", "pods/status");
    server.forbid("update", "pods/status");
    const pod = await client.getPod("default", "web");
    const err = await apiError(() => client.setPodAnnotations(pod, { a: "b" }));
    assert.equal(err.status, 403);
    assert.equal(err.verb, "update");
    assert.equal(
      err.message,
      `Cannot update pod "default/web" status: the API server answered 403 Forbidden: pods "web" is forbidden: User "${server.tokenUser}" cannot update resource "pods/status" in API group "" in the namespace "default"`,
    );
    assert.ok(err.details?.includes("RBAC"));
  });
});

Deno.test("KubeClient works through node:https with insecure-skip-tls-verify", async () => {
  for (const auth of ["token", "cert"] as const) {
    await withClient(
      { kubeconfig: { tls: "insecure", auth } },
      async ({ server, client, creds }) => {
        assert.equal(creds.insecureSkipTlsVerify, true);
        await client.getPod("default", "web");
        const pod = await client.getPod("default", "web");
        await client.setPodAnnotations(pod, { a: "b" });
        assert.equal(server.getPod("default", "web")?.metadata.annotations?.a, "b");
        assert.equal(server.requests()[0].auth, auth);
      },
    );
  }
});

Deno.test("KubeClient through node:https times out and retries like fetch", async () => {
  await withClient(
    { kubeconfig: { tls: "insecure" }, client: { requestTimeoutMs: 600, totalTimeoutMs: 5000 } },
    async ({ server, client }) => {
      server.inject({ kind: "hang", times: 1 });
      server.inject({ kind: "status", status: 503, times: 1 });
      await client.getPod("default", "web");
      assert.deepEqual(summary(server), ["GET 0 hang", "GET 503 status", "GET 200"]);
      server.inject({ kind: "status", status: 404 });
      const err = await apiError(() => client.getPod("default", "web"));
      assert.equal(err.status, 404);
    },
  );
});

Deno.test("KubeClient verifies the server against tls-server-name (node:https)", async () => {
  await withClient(
    { kubeconfig: { tlsServerName: "kubernetes.default.svc" } },
    async ({ client, creds }) => {
      assert.equal(creds.tlsServerName, "kubernetes.default.svc");
      await client.getPod("default", "web");
    },
  );
  await withClient(
    { kubeconfig: { tlsServerName: "wrong.example" } },
    async ({ server, client }) => {
      const err = await apiError(() => client.getPod("default", "web"));
      assert.equal(err.reason, "TlsError");
      assert.equal(err.code, 999);
      assert.equal(client.requestsMade, 1);
      assert.equal(server.requests().length, 0);
    },
  );
});

Deno.test("KubeClient refuses a server signed by an unknown CA, without retrying, saying which CA and what to do", async () => {
  await withClient({ kubeconfig: { tls: "none" } }, async ({ server, client, creds }) => {
    const err = await apiError(() => client.getPod("default", "web"), [server.token]);
    assert.equal(err.status, 0);
    assert.equal(err.reason, "TlsError");
    assert.equal(err.code, 999);
    assert.equal(
      err.message,
      `Cannot get pod "default/web": the TLS connection to the API server at ${server.url} (from kubeconfig "${creds.source}") failed: its certificate is not signed by a certificate authority this node trusts, and kubeconfig "${creds.source}" names none (UnknownIssuer)`,
    );
    assert.match(
      err.details ?? "",
      /Put the cluster's CA certificate in "certificate-authority-data"/,
    );
    assert.equal(client.requestsMade, 1);
  });
  // Another cluster's CA, as a file.
  const other = await startTestApiServer();
  try {
    await withClient({ kubeconfig: { tls: "caFile" } }, async ({ server, creds }) => {
      const client = new KubeClient({ ...creds, caPem: other.caPem });
      try {
        const err = await apiError(() => client.getPod("default", "web"));
        // Both test CAs have the same name: the signature is what does not match.
        assert.equal(
          err.message,
          `Cannot get pod "default/web": the TLS connection to the API server at ${server.url} (from kubeconfig "${creds.source}") failed: its certificate is not signed by the certificate authority in "certificate-authority" file "${server.caFile}" of cluster "local" (BadSignature)`,
        );
      } finally {
        client.close();
      }
    });
  } finally {
    await other.close();
  }
});

Deno.test("KubeClient names a CA, client certificate or key it cannot use, and the kubeconfig", async () => {
  const junkCert =
    "-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n";
  await withClient({ kubeconfig: { auth: "cert" } }, async ({ server, creds }) => {
    const rogueKey = await Deno.readTextFile(server.rogueKeyFile);
    const cases: [string, Partial<KubeCredentials>, string, RegExp][] = [
      [
        "a CA that is not a certificate",
        { caPem: junkCert },
        `the certificate authority in "certificate-authority-data" of cluster "local" is not a valid certificate (BadEncoding)`,
        /cluster's CA certificate in PEM form/,
      ],
      [
        "the same through node:https (tls-server-name)",
        { caPem: junkCert, tlsServerName: "localhost" },
        `the certificate authority in "certificate-authority-data" of cluster "local" is not a valid certificate (BadEncoding)`,
        /cluster's CA certificate in PEM form/,
      ],
      [
        "a client certificate that is not a certificate",
        { certPem: junkCert },
        `the client certificate in "client-certificate-data" of user "multus" is not a valid certificate (BadEncoding)`,
        /PEM certificate issued for this client/,
      ],
      [
        "a key of another certificate",
        { keyPem: rogueKey },
        `the client key in "client-key-data" of user "multus" does not belong to the client certificate in "client-certificate-data" of user "multus"`,
        /key the client certificate was issued for/,
      ],
      [
        "an IP address as tls-server-name",
        { tlsServerName: "127.0.0.1" },
        `"tls-server-name" "127.0.0.1" is an IP address, which cannot be verified as a server name`,
        /DNS name/,
      ],
    ];
    for (const [label, change, what, details] of cases) {
      const client = new KubeClient({ ...creds, ...change });
      try {
        const err = await apiError(() => client.getPod("default", "web"));
        assert.equal(
          err.message,
          `Cannot get pod "default/web": cannot use kubeconfig "${creds.source}": ${what}`,
          label,
        );
        assert.match(err.details ?? "", details, label);
        assert.equal(err.reason, "TlsError", label);
        assert.equal(err.code, 7, label);
        assert.equal(client.requestsMade, 0, `${label}: nothing sent`);
      } finally {
        client.close();
      }
    }
    assert.deepEqual(server.requests(), [], "nothing reached the server");
  });
});

Deno.test("KubeClient says when the server does not speak TLS, or its name is not in the certificate", async () => {
  const { createServer } = await import("node:http");
  const plain = createServer((_req, res) => res.end("{}"));
  await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", () => resolve()));
  const port = (plain.address() as { port: number }).port;
  try {
    await withClient({}, async ({ creds }) => {
      for (const tlsServerName of [undefined, "localhost"]) {
        const client = new KubeClient({
          ...creds,
          server: `https://127.0.0.1:${port}`,
          tlsServerName,
        });
        try {
          const err = await apiError(() => client.getPod("default", "web"));
          assert.equal(
            err.message,
            `Cannot get pod "default/web": the TLS connection to the API server at https://127.0.0.1:${port} (from kubeconfig "${creds.source}") failed: the server does not speak TLS there (InvalidContentType)`,
          );
          assert.match(err.details ?? "", /Check the port of "server"/);
          assert.equal(client.requestsMade, 1);
        } finally {
          client.close();
        }
      }
    });
  } finally {
    plain.close();
  }
  await withClient(
    { kubeconfig: { tlsServerName: "wrong.example" } },
    async ({ client, creds }) => {
      const err = await apiError(() => client.getPod("default", "web"));
      assert.match(
        err.message,
        /failed: its certificate is not valid for "wrong\.example" \(ERR_TLS_CERT_ALTNAME_INVALID|Hostname\/IP does not match\)$/,
      );
      assert.match(err.details ?? "", new RegExp(`"tls-server-name" to one of its names`));
      assert.ok(err.message.includes(`kubeconfig "${creds.source}"`));
    },
  );
});

Deno.test("KubeClient trusts a CA given as a file", async () => {
  await withClient({ kubeconfig: { tls: "caFile" } }, async ({ client }) => {
    await client.getPod("default", "web");
  });
});

Deno.test("KubeClient.createEvent() posts a Multus event about the pod", async () => {
  await withClient({}, async ({ server, client }) => {
    const pod = await client.getPod("default", "web");
    const created = await client.createEvent(pod, {
      type: "Normal",
      reason: "AddedInterface",
      message: "Add net1 [10.1.1.5/24] from default/macvlan",
      host: "node-1",
    });
    const [event] = server.events();
    assert.equal(
      created.metadata.name,
      event.metadata && (event.metadata as { name: string }).name,
    );
    assert.match(String((event.metadata as { name: string }).name), /^web\.[0-9a-f]+$/);
    assert.deepEqual(event.involvedObject, {
      apiVersion: "v1",
      kind: "Pod",
      name: "web",
      namespace: "default",
      uid: pod.metadata.uid,
      resourceVersion: pod.metadata.resourceVersion,
    });
    assert.equal(event.type, "Normal");
    assert.equal(event.reason, "AddedInterface");
    assert.equal(event.message, "Add net1 [10.1.1.5/24] from default/macvlan");
    assert.deepEqual(event.source, { component: "multus", host: "node-1" });
    assert.equal(event.reportingComponent, "multus");
    assert.equal(event.reportingInstance, "node-1");
    assert.equal(event.count, 1);
    assert.equal(event.firstTimestamp, event.lastTimestamp);
    assert.match(String(event.firstTimestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(summary(server).at(-1), "POST 201");
  });
});

Deno.test("KubeClient cannot be used after close()", async () => {
  await withClient({}, async ({ client }) => {
    client.close();
    await assert.rejects(() => client.getPod("default", "web"), TypeError);
  });
});

/** The first `n` events of a watch, as `TYPE name` lines. */
async function firstEvents(
  events: AsyncIterable<WatchEvent<KubeObject>>,
  n: number,
): Promise<string[]> {
  const out: string[] = [];
  if (n === 0) return out;
  for await (const event of events) {
    out.push(
      `${event.type} ${event.type === "ERROR" ? event.object.code : event.object.metadata.name}`,
    );
    if (out.length === n) break;
  }
  return out;
}

Deno.test("KubeClient.list() lists by namespace and field selector, with the list's version", async () => {
  await withClient({}, async ({ server, client }) => {
    server.setPod({
      metadata: { name: "other", namespace: "default" },
      spec: { nodeName: "node-2" },
    });
    const all = await client.list<Pod>(POD_RESOURCE);
    assert.deepEqual(all.items.map((p) => p.metadata.name), ["other", "web"]);
    assert.equal(all.metadata.resourceVersion, server.resourceVersion());
    const mine = await client.list<Pod>(POD_RESOURCE, {
      namespace: "default",
      fieldSelector: "spec.nodeName=node-1",
    });
    assert.deepEqual(mine.items.map((p) => p.metadata.name), ["web"]);
    const nads = await client.list(NAD_RESOURCE);
    assert.equal(nads.items.length, 1);
    assert.deepEqual(server.requests().map((r) => `${r.verb} ${r.path}?${r.query}`), [
      "list /api/v1/pods?",
      "list /api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3Dnode-1",
      "list /apis/k8s.cni.cncf.io/v1/network-attachment-definitions?",
    ]);
    server.forbid("list", "pods");
    const err = await apiError(() => client.list(POD_RESOURCE));
    assert.equal(err.status, 403);
    assert.match(
      err.message,
      /^Cannot list pods: the API server answered 403 Forbidden: pods is forbidden/,
    );
  });
});

Deno.test("KubeClient.list() stops at once when its signal aborts, retries included", async () => {
  await withClient({}, async ({ server, client }) => {
    server.inject({ kind: "status", status: 503, times: 100 });
    const controller = new AbortController();
    const listing = client.list(POD_RESOURCE, { signal: controller.signal });
    while (server.requests().length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort(new Error("stopped by the test"));
    await assert.rejects(listing, /stopped by the test/);
  });
});

Deno.test("KubeClient.watch() negotiates HTTP/2 and streams events from a resourceVersion", async () => {
  await withClient({}, async ({ server, client }) => {
    const from = server.resourceVersion();
    server.setPod({ metadata: { name: "early", namespace: "default" } });
    const controller = new AbortController();
    const events = client.watch<KubeObject>(POD_RESOURCE, {
      resourceVersion: from,
      signal: controller.signal,
    });
    const first = firstEvents(events, 3);
    while (server.openWatches() === 0) await new Promise((r) => setTimeout(r, 5));
    server.setPod({ metadata: { name: "late", namespace: "default" } });
    server.deletePod("default", "early");
    assert.deepEqual(await first, ["ADDED early", "ADDED late", "DELETED early"]);
    const [request] = server.requests();
    assert.equal(request.httpVersion, "2.0", "fetch with Deno.createHttpClient speaks HTTP/2");
    assert.equal(request.verb, "watch");
    assert.equal(request.query, `watch=1&resourceVersion=${from}&allowWatchBookmarks=true`);
    // Breaking out of the loop ends the request: the server sees the stream reset.
    const deadline = performance.now() + 5000;
    while (server.openWatches() > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(server.openWatches(), 0);
  });
});

Deno.test("KubeClient.watch(): the request timeout bounds only the headers; silence ends it", async () => {
  await withClient({ client: { requestTimeoutMs: 200 } }, async ({ server, client }) => {
    const events = client.watch<KubeObject>(POD_RESOURCE, {
      resourceVersion: server.resourceVersion(),
      idleTimeoutMs: 10_000,
    });
    const first = firstEvents(events, 1);
    while (server.openWatches() === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 600)); // three request timeouts
    server.setPod({ metadata: { name: "late", namespace: "default" } });
    assert.deepEqual(await first, ["ADDED late"]);

    const silent = client.watch<KubeObject>(POD_RESOURCE, {
      resourceVersion: server.resourceVersion(),
      idleTimeoutMs: 300,
    });
    const err = await apiError(() => firstEvents(silent, 1));
    assert.equal(err.reason, "IdleTimeout");
    assert.equal(err.code, 11);
    assert.match(err.message, /^Cannot watch pods: the API server at \S+ sent nothing for 300 ms$/);

    server.inject({ kind: "hang", path: "/api/v1/pods" });
    const hung = await apiError(() => firstEvents(client.watch(POD_RESOURCE), 1));
    assert.equal(hung.reason, "Timeout", "no answer at all: the request timeout");
  });
});

Deno.test("KubeClient.watch() refuses an oversized event line and reports error answers", async () => {
  await withClient({}, async ({ server, client }) => {
    const from = server.resourceVersion();
    server.setPod({
      metadata: { name: "big", namespace: "default", annotations: { blob: "x".repeat(5000) } },
    });
    let err = await apiError(() =>
      firstEvents(client.watch(POD_RESOURCE, { resourceVersion: from, maxEventBytes: 4096 }), 1)
    );
    assert.equal(err.reason, "WatchEventTooLarge");
    assert.match(
      err.message,
      /^Cannot watch pods: the API server sent an event longer than 4096 bytes$/,
    );
    server.forbid("watch", "network-attachment-definitions");
    err = await apiError(() => firstEvents(client.watch(NAD_RESOURCE, { namespace: "x" }), 1));
    assert.equal(err.status, 403);
    assert.match(
      err.message,
      /^Cannot watch network-attachment-definitions in namespace "x": the API server answered 403 Forbidden/,
    );
    server.compactHistory();
    const gone = await firstEvents(client.watch(POD_RESOURCE, { resourceVersion: from }), 1);
    assert.deepEqual(gone, ["ERROR 410"], "410 comes as an ERROR event, for the caller to relist");
    server.dropWatches(); // nothing open any more
    assert.equal(server.openWatches(), 0);
  });
});

Deno.test("KubeClient.watch() ends quietly when its signal aborts, also through node:https", async () => {
  for (const tls of ["caData", "insecure"] as const) {
    await withClient({ kubeconfig: { tls } }, async ({ server, client }) => {
      const controller = new AbortController();
      const seen: string[] = [];
      const watching = (async () => {
        for await (
          const event of client.watch<KubeObject>(POD_RESOURCE, { signal: controller.signal })
        ) {
          seen.push(`${event.type} ${event.object.metadata.name}`);
        }
      })();
      while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(seen, ["ADDED web"], "no resourceVersion: an ADDED for each pod first");
      controller.abort();
      await watching;
      assert.equal(server.requests()[0].httpVersion, tls === "insecure" ? "1.1" : "2.0");
    });
  }
});
