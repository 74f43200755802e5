/**
 * @module
 * A parser for the small YAML subset kubeconfigs are written in (block mappings and
 * sequences of plain or quoted one-line scalars), so the common case does not pay for
 * loading the full `yaml` package (~65 ms) on every plugin run. Anything outside the subset
 * gives `undefined`, and the caller falls back to the full parser: for every input it
 * accepts, the result equals what `yaml` (YAML 1.2 core schema) gives.
 */

interface Line {
  indent: number;
  text: string;
}

/** Thrown internally when the input leaves the subset. */
class Unsupported extends Error {}

const KEY = /^([A-Za-z0-9_][A-Za-z0-9_.\/-]*):(?:[ ]+(.*))?$/;
/** YAML 1.2 core schema ints and floats: resolved as numbers, which kubeconfigs never need. */
const NUMBER = [
  /^[-+]?[0-9]+$/,
  /^0o[0-7]+$/,
  /^0x[0-9a-fA-F]+$/,
  /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/,
  /^[-+]?\.(inf|Inf|INF)$/,
  /^\.(nan|NaN|NAN)$/,
];
const NULL_OR_BOOL = /^(null|Null|NULL|~|True|TRUE|False|FALSE)$/;
/** Characters that start something other than a plain string. */
const INDICATORS = "-?:,[]{}#&*!|>'\"%@`";

/**
 * Parses `text` if it stays within the kubeconfig subset of YAML.
 *
 * @returns The parsed value, or undefined when the full YAML parser is needed.
 */
export function parseSimpleYaml(text: string): unknown {
  const lines: Line[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const content = line.trimStart();
    if (content === "" || content.startsWith("#")) continue;
    const indent = line.length - content.length;
    if (line.slice(0, indent).includes("\t")) return undefined;
    lines.push({ indent, text: content.trimEnd() });
  }
  if (lines.length === 0 || lines[0].indent !== 0) return undefined;
  try {
    const parser = new Parser(lines);
    const value = parser.block(0);
    return parser.done() ? value : undefined;
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
}

class Parser {
  #lines: Line[];
  #i = 0;

  constructor(lines: Line[]) {
    this.#lines = lines;
  }

  done(): boolean {
    return this.#i === this.#lines.length;
  }

  /** The node starting at the current line, which has exactly `indent`. */
  block(indent: number): unknown {
    const line = this.#lines[this.#i];
    if (!line || line.indent !== indent) throw new Unsupported();
    return isItem(line.text) ? this.#sequence(indent) : this.#mapping(indent);
  }

  #mapping(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (this.#i < this.#lines.length) {
      const line = this.#lines[this.#i];
      if (line.indent < indent || (line.indent === indent && isItem(line.text))) break;
      if (line.indent > indent) throw new Unsupported();
      const m = KEY.exec(line.text);
      if (!m || Object.hasOwn(out, m[1]) || !isStringKey(m[1])) throw new Unsupported();
      this.#i++;
      out[m[1]] = this.#value((m[2] ?? "").trim(), { indent, inMapping: true });
    }
    return out;
  }

  #sequence(indent: number): unknown[] {
    const out: unknown[] = [];
    while (this.#i < this.#lines.length) {
      const line = this.#lines[this.#i];
      if (line.indent !== indent || !isItem(line.text)) {
        if (line.indent > indent) throw new Unsupported();
        break;
      }
      const rest = line.text.slice(1);
      const content = rest.trimStart();
      if (content !== "" && KEY.test(content)) {
        // "- key: value": a mapping whose keys sit at the column of "key".
        const column = indent + 1 + (rest.length - content.length);
        this.#lines[this.#i] = { indent: column, text: content };
        out.push(this.#mapping(column));
      } else {
        this.#i++;
        out.push(this.#value(content, { indent, inMapping: false }));
      }
    }
    return out;
  }

  /**
   * The value after `key:` or `-`: an inline scalar, or a nested block on the next lines
   * (after `key:`, a sequence may also start at the key's own indent).
   */
  #value(inline: string, at: { indent: number; inMapping: boolean }): unknown {
    const next = this.#lines[this.#i];
    if (inline !== "") {
      if (next && next.indent > at.indent) throw new Unsupported(); // multi-line scalar
      return scalar(inline);
    }
    if (
      next && (next.indent > at.indent ||
        (at.inMapping && next.indent === at.indent && isItem(next.text)))
    ) {
      return this.block(next.indent);
    }
    return null;
  }
}

/** A key `yaml` also reads as this plain string (not null, a boolean or a number). */
function isStringKey(key: string): boolean {
  return key !== "__proto__" && key !== "true" && key !== "false" && key !== "null" &&
    !NULL_OR_BOOL.test(key) && !NUMBER.some((re) => re.test(key));
}

function isItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

function scalar(text: string): unknown {
  if (text === "{}") return {};
  if (text === "[]") return [];
  const quote = text[0];
  if (quote === '"' || quote === "'") {
    const inner = text.slice(1, -1);
    if (text.length < 2 || text.at(-1) !== quote || inner.includes(quote) || inner.includes("\\")) {
      throw new Unsupported();
    }
    return inner;
  }
  if (text === "true") return true;
  if (text === "false") return false;
  if (
    INDICATORS.includes(text[0]) || /:[ \t]|[ \t]#/.test(text) || text.endsWith(":") ||
    NULL_OR_BOOL.test(text) || NUMBER.some((re) => re.test(text))
  ) {
    throw new Unsupported();
  }
  return text;
}
