/**
 * @module
 * HPACK (RFC 7541) for the kubelet PodResources client: the request side encodes every field
 * as a literal without indexing (no dynamic table state to keep in step with the server); the
 * response side decodes everything a server may send: the static table, the dynamic table
 * with size updates and eviction, and Huffman-coded strings.
 */

/** A decoded header list, in the order received. */
export type HeaderList = [string, string][];

/** A header block that breaks the HPACK rules (an HTTP/2 COMPRESSION_ERROR). */
export class HpackError extends Error {
  override name = "HpackError";
}

const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/**
 * Code lengths of the RFC 7541 Appendix B Huffman code for bytes 0-255; EOS (256) is 30 bits.
 * The code is canonical, so the codes follow from the lengths (see {@linkcode HUFFMAN}).
 */
// deno-fmt-ignore
const HUFFMAN_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;
const MAX_CODE_LENGTH = 30;

/** Canonical-code decoding tables: per length, the first code and the symbols in order. */
interface HuffmanTables {
  firstCode: number[];
  count: number[];
  offset: number[];
  symbols: number[];
  /** Code of each symbol (for tests). */
  codes: number[];
}

function buildHuffman(): HuffmanTables {
  const symbols = [...HUFFMAN_LENGTHS.keys()].sort((a, b) =>
    HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b
  );
  const count = new Array(MAX_CODE_LENGTH + 1).fill(0);
  for (const len of HUFFMAN_LENGTHS) count[len]++;
  const firstCode = new Array(MAX_CODE_LENGTH + 1).fill(0);
  const offset = new Array(MAX_CODE_LENGTH + 1).fill(0);
  let code = 0;
  let index = 0;
  for (let len = 1; len <= MAX_CODE_LENGTH; len++) {
    code = (code + count[len - 1]) * 2;
    firstCode[len] = code;
    offset[len] = index;
    index += count[len];
  }
  const codes = new Array(HUFFMAN_LENGTHS.length).fill(0);
  for (let len = 1; len <= MAX_CODE_LENGTH; len++) {
    for (let i = 0; i < count[len]; i++) codes[symbols[offset[len] + i]] = firstCode[len] + i;
  }
  return { firstCode, count, offset, symbols, codes };
}

let huffman: HuffmanTables | undefined;

/** The Huffman tables, built on first use. */
function tables(): HuffmanTables {
  huffman ??= buildHuffman();
  return huffman;
}

/** The Huffman code of a symbol (0-256) as `[code, bit length]`; for tests. */
export function huffmanCode(symbol: number): [number, number] {
  return [tables().codes[symbol], HUFFMAN_LENGTHS[symbol]];
}

/** Decodes a Huffman-coded string (RFC 7541 §5.2: padding is at most 7 one-bits, no EOS). */
export function huffmanDecode(bytes: Uint8Array): Uint8Array {
  const { firstCode, count, offset, symbols } = tables();
  const out: number[] = [];
  let code = 0;
  let len = 0;
  let allOnes = true;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      code = code * 2 + b;
      len++;
      allOnes &&= b === 1;
      if (len > MAX_CODE_LENGTH) throw new HpackError("Cannot decode Huffman string: bad code");
      const index = code - firstCode[len];
      if (index >= 0 && index < count[len]) {
        const symbol = symbols[offset[len] + index];
        if (symbol === EOS) throw new HpackError("Cannot decode Huffman string: EOS in string");
        out.push(symbol);
        code = 0;
        len = 0;
        allOnes = true;
      }
    }
  }
  if (len > 7 || !allOnes) throw new HpackError("Cannot decode Huffman string: bad padding");
  return Uint8Array.from(out);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

function pushInteger(out: number[], value: number, prefixBits: number, firstByte: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(firstByte | value);
    return;
  }
  out.push(firstByte | max);
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

function pushString(out: number[], text: string): void {
  const bytes = encoder.encode(text);
  pushInteger(out, bytes.length, 7, 0x00);
  for (const b of bytes) out.push(b);
}

/**
 * Encodes a header list with every field as a "literal header field without indexing — new
 * name" (RFC 7541 §6.2.2), plain strings: the decoder's dynamic table is never touched.
 */
export function encodeHeaders(headers: HeaderList): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of headers) {
    out.push(0x00);
    pushString(out, name.toLowerCase());
    pushString(out, value);
  }
  return Uint8Array.from(out);
}

/** The HPACK decoder of one connection (its dynamic table spans header blocks). */
export class HpackDecoder {
  #dynamic: [string, string][] = [];
  #size = 0;
  #maxSize: number;
  #limit: number;

  /** `limit` is the SETTINGS_HEADER_TABLE_SIZE we announced (default 4096). */
  constructor(limit = 4096) {
    this.#limit = limit;
    this.#maxSize = limit;
  }

  /** Current dynamic table entries, newest first (for tests). */
  get dynamicTable(): readonly [string, string][] {
    return this.#dynamic;
  }

  /** Current dynamic table size in octets (RFC 7541 §4.1). */
  get dynamicTableSize(): number {
    return this.#size;
  }

  /** Decodes one complete header block. Throws {@linkcode HpackError}. */
  decode(block: Uint8Array): HeaderList {
    const headers: HeaderList = [];
    let pos = 0;
    let fieldSeen = false;
    const readInteger = (prefixBits: number): number => {
      const max = (1 << prefixBits) - 1;
      let value = block[pos++] & max;
      if (value < max) return value;
      let shift = 0;
      while (true) {
        if (pos >= block.length) throw new HpackError("Cannot decode header block: truncated");
        const b = block[pos++];
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (shift > 35) throw new HpackError("Cannot decode header block: integer too large");
        if ((b & 0x80) === 0) return value;
      }
    };
    const readString = (): string => {
      if (pos >= block.length) throw new HpackError("Cannot decode header block: truncated");
      const isHuffman = (block[pos] & 0x80) !== 0;
      const length = readInteger(7);
      if (pos + length > block.length) {
        throw new HpackError("Cannot decode header block: truncated string");
      }
      const raw = block.subarray(pos, pos + length);
      pos += length;
      return decoder.decode(isHuffman ? huffmanDecode(raw) : raw);
    };
    while (pos < block.length) {
      const b = block[pos];
      if (b & 0x80) {
        const index = readInteger(7);
        headers.push(this.#entry(index));
        fieldSeen = true;
      } else if (b & 0x40) {
        const index = readInteger(6);
        const name = index === 0 ? readString() : this.#entry(index)[0];
        const value = readString();
        headers.push([name, value]);
        this.#insert(name, value);
        fieldSeen = true;
      } else if (b & 0x20) {
        if (fieldSeen) {
          throw new HpackError("Cannot decode header block: table size update after a field");
        }
        const size = readInteger(5);
        if (size > this.#limit) {
          throw new HpackError(
            `Cannot decode header block: table size ${size} exceeds the limit ${this.#limit}`,
          );
        }
        this.#maxSize = size;
        this.#evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001): 4-bit prefix.
        const index = readInteger(4);
        const name = index === 0 ? readString() : this.#entry(index)[0];
        const value = readString();
        headers.push([name, value]);
        fieldSeen = true;
      }
    }
    return headers;
  }

  #entry(index: number): [string, string] {
    if (index === 0) throw new HpackError("Cannot decode header block: index 0");
    if (index <= STATIC_TABLE.length) {
      const [name, value] = STATIC_TABLE[index - 1];
      return [name, value];
    }
    const entry = this.#dynamic[index - STATIC_TABLE.length - 1];
    if (!entry) throw new HpackError(`Cannot decode header block: no table entry ${index}`);
    return [entry[0], entry[1]];
  }

  #insert(name: string, value: string): void {
    const size = entrySize(name, value);
    if (size > this.#maxSize) {
      // An entry larger than the table empties it and is not added (§4.4).
      this.#dynamic = [];
      this.#size = 0;
      return;
    }
    this.#evict(size);
    this.#dynamic.unshift([name, value]);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    while (this.#dynamic.length > 0 && this.#size + room > this.#maxSize) {
      const [name, value] = this.#dynamic.pop()!;
      this.#size -= entrySize(name, value);
    }
  }
}

function entrySize(name: string, value: string): number {
  return encoder.encode(name).length + encoder.encode(value).length + 32;
}
