/**
 * @module
 * Reads the request bodies client-go sends as `application/vnd.kubernetes.protobuf` (Go
 * Multus's thin plugin writes its pod status and events that way), so that the test API server
 * can serve Go clients too. It decodes the kube envelope (`k8s\0` + `runtime.Unknown`) and, of
 * the object inside, what the server reads: every object's metadata (name, generateName,
 * namespace, uid, resourceVersion, labels, annotations); a Pod's `spec.nodeName` and
 * `status.phase`/`hostIP`/`podIP`; an Event's involved object, reason, message, type, count
 * and source. Other fields are not decoded (a protobuf status write keeps only those).
 */

/** The media type of Kubernetes protobuf bodies. */
export const KUBE_PROTOBUF = "application/vnd.kubernetes.protobuf";

const MAGIC = [0x6b, 0x38, 0x73, 0x00];

/** A field's values in one message: varints as bigint, length-delimited as bytes. */
type Fields = Map<number, (bigint | Uint8Array)[]>;

/** Splits one protobuf message into its fields; throws on a malformed message. */
function fields(bytes: Uint8Array): Fields {
  const out: Fields = new Map();
  let at = 0;
  const varint = (): bigint => {
    let value = 0n;
    for (let shift = 0n;; shift += 7n) {
      if (at >= bytes.length || shift > 63n) throw new Error("truncated varint");
      const b = bytes[at++];
      value |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return value;
    }
  };
  while (at < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3;
    let value: bigint | Uint8Array;
    switch (key & 7) {
      case 0:
        value = varint();
        break;
      case 1:
        at += 8;
        continue;
      case 2: {
        const length = Number(varint());
        if (at + length > bytes.length) throw new Error("truncated field");
        value = bytes.subarray(at, at + length);
        at += length;
        break;
      }
      case 5:
        at += 4;
        continue;
      default:
        throw new Error(`unsupported wire type ${key & 7}`);
    }
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

const decoder = new TextDecoder();

function bytesOf(f: Fields, n: number): Uint8Array | undefined {
  const v = f.get(n)?.at(-1);
  return v instanceof Uint8Array ? v : undefined;
}

function stringOf(f: Fields, n: number): string | undefined {
  const v = bytesOf(f, n);
  return v === undefined ? undefined : decoder.decode(v);
}

function numberOf(f: Fields, n: number): number | undefined {
  const v = f.get(n)?.at(-1);
  return typeof v === "bigint" ? Number(v) : undefined;
}

/** A `map<string, string>` field (repeated entries of key 1, value 2). */
function mapOf(f: Fields, n: number): Record<string, string> | undefined {
  const entries = f.get(n);
  if (!entries) return undefined;
  const out: Record<string, string> = {};
  for (const entry of entries) {
    if (!(entry instanceof Uint8Array)) continue;
    const e = fields(entry);
    out[stringOf(e, 1) ?? ""] = stringOf(e, 2) ?? "";
  }
  return out;
}

/** Drops the keys whose value is undefined, as a JSON body would not have them. */
function defined(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

function objectMeta(bytes: Uint8Array | undefined): Record<string, unknown> {
  if (!bytes) return {};
  const m = fields(bytes);
  return defined({
    name: stringOf(m, 1),
    generateName: stringOf(m, 2),
    namespace: stringOf(m, 3),
    uid: stringOf(m, 5),
    resourceVersion: stringOf(m, 6),
    labels: mapOf(m, 11),
    annotations: mapOf(m, 12),
  });
}

function pod(f: Fields): Record<string, unknown> {
  const spec = bytesOf(f, 2);
  const status = bytesOf(f, 3);
  return defined({
    metadata: objectMeta(bytesOf(f, 1)),
    spec: spec && defined({ nodeName: stringOf(fields(spec), 10) }),
    status: status && (() => {
      const s = fields(status);
      return defined({ phase: stringOf(s, 1), hostIP: stringOf(s, 5), podIP: stringOf(s, 6) });
    })(),
  });
}

function event(f: Fields): Record<string, unknown> {
  const involved = bytesOf(f, 2);
  const source = bytesOf(f, 5);
  return defined({
    metadata: objectMeta(bytesOf(f, 1)),
    involvedObject: involved && (() => {
      const o = fields(involved);
      return defined({
        kind: stringOf(o, 1),
        namespace: stringOf(o, 2),
        name: stringOf(o, 3),
        uid: stringOf(o, 4),
        apiVersion: stringOf(o, 5),
        resourceVersion: stringOf(o, 6),
        fieldPath: stringOf(o, 7),
      });
    })(),
    reason: stringOf(f, 3),
    message: stringOf(f, 4),
    source: source && (() => {
      const s = fields(source);
      return defined({ component: stringOf(s, 1), host: stringOf(s, 2) });
    })(),
    count: numberOf(f, 8),
    type: stringOf(f, 9),
  });
}

/**
 * Decodes a Kubernetes protobuf body into the JSON shape the API server would have received
 * (`apiVersion`, `kind`, and the fields listed in the module doc). Throws when the bytes are
 * not a kube protobuf envelope.
 */
export function decodeKubeProtobuf(bytes: Uint8Array): Record<string, unknown> {
  if (bytes.length < 4 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error("not a Kubernetes protobuf body (no k8s\\0 prefix)");
  }
  const unknown = fields(bytes.subarray(4));
  const typeMeta = fields(bytesOf(unknown, 1) ?? new Uint8Array());
  const apiVersion = stringOf(typeMeta, 1) ?? "";
  const kind = stringOf(typeMeta, 2) ?? "";
  const raw = fields(bytesOf(unknown, 2) ?? new Uint8Array());
  const body = kind === "Pod"
    ? pod(raw)
    : kind === "Event"
    ? event(raw)
    : { metadata: objectMeta(bytesOf(raw, 1)) };
  return { apiVersion, kind, ...body };
}
