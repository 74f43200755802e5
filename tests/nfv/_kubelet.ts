/**
 * @module
 * Test helpers: a stand-in kubelet PodResources server speaking real gRPC (python3 with
 * grpcio, Debian package python3-grpcio, installed here when missing), and fixtures.
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const PYTHON = "/usr/bin/python3";

/** Devices of one resource in the server's description. */
export interface ServedDevices {
  resourceName: string;
  deviceIds: string[];
  numa?: number[];
}

/** A pod in the server's description. */
export interface ServedPod {
  namespace: string;
  name: string;
  containers: { name: string; devices: ServedDevices[]; cpuIds?: number[] }[];
}

/** What the stand-in kubelet serves. */
export interface KubeletConfig {
  pods: ServedPod[];
  get?: "serve" | "unimplemented" | "disabled";
  delaySeconds?: number;
  listError?: { code: string; message: string };
}

/** One call the server received. */
export interface KubeletCall {
  method: "Get" | "List";
  podName: string;
  podNamespace: string;
}

/** A running stand-in kubelet. */
export interface KubeletServer {
  socket: string;
  calls(): Promise<KubeletCall[]>;
  stop(): Promise<void>;
}

let grpcChecked: Promise<void> | undefined;

/** Installs python3-grpcio with apt-get when `import grpc` fails (tests run as root). */
export function ensureGrpcio(): Promise<void> {
  grpcChecked ??= (async () => {
    const probe = await new Deno.Command(PYTHON, {
      args: ["-c", "import grpc"],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => ({ success: false }));
    if (probe.success) return;
    const apt = (args: string[]) =>
      new Deno.Command("apt-get", {
        args,
        env: { DEBIAN_FRONTEND: "noninteractive" },
        stdout: "null",
        stderr: "piped",
      }).output();
    await apt(["update", "-qq"]);
    const out = await apt(["install", "-y", "-qq", "python3", "python3-grpcio"]);
    if (!out.success) {
      throw new Error(
        `Cannot install python3-grpcio for the kubelet stand-in: ${
          new TextDecoder().decode(out.stderr)
        }`,
      );
    }
  })();
  return grpcChecked;
}

/** Starts the stand-in kubelet on a socket in `dir`. */
export async function startKubeletServer(
  dir: string,
  config: KubeletConfig,
): Promise<KubeletServer> {
  await ensureGrpcio();
  const id = crypto.randomUUID().slice(0, 8);
  const socket = join(dir, `kubelet-${id}.sock`);
  const configFile = join(dir, `kubelet-${id}.json`);
  const callLog = join(dir, `kubelet-${id}.calls`);
  await Deno.writeTextFile(configFile, JSON.stringify(config));
  const child = new Deno.Command(PYTHON, {
    args: [join(HERE, "kubelet_server.py"), socket, configFile, callLog],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const ready = await Promise.race([
    reader.read().then((r) => new TextDecoder().decode(r.value ?? new Uint8Array())),
    new Promise<string>((resolve) => setTimeout(() => resolve("timeout"), 15000)),
  ]);
  reader.releaseLock();
  if (!ready.includes("ready")) {
    child.kill("SIGKILL");
    const out = await child.output().catch(() => undefined);
    throw new Error(
      `The kubelet stand-in did not start (${ready}): ${
        out ? new TextDecoder().decode(out.stderr) : ""
      }`,
    );
  }
  return {
    socket,
    async calls() {
      try {
        const text = await Deno.readTextFile(callLog);
        return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
      } catch {
        return [];
      }
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      await child.status;
      await Deno.remove(socket).catch(() => {});
    },
  };
}

/** The pod the tests attach: two containers, two resources. */
export const TEST_POD: ServedPod = {
  namespace: "nfv",
  name: "dpdk-app",
  containers: [
    {
      name: "app",
      devices: [
        {
          resourceName: "intel.com/sriov_a",
          deviceIds: ["0000:03:02.3", "0000:03:02.0"],
          numa: [0],
        },
        { resourceName: "intel.com/dpdk", deviceIds: ["0000:05:00.1"], numa: [1] },
      ],
      cpuIds: [2, 3],
    },
    {
      name: "sidecar",
      devices: [
        { resourceName: "intel.com/sriov_a", deviceIds: ["0000:03:02.5"], numa: [0] },
      ],
    },
  ],
};

/** Another pod on the node, with devices of the same resource. */
export const OTHER_POD: ServedPod = {
  namespace: "nfv",
  name: "other",
  containers: [
    { name: "c", devices: [{ resourceName: "intel.com/sriov_a", deviceIds: ["0000:03:02.7"] }] },
  ],
};

/** The pod UID of {@linkcode checkpointText} (the Multus test fixture). */
export const CHECKPOINT_POD_UID = "970a395d-bb3b-11e8-89df-408d5c537d23";

/** A checkpoint as kubelet ≥ 1.20 writes it (the Multus test fixture, plus more entries). */
export function checkpointText(uid = CHECKPOINT_POD_UID): string {
  return JSON.stringify({
    Data: {
      PodDeviceEntries: [
        {
          PodUID: uid,
          ContainerName: "app",
          ResourceName: "intel.com/sriov_net_A",
          DeviceIDs: { "-1": ["0000:03:02.3", "0000:03:02.0"] },
          AllocResp: "CikKC3NyaW92X25ldF9BEhogMDAwMDowMzowMi4zLDAwMDA6MDM6MDIuMA==",
        },
        {
          PodUID: uid,
          ContainerName: "app",
          ResourceName: "intel.com/dpdk",
          DeviceIDs: { "1": ["0000:05:00.3"], "0": ["0000:05:00.1", "0000:05:00.2"] },
          AllocResp: "",
        },
        {
          PodUID: "other-pod",
          ContainerName: "c",
          ResourceName: "intel.com/sriov_net_A",
          DeviceIDs: { "0": ["0000:03:02.7"] },
          AllocResp: "",
        },
      ],
      RegisteredDevices: { "intel.com/sriov_net_A": ["0000:03:02.0", "0000:03:02.3"] },
    },
    Checksum: 2123456789,
  });
}
