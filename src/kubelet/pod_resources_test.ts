/**
 * Tests of the PodResources gRPC client against a stand-in kubelet speaking real gRPC
 * (python3-grpcio) on a unix socket.
 */

import assert from "node:assert/strict";
import http2 from "node:http2";
import { join } from "node:path";
import { CniErrorCode } from "../cni/errors.ts";
import {
  fetchPodResources,
  getPodResources,
  GrpcStatus,
  listPodResources,
  PodResourcesError,
} from "./pod_resources.ts";
import {
  type KubeletConfig,
  OTHER_POD,
  startKubeletServer,
  TEST_POD,
} from "../../tests/nfv/_kubelet.ts";

async function withKubelet(
  config: KubeletConfig,
  test: (socket: string, calls: () => Promise<unknown[]>) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nfv-kubelet-" });
  const server = await startKubeletServer(dir, config);
  try {
    await test(server.socket, () => server.calls());
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

const EXPECTED_TEST_POD = {
  name: "dpdk-app",
  namespace: "nfv",
  containers: [
    {
      name: "app",
      devices: [
        {
          resourceName: "intel.com/sriov_a",
          deviceIds: ["0000:03:02.3", "0000:03:02.0"],
          numaNodes: [0],
        },
        { resourceName: "intel.com/dpdk", deviceIds: ["0000:05:00.1"], numaNodes: [1] },
      ],
    },
    {
      name: "sidecar",
      devices: [{ resourceName: "intel.com/sriov_a", deviceIds: ["0000:03:02.5"], numaNodes: [0] }],
    },
  ],
};

Deno.test("listPodResources() returns every pod of the node with its devices", async () => {
  await withKubelet({ pods: [OTHER_POD, TEST_POD] }, async (socket, calls) => {
    const pods = await listPodResources({ socket });
    assert.equal(pods.length, 2);
    assert.deepEqual(pods[1], EXPECTED_TEST_POD);
    assert.deepEqual(pods[0].containers[0].devices[0], {
      resourceName: "intel.com/sriov_a",
      deviceIds: ["0000:03:02.7"],
      numaNodes: [],
    });
    assert.deepEqual(await calls(), [{ method: "List", podName: "", podNamespace: "" }]);
  });
});

Deno.test("getPodResources() asks for one pod by namespace and name", async () => {
  await withKubelet({ pods: [OTHER_POD, TEST_POD] }, async (socket, calls) => {
    assert.deepEqual(await getPodResources(TEST_POD, { socket }), EXPECTED_TEST_POD);
    assert.deepEqual(await calls(), [{ method: "Get", podName: "dpdk-app", podNamespace: "nfv" }]);
  });
});

Deno.test("fetchPodResources() uses Get when the kubelet serves it", async () => {
  await withKubelet({ pods: [OTHER_POD, TEST_POD] }, async (socket, calls) => {
    const found = await fetchPodResources(TEST_POD, { socket });
    assert.equal(found.method, "Get");
    assert.deepEqual(found.pod, EXPECTED_TEST_POD);
    assert.equal((await calls()).length, 1);
  });
});

Deno.test("fetchPodResources() falls back to List when Get is UNIMPLEMENTED (kubelet < 1.27)", async () => {
  await withKubelet(
    { pods: [OTHER_POD, TEST_POD], get: "unimplemented" },
    async (socket, calls) => {
      await assert.rejects(getPodResources(TEST_POD, { socket }), (err: unknown) => {
        assert.ok(err instanceof PodResourcesError);
        assert.equal(err.grpcStatus, GrpcStatus.Unimplemented);
        assert.match(err.message, /Get with gRPC status UNIMPLEMENTED \(12\)/);
        return true;
      });
      const found = await fetchPodResources(TEST_POD, { socket });
      assert.equal(found.method, "List");
      assert.deepEqual(found.pod, EXPECTED_TEST_POD);
      assert.deepEqual((await calls()).map((c) => (c as { method: string }).method), [
        "List",
      ]);
    },
  );
});

Deno.test("fetchPodResources() falls back to List when the Get gate is off or the pod is unknown to Get", async () => {
  await withKubelet({ pods: [TEST_POD], get: "disabled" }, async (socket, calls) => {
    const found = await fetchPodResources(TEST_POD, { socket });
    assert.equal(found.method, "List");
    assert.deepEqual(found.pod, EXPECTED_TEST_POD);
    assert.deepEqual((await calls()).map((c) => (c as { method: string }).method), [
      "Get",
      "List",
    ]);
  });
  await withKubelet({ pods: [TEST_POD] }, async (socket) => {
    const found = await fetchPodResources({ namespace: "nfv", name: "gone" }, { socket });
    assert.equal(found.method, "List");
    assert.equal(found.pod, undefined);
  });
});

Deno.test("fetchPodResources() reports a missing socket clearly", async () => {
  const socket = "/nonexistent/pod-resources/kubelet.sock";
  await assert.rejects(fetchPodResources(TEST_POD, { socket }), (err: unknown) => {
    assert.ok(err instanceof PodResourcesError);
    assert.equal(err.socketMissing, true);
    assert.match(
      err.message,
      /^The kubelet PodResources socket "\/nonexistent\/pod-resources\/kubelet.sock" does not exist: /,
    );
    return true;
  });
});

Deno.test("fetchPodResources() reports a socket nobody listens on as try-again-later", async () => {
  const dir = await Deno.makeTempDir();
  const socket = join(dir, "stale.sock");
  // A bound socket that never listens: what a crashed kubelet leaves behind.
  const bind = `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(socket)})`;
  await new Deno.Command("/usr/bin/python3", { args: ["-c", bind] }).output();
  try {
    await assert.rejects(fetchPodResources(TEST_POD, { socket }), (err: unknown) => {
      assert.ok(err instanceof PodResourcesError);
      assert.equal(err.socketMissing, false);
      assert.equal(err.code, CniErrorCode.TryAgainLater);
      assert.match(err.message, /^Cannot connect to the kubelet PodResources socket "/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetchPodResources() gives up after the deadline", async () => {
  await withKubelet({ pods: [TEST_POD], delaySeconds: 3 }, async (socket) => {
    const started = Date.now();
    await assert.rejects(
      fetchPodResources(TEST_POD, { socket, timeoutMs: 400 }),
      (err: unknown) => {
        assert.ok(err instanceof PodResourcesError);
        assert.equal(err.code, CniErrorCode.TryAgainLater);
        assert.match(err.message, /did not answer Get within 400 ms/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 2000, "returned at the deadline");
  });
});

Deno.test("listPodResources() reports a gRPC error status with its message", async () => {
  const listError = { code: "UNAVAILABLE", message: "kubelet 100% busy, réessayez" };
  await withKubelet({ pods: [TEST_POD], get: "unimplemented", listError }, async (socket) => {
    await assert.rejects(fetchPodResources(TEST_POD, { socket }), (err: unknown) => {
      assert.ok(err instanceof PodResourcesError);
      assert.equal(err.grpcStatus, GrpcStatus.Unavailable);
      assert.equal(err.code, CniErrorCode.TryAgainLater);
      assert.equal(
        err.message,
        "The kubelet PodResources API answered v1.PodResourcesLister/List with gRPC status UNAVAILABLE (14): kubelet 100% busy, réessayez",
      );
      return true;
    });
  });
});

Deno.test("listPodResources() reads negative NUMA IDs and skips unknown fields", async () => {
  const pod = {
    namespace: "x",
    name: "y",
    containers: [{
      name: "c",
      cpuIds: [1, 2, 300],
      devices: [{ resourceName: "r/1", deviceIds: ["a", "b"], numa: [-1, 3] }],
    }],
  };
  await withKubelet({ pods: [pod] }, async (socket) => {
    const [found] = await listPodResources({ socket });
    assert.deepEqual(found.containers[0].devices[0].numaNodes, [-1, 3]);
    assert.deepEqual(found.containers[0].devices[0].deviceIds, ["a", "b"]);
  });
});

/** A kubelet stand-in that misbehaves: `node:http2` on a unix socket, answering by hand. */
async function withFakeKubelet(
  answer: (stream: http2.ServerHttp2Stream, path: string) => void,
  test: (socket: string, paths: string[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nfv-fake-kubelet-" });
  const socket = join(dir, "kubelet.sock");
  const paths: string[] = [];
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const path = String(headers[":path"]);
    paths.push(path);
    stream.on("error", () => {});
    stream.resume();
    answer(stream, path);
  });
  await new Promise<void>((resolve) => server.listen(socket, () => resolve()));
  try {
    await test(socket, paths);
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await Deno.remove(dir, { recursive: true });
  }
}

/** Answers with one gRPC message (5-byte prefix + `message`) and status OK. */
function answerMessage(
  stream: http2.ServerHttp2Stream,
  message: ArrayLike<number>,
  flags = 0,
): void {
  const body = new Uint8Array(5 + message.length);
  body[0] = flags;
  new DataView(body.buffer).setUint32(1, message.length);
  body.set(message, 5);
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
    waitForTrailers: true,
  });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(body);
}

Deno.test("listPodResources() rejects answers that are not gRPC", async () => {
  await withFakeKubelet((stream, path) => {
    if (path.endsWith("/List")) {
      stream.respond({ ":status": 503 });
      stream.end("busy");
    } else {
      stream.respond({ ":status": 200, "content-type": "text/plain" });
      stream.end("hello");
    }
  }, async (socket) => {
    await assert.rejects(listPodResources({ socket }), /with HTTP status 503/);
    await assert.rejects(getPodResources(TEST_POD, { socket }), /content type "text\/plain"/);
  });
});

Deno.test("fetchPodResources() reports DEADLINE_EXCEEDED from the kubelet as its own deadline, without trying List", async () => {
  await withFakeKubelet((stream) => {
    stream.respond({
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-status": "4",
      "grpc-message": "context deadline exceeded",
    }, { endStream: true });
  }, async (socket, paths) => {
    await assert.rejects(fetchPodResources(TEST_POD, { socket }), (err: unknown) => {
      assert.ok(err instanceof PodResourcesError);
      assert.equal(err.code, CniErrorCode.TryAgainLater);
      assert.equal(
        err.message,
        `The kubelet PodResources API at "${socket}" did not answer Get within 5000 ms`,
      );
      return true;
    });
    assert.deepEqual(paths, ["/v1.PodResourcesLister/Get"]);
  });
});

Deno.test("fetchPodResources() reports a reset stream or a dropped connection as try-again-later, without trying List", async () => {
  for (const failure of ["reset", "drop", "drop after the headers"]) {
    await withFakeKubelet((stream) => {
      if (failure === "reset") stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      else if (failure === "drop") stream.session?.destroy();
      else {
        stream.respond({ ":status": 200, "content-type": "application/grpc" });
        stream.write(new Uint8Array([0, 0, 0, 0, 9, 0x0a]), () => stream.session?.destroy());
      }
    }, async (socket, paths) => {
      await assert.rejects(fetchPodResources(TEST_POD, { socket }), (err: unknown) => {
        assert.ok(err instanceof PodResourcesError, `${failure}: ${err}`);
        assert.equal(err.code, CniErrorCode.TryAgainLater, `${failure}: ${err.message}`);
        assert.equal(err.grpcStatus, undefined);
        assert.ok(
          err.message.startsWith(
            `Cannot call the kubelet PodResources API v1.PodResourcesLister/Get at "${socket}": `,
          ),
          err.message,
        );
        return true;
      });
      assert.deepEqual(paths, ["/v1.PodResourcesLister/Get"]);
    });
  }
});

Deno.test("listPodResources() refuses an answer over 16 MiB", async () => {
  await withFakeKubelet((stream) => {
    answerMessage(stream, new Uint8Array(16 * 1024 * 1024 + 1));
  }, async (socket) => {
    await assert.rejects(
      listPodResources({ socket }),
      /^PodResourcesError: The kubelet PodResources API answered v1.PodResourcesLister\/List with more than 16777216 bytes$/,
    );
  });
});

Deno.test("getPodResources() reports a malformed message as the kubelet's error", async () => {
  const cases: [number[], number, RegExp][] = [
    [[0x0a, 0x05, 0x0a], 0, /field runs past the end of the message$/], // length past the end
    [[0x08, 0x01], 0, /field 1 is not a message$/], // wrong wire type
    [[0x0a, 0x03, 0x0a, 0x01, 0xff], 0, /field 1 is not UTF-8$/],
    [[], 1, /malformed message: compressed message although none was accepted$/],
  ];
  for (const [message, flags, expected] of cases) {
    await withFakeKubelet((stream) => answerMessage(stream, message, flags), async (socket) => {
      await assert.rejects(getPodResources(TEST_POD, { socket }), (err: unknown) => {
        assert.ok(err instanceof PodResourcesError);
        assert.match(
          err.message,
          /^The kubelet PodResources API answered v1.PodResourcesLister\/Get with a malformed message: /,
        );
        assert.match(err.message, expected);
        return true;
      });
    });
  }
});
