/**
 * @module
 * The protobuf wire format (proto3), just enough to write string fields and to walk the
 * fields of a message: varint, 64-bit, length-delimited and 32-bit values. Unknown fields are
 * skipped, as every protobuf reader does, so newer kubelets with more fields still parse.
 */

/** A protobuf message that does not follow the wire format. */
export class ProtobufError extends Error {
  override name = "ProtobufError";
}

/** One field of a message: its number, wire type and value. */
export type ProtobufField =
  | { field: number; wireType: 0; value: bigint }
  | { field: number; wireType: 1 | 5; value: Uint8Array }
  | { field: number; wireType: 2; value: Uint8Array };

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

function pushVarint(out: number[], value: number): void {
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

/**
 * Encodes a message of string fields (`[field number, value]`, in order); empty strings are
 * left out as proto3 does.
 */
export function encodeStringFields(fields: [number, string][]): Uint8Array {
  const out: number[] = [];
  for (const [field, value] of fields) {
    if (value === "") continue;
    const bytes = textEncoder.encode(value);
    pushVarint(out, field * 8 + 2);
    pushVarint(out, bytes.length);
    for (const b of bytes) out.push(b);
  }
  return Uint8Array.from(out);
}

/** Yields the fields of a message in wire order. Throws {@linkcode ProtobufError}. */
export function* readFields(bytes: Uint8Array): Generator<ProtobufField> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    while (true) {
      if (pos >= bytes.length) throw new ProtobufError("Cannot decode protobuf: truncated varint");
      const b = bytes[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift >= 70n) throw new ProtobufError("Cannot decode protobuf: varint too long");
    }
  };
  const take = (n: number): Uint8Array => {
    if (n > bytes.length - pos) {
      throw new ProtobufError("Cannot decode protobuf: field runs past the end of the message");
    }
    const value = bytes.subarray(pos, pos + n);
    pos += n;
    return value;
  };
  while (pos < bytes.length) {
    const key = varint();
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (field === 0) throw new ProtobufError("Cannot decode protobuf: field number 0");
    switch (wireType) {
      case 0:
        yield { field, wireType, value: varint() };
        break;
      case 1:
        yield { field, wireType, value: take(8) };
        break;
      case 2: {
        const length = varint();
        if (length > BigInt(bytes.length)) {
          throw new ProtobufError("Cannot decode protobuf: field runs past the end of the message");
        }
        yield { field, wireType, value: take(Number(length)) };
        break;
      }
      case 5:
        yield { field, wireType, value: take(4) };
        break;
      default:
        throw new ProtobufError(`Cannot decode protobuf: unsupported wire type ${wireType}`);
    }
  }
}

/** A length-delimited field as UTF-8 text. */
export function fieldString(f: ProtobufField): string {
  if (f.wireType !== 2) {
    throw new ProtobufError(`Cannot decode protobuf: field ${f.field} is not a string`);
  }
  try {
    return textDecoder.decode(f.value);
  } catch {
    throw new ProtobufError(`Cannot decode protobuf: field ${f.field} is not UTF-8`);
  }
}

/** A length-delimited field as an embedded message's bytes. */
export function fieldMessage(f: ProtobufField): Uint8Array {
  if (f.wireType !== 2) {
    throw new ProtobufError(`Cannot decode protobuf: field ${f.field} is not a message`);
  }
  return f.value;
}

/** A varint field as a signed 64-bit integer (int64), as a number. */
export function fieldInt64(f: ProtobufField): number {
  if (f.wireType !== 0) {
    throw new ProtobufError(`Cannot decode protobuf: field ${f.field} is not a varint`);
  }
  return Number(BigInt.asIntN(64, f.value));
}
