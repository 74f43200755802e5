/**
 * @module
 * The protobuf messages of the kubelet PodResources API (`k8s.io/kubelet/pkg/apis/
 * podresources/v1/api.proto`) that the plugin sends and reads, on the wire reader and writer
 * of `@bufbuild/protobuf` (no generated code). Only the fields of devices are read; every
 * other field is skipped, so newer kubelets with more fields still parse.
 */

import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { errorMessage } from "../util/errors.ts";

/** Devices of one resource allocated to a container (on one NUMA node, when known). */
export interface ContainerDevices {
  /** Extended resource name, e.g. `intel.com/sriov_netdevice`. */
  resourceName: string;
  /** Device IDs in the order the kubelet reports them. */
  deviceIds: string[];
  /** NUMA node IDs of the devices' topology (empty when unknown). */
  numaNodes: number[];
}

/** Devices of one container. */
export interface ContainerResources {
  /** Container name. */
  name: string;
  /** Allocated devices (CPU, memory and dynamic resources are not read). */
  devices: ContainerDevices[];
}

/** Resources of one pod. */
export interface PodResources {
  name: string;
  namespace: string;
  containers: ContainerResources[];
}

/** A message that does not follow the wire format (or the API's field types). */
export class MessageError extends Error {
  override name = "MessageError";
}

/** `GetPodResourcesRequest { string pod_name = 1; string pod_namespace = 2; }` */
export function encodeGetRequest(pod: { namespace: string; name: string }): Uint8Array {
  const writer = new BinaryWriter();
  if (pod.name !== "") writer.tag(1, WireType.LengthDelimited).string(pod.name);
  if (pod.namespace !== "") writer.tag(2, WireType.LengthDelimited).string(pod.namespace);
  return writer.finish();
}

/**
 * `ListPodResourcesResponse { repeated PodResources pod_resources = 1; }`.
 * Throws {@linkcode MessageError}.
 */
export function decodeListResponse(bytes: Uint8Array): PodResources[] {
  return decoding(() => {
    const pods: PodResources[] = [];
    for (const f of fieldsOf(bytes)) if (f.number === 1) pods.push(decodePod(f.message()));
    return pods;
  });
}

/**
 * `GetPodResourcesResponse { PodResources pod_resources = 1; }`; undefined without a pod.
 * Throws {@linkcode MessageError}.
 */
export function decodeGetResponse(bytes: Uint8Array): PodResources | undefined {
  return decoding(() => {
    let pod: PodResources | undefined;
    for (const f of fieldsOf(bytes)) if (f.number === 1) pod = decodePod(f.message());
    return pod;
  });
}

/** Runs `decode`; the reader's own errors (premature EOF, bad tags) become MessageErrors. */
function decoding<T>(decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof MessageError) throw err;
    // The reader reports a length past the end as "premature EOF".
    const reason = err instanceof RangeError
      ? "a field runs past the end of the message"
      : errorMessage(err);
    throw new MessageError(reason, { cause: err });
  }
}

function decodePod(bytes: Uint8Array): PodResources {
  // PodResources { string name = 1; string namespace = 2; repeated ContainerResources containers = 3; }
  const pod: PodResources = { name: "", namespace: "", containers: [] };
  for (const f of fieldsOf(bytes)) {
    if (f.number === 1) pod.name = f.string();
    else if (f.number === 2) pod.namespace = f.string();
    else if (f.number === 3) pod.containers.push(decodeContainer(f.message()));
  }
  return pod;
}

function decodeContainer(bytes: Uint8Array): ContainerResources {
  // ContainerResources { string name = 1; repeated ContainerDevices devices = 2; cpu_ids = 3;
  //   memory = 4; dynamic_resources = 5; }  (3-5 are not needed)
  const container: ContainerResources = { name: "", devices: [] };
  for (const f of fieldsOf(bytes)) {
    if (f.number === 1) container.name = f.string();
    else if (f.number === 2) container.devices.push(decodeDevices(f.message()));
  }
  return container;
}

function decodeDevices(bytes: Uint8Array): ContainerDevices {
  // ContainerDevices { string resource_name = 1; repeated string device_ids = 2;
  //   TopologyInfo topology = 3; }
  const devices: ContainerDevices = { resourceName: "", deviceIds: [], numaNodes: [] };
  for (const f of fieldsOf(bytes)) {
    if (f.number === 1) devices.resourceName = f.string();
    else if (f.number === 2) devices.deviceIds.push(f.string());
    else if (f.number === 3) {
      // TopologyInfo { repeated NUMANode nodes = 1; }  NUMANode { int64 ID = 1; }
      for (const t of fieldsOf(f.message())) {
        if (t.number !== 1) continue;
        for (const n of fieldsOf(t.message())) {
          if (n.number === 1) devices.numaNodes.push(n.int64());
        }
      }
    }
  }
  return devices;
}

/** One field of a message being read: its number and typed reads of its value. */
class Field {
  readonly number: number;
  readonly #wireType: WireType;
  readonly #reader: BinaryReader;
  /** True once the value was read; an unread value is skipped. */
  read = false;

  constructor(number: number, wireType: WireType, reader: BinaryReader) {
    this.number = number;
    this.#wireType = wireType;
    this.#reader = reader;
  }

  /** The value as UTF-8 text (invalid UTF-8 is an error). */
  string(): string {
    this.#expect(WireType.LengthDelimited, "a string");
    try {
      return this.#reader.string(true);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      throw new MessageError(`field ${this.number} is not UTF-8`, { cause: err });
    }
  }

  /** The value as the bytes of an embedded message. */
  message(): Uint8Array {
    this.#expect(WireType.LengthDelimited, "a message");
    return this.#reader.bytes();
  }

  /** The value as an int64, as a number. */
  int64(): number {
    this.#expect(WireType.Varint, "a varint");
    return Number(this.#reader.int64());
  }

  #expect(wireType: WireType, what: string): void {
    if (this.#wireType !== wireType) throw new MessageError(`field ${this.number} is not ${what}`);
    this.read = true;
  }
}

/** The fields of a message in wire order; a field the caller does not read is skipped. */
function* fieldsOf(bytes: Uint8Array): Generator<Field> {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    const field = new Field(number, wireType, reader);
    yield field;
    if (!field.read) reader.skip(wireType, number);
  }
}
