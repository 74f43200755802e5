/**
 * @module
 * Works on JSON text without re-serialising it, so configurations reach delegates byte for
 * byte (big integers, key order and unknown keys survive), plus only the keys CNI requires.
 *
 * A small hand-written scanner gives the exact source span of every value. It accepts strict
 * JSON plus the JSONC extras of hand-written files: `//` and `/* *\/` comments (skipped like
 * whitespace) and trailing commas before `}` or `]`. Duplicate keys: lookups take the last
 * occurrence, as `JSON.parse` does.
 *
 * Not jsonc-parser (3.3.1, tried): its `modify` writes values with `JSON.stringify` (no raw
 * `prevResult` text), acts on the first of duplicate keys where `JSON.parse` and the plugins
 * read the last, and turns `{"a":1,}` without `a` into `{,}`; its parser recurses without a
 * depth limit and reports error codes, not what was expected where. Kept for spans only it
 * saved 46 lines for an adapter tied to its callback order, and cost ~4 ms of CPU at every
 * start of the bundled plugin.
 */

/** A JSON value to insert as it is (already serialised). */
export class RawJson {
  /** The serialised JSON value. */
  readonly text: string;

  constructor(text: string) {
    this.text = text;
  }
}

/** The SyntaxError thrown for malformed JSON text; says where the text is wrong. */
export class JsonSyntaxError extends SyntaxError {
  /** What is wrong, e.g. `unexpected character "x"`. */
  readonly reason: string;
  /** 1-based line of the error. */
  readonly line: number;
  /** 1-based column (UTF-16 code units) of the error. */
  readonly column: number;

  constructor(reason: string, position: { line: number; column: number }) {
    super(`Cannot parse JSON: ${reason} at line ${position.line} column ${position.column}`);
    this.reason = reason;
    this.line = position.line;
    this.column = position.column;
  }

  /** The reason and the position, e.g. `unexpected end of input at line 3 column 1`. */
  get detail(): string {
    return `${this.reason} at line ${this.line} column ${this.column}`;
  }
}

interface ScalarNode {
  kind: "scalar";
  start: number;
  end: number;
}

interface Member {
  key: string;
  keyStart: number;
  valueStart: number;
  valueEnd: number;
  value: JsonNode;
}

interface ObjectNode {
  kind: "object";
  start: number;
  end: number;
  members: Member[];
  /** Position of a trailing comma before `}`, or -1. */
  trailingComma: number;
}

interface ArrayNode {
  kind: "array";
  start: number;
  end: number;
  elements: JsonNode[];
}

type JsonNode = ScalarNode | ObjectNode | ArrayNode;

const MAX_DEPTH = 1000;

/** Scans one JSON(C) document into a tree of spans. */
class Scanner {
  #text: string;
  #pos = 0;
  #depth = 0;
  /** Spans of comments and positions of trailing commas, for {@linkcode stripJsonc}. */
  readonly extras: [number, number][] = [];

  constructor(text: string) {
    this.#text = text;
  }

  document(): JsonNode {
    this.#skip();
    const node = this.#value();
    this.#skip();
    if (this.#pos < this.#text.length) this.#fail(`unexpected ${this.#describe()}`);
    return node;
  }

  #fail(reason: string, at = this.#pos): never {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.#text.length; i++) {
      if (this.#text.charCodeAt(i) === 0x0a) {
        line++;
        lineStart = i + 1;
      }
    }
    throw new JsonSyntaxError(reason, { line, column: at - lineStart + 1 });
  }

  #describe(): string {
    if (this.#pos >= this.#text.length) return "end of input";
    const cp = this.#text.codePointAt(this.#pos)!;
    return `character ${JSON.stringify(String.fromCodePoint(cp))}`;
  }

  /** Skips whitespace and comments. */
  #skip(): void {
    const t = this.#text;
    while (this.#pos < t.length) {
      const c = t.charCodeAt(this.#pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
        this.#pos++;
      } else if (c === 0x2f && t.charCodeAt(this.#pos + 1) === 0x2f) {
        const start = this.#pos;
        const nl = t.indexOf("\n", this.#pos);
        this.#pos = nl === -1 ? t.length : nl;
        this.extras.push([start, this.#pos]);
      } else if (c === 0x2f && t.charCodeAt(this.#pos + 1) === 0x2a) {
        const start = this.#pos;
        const close = t.indexOf("*/", this.#pos + 2);
        if (close === -1) this.#fail("unterminated comment");
        this.#pos = close + 2;
        this.extras.push([start, this.#pos]);
      } else {
        return;
      }
    }
  }

  #value(): JsonNode {
    const t = this.#text;
    if (this.#pos >= t.length) this.#fail("unexpected end of input");
    const c = t[this.#pos];
    const start = this.#pos;
    if (c === "{") return this.#object();
    if (c === "[") return this.#array();
    if (c === '"') {
      this.#string();
      return { kind: "scalar", start, end: this.#pos };
    }
    if (c === "-" || (c >= "0" && c <= "9")) {
      this.#number();
      return { kind: "scalar", start, end: this.#pos };
    }
    for (const word of ["true", "false", "null"]) {
      if (t.startsWith(word, this.#pos)) {
        this.#pos += word.length;
        return { kind: "scalar", start, end: this.#pos };
      }
    }
    this.#fail(`unexpected ${this.#describe()}`);
  }

  #enter(): void {
    if (++this.#depth > MAX_DEPTH) this.#fail("nesting too deep");
  }

  #object(): ObjectNode {
    this.#enter();
    const t = this.#text;
    const node: ObjectNode = {
      kind: "object",
      start: this.#pos,
      end: -1,
      members: [],
      trailingComma: -1,
    };
    this.#pos++; // {
    this.#skip();
    if (t[this.#pos] === "}") {
      this.#pos++;
      node.end = this.#pos;
      this.#depth--;
      return node;
    }
    while (true) {
      if (t[this.#pos] !== '"') {
        this.#fail(
          this.#pos >= t.length
            ? "unexpected end of input"
            : `expected a string key, got ${this.#describe()}`,
        );
      }
      const keyStart = this.#pos;
      this.#string();
      const key = JSON.parse(t.slice(keyStart, this.#pos)) as string;
      this.#skip();
      if (t[this.#pos] !== ":") this.#fail(`expected ":" after key, got ${this.#describe()}`);
      this.#pos++;
      this.#skip();
      const valueStart = this.#pos;
      const value = this.#value();
      node.members.push({ key, keyStart, valueStart, valueEnd: this.#pos, value });
      this.#skip();
      if (t[this.#pos] === ",") {
        const comma = this.#pos;
        this.#pos++;
        this.#skip();
        if (t[this.#pos] === "}") {
          node.trailingComma = comma;
          this.extras.push([comma, comma + 1]);
          this.#pos++;
          break;
        }
      } else if (t[this.#pos] === "}") {
        this.#pos++;
        break;
      } else {
        this.#fail(`expected "," or "}" after a value, got ${this.#describe()}`);
      }
    }
    node.end = this.#pos;
    this.#depth--;
    return node;
  }

  #array(): ArrayNode {
    this.#enter();
    const t = this.#text;
    const node: ArrayNode = { kind: "array", start: this.#pos, end: -1, elements: [] };
    this.#pos++; // [
    this.#skip();
    if (t[this.#pos] === "]") {
      this.#pos++;
      node.end = this.#pos;
      this.#depth--;
      return node;
    }
    while (true) {
      node.elements.push(this.#value());
      this.#skip();
      if (t[this.#pos] === ",") {
        const comma = this.#pos;
        this.#pos++;
        this.#skip();
        if (t[this.#pos] === "]") {
          this.extras.push([comma, comma + 1]);
          this.#pos++;
          break;
        }
      } else if (t[this.#pos] === "]") {
        this.#pos++;
        break;
      } else {
        this.#fail(`expected "," or "]" after a value, got ${this.#describe()}`);
      }
    }
    node.end = this.#pos;
    this.#depth--;
    return node;
  }

  #string(): void {
    const t = this.#text;
    const start = this.#pos;
    this.#pos++; // opening quote
    while (true) {
      if (this.#pos >= t.length) this.#fail("unterminated string", start);
      const c = t.charCodeAt(this.#pos);
      if (c === 0x22) {
        this.#pos++;
        return;
      }
      if (c < 0x20) this.#fail("control character in string");
      if (c === 0x5c) {
        const e = t[this.#pos + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(t.slice(this.#pos + 2, this.#pos + 6))) {
            this.#fail("invalid unicode escape in string");
          }
          this.#pos += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          this.#pos += 2;
        } else {
          this.#fail("invalid escape in string");
        }
      } else {
        this.#pos++;
      }
    }
  }

  #number(): void {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = this.#pos;
    const start = this.#pos;
    const found = m.exec(this.#text);
    if (!found) this.#fail("invalid number");
    this.#pos += found[0].length;
    // A number must not run into letters or digits ("01", "1x", "1.").
    const next = this.#text[this.#pos];
    if (next !== undefined && /[0-9A-Za-z_.]/.test(next)) this.#fail("invalid number", start);
  }
}

function scan(text: string): JsonNode {
  return new Scanner(text).document();
}

/** The last member named `key` (JSON.parse semantics), or undefined. */
function lastMember(node: ObjectNode, key: string): Member | undefined {
  for (let i = node.members.length - 1; i >= 0; i--) {
    if (node.members[i].key === key) return node.members[i];
  }
  return undefined;
}

function nodeAt(root: JsonNode, path: (string | number)[]): JsonNode | undefined {
  let node: JsonNode | undefined = root;
  for (const step of path) {
    if (node === undefined) return undefined;
    if (typeof step === "number") {
      node = node.kind === "array" ? node.elements[step] : undefined;
    } else {
      node = node.kind === "object" ? lastMember(node, step)?.value : undefined;
    }
  }
  return node;
}

/**
 * Returns the exact text of the value at `path` (object keys and array indexes) in `text`,
 * or undefined when the path does not exist. Throws SyntaxError on malformed JSON.
 *
 * @example
 * ```ts
 * import { rawValueAt } from "./raw_json.ts";
 * rawValueAt('{"a":{"b":[1, 12345678901234567890]}}', ["a", "b", 1]); // "12345678901234567890"
 * ```
 */
export function rawValueAt(text: string, path: (string | number)[]): string | undefined {
  const node = nodeAt(scan(text), path);
  return node === undefined ? undefined : text.slice(node.start, node.end);
}

/**
 * Returns the exact texts of the elements of the array at `path` (undefined if absent or not
 * an array). Throws SyntaxError on malformed JSON.
 */
export function rawArrayElements(text: string, path: (string | number)[]): string[] | undefined {
  const node = nodeAt(scan(text), path);
  if (node === undefined || node.kind !== "array") return undefined;
  return node.elements.map((e) => text.slice(e.start, e.end));
}

/**
 * Returns `text` with JSONC comments and trailing commas replaced by spaces (line breaks
 * inside comments are kept, so positions stay the same), ready for `JSON.parse`.
 * Throws {@linkcode JsonSyntaxError} saying where the text is malformed.
 */
export function stripJsonc(text: string): string {
  const scanner = new Scanner(text);
  scanner.document();
  if (scanner.extras.length === 0) return text;
  let out = "";
  let last = 0;
  for (const [start, end] of scanner.extras.sort((a, b) => a[0] - b[0])) {
    out += text.slice(last, start) + text.slice(start, end).replace(/[^\r\n]/g, " ");
    last = end;
  }
  return out + text.slice(last);
}

/**
 * Parses JSON, or JSONC (comments, trailing commas). The scanner reads the text first, so
 * every text accepted here can later be cut and edited by this module (`JSON.parse` alone
 * accepts nesting deeper than the scanner does). Throws {@linkcode JsonSyntaxError} with the
 * line and column.
 */
export function parseJsonc(text: string): unknown {
  return JSON.parse(stripJsonc(text));
}

function serialise(key: string, value: unknown): string {
  if (value instanceof RawJson) return value.text;
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`Cannot serialise the value of key "${key}"`);
  return json;
}

/**
 * Sets top-level keys of the JSON object `objectText`: replaces the value of an existing key
 * in place (first occurrence; later duplicates removed) or appends new keys at the end.
 * Values are serialised with JSON.stringify unless given as {@linkcode RawJson}; `undefined`
 * removes the key. Everything else in the text is kept byte for byte (comments and trailing
 * commas of JSONC input too, so callers that need strict JSON must pass JSON).
 * Throws SyntaxError on malformed input or when the text is not an object.
 *
 * @example
 * ```ts
 * import { setTopLevelKeys } from "./raw_json.ts";
 * setTopLevelKeys('{"type":"macvlan","n":12345678901234567890}', { name: "net1" });
 * // '{"type":"macvlan","n":12345678901234567890,"name":"net1"}'
 * ```
 */
export function setTopLevelKeys(objectText: string, values: Record<string, unknown>): string {
  const root = scan(objectText);
  if (root.kind !== "object") {
    const before = objectText.slice(0, root.start);
    const line = before.split("\n").length;
    const column = root.start - before.lastIndexOf("\n");
    throw new JsonSyntaxError("expected an object", { line, column });
  }
  const members = root.members;
  const removed = new Set<number>();
  const replaced = new Map<number, string>();
  const appended: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    const indexes = members.flatMap((m, i) => (m.key === key ? [i] : []));
    if (indexes.length === 0) {
      if (value !== undefined) appended.push(`${JSON.stringify(key)}:${serialise(key, value)}`);
      continue;
    }
    if (value === undefined) {
      for (const i of indexes) removed.add(i);
      continue;
    }
    replaced.set(indexes[0], serialise(key, value));
    for (const i of indexes.slice(1)) removed.add(i);
  }
  if (removed.size === 0 && replaced.size === 0 && appended.length === 0) return objectText;

  const open = root.start;
  const close = root.end - 1;
  const head = objectText.slice(0, open + 1);
  const tail = objectText.slice(close);
  if (members.length === 0) {
    return head + appended.join(",") + objectText.slice(open + 1, close) + tail;
  }
  const last = members[members.length - 1];
  let gapEnd = objectText.slice(last.valueEnd, close);
  let out = head + objectText.slice(open + 1, members[0].keyStart);
  let previous = -1;
  for (let i = 0; i < members.length; i++) {
    if (removed.has(i)) continue;
    const m = members[i];
    if (previous !== -1) {
      out += objectText.slice(members[previous].valueEnd, members[previous + 1].keyStart);
    }
    const valueText = replaced.get(i) ?? objectText.slice(m.valueStart, m.valueEnd);
    out += objectText.slice(m.keyStart, m.valueStart) + valueText;
    previous = i;
  }
  if (appended.length > 0) {
    out += (previous === -1 ? "" : ",") + appended.join(",");
  } else if (previous === -1 && root.trailingComma !== -1) {
    // Every member was removed: a trailing comma would now follow nothing.
    const at = root.trailingComma - last.valueEnd;
    gapEnd = gapEnd.slice(0, at) + gapEnd.slice(at + 1);
  }
  return out + gapEnd + tail;
}
