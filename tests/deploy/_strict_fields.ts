/**
 * @module
 * Finds fields the Kubernetes API does not know (typos such as `mountPropogation`), which the
 * kubernetes-models validators accept because the OpenAPI schemas allow extra properties.
 * The property lists come from the package's own type declarations (`*.d.ts`), generated from
 * the same OpenAPI document as its validators.
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

interface InterfaceDecl {
  name: string;
  props: Map<string, string>;
  imports: Map<string, string>;
  file: string;
}

type TypeShape =
  | { kind: "object"; decl: InterfaceDecl }
  | { kind: "array"; of: TypeShape }
  | { kind: "map"; of: TypeShape }
  | { kind: "leaf" };

const cache = new Map<string, InterfaceDecl | undefined>();

/**
 * Lists the unknown fields of `value` (paths like `spec.template.spec.containers[0].foo`),
 * checked against the model module `specifier`, e.g. `kubernetes-models/apps/v1/DaemonSet`.
 */
export function unknownFields(value: unknown, specifier: string): string[] {
  const js = fileURLToPath(import.meta.resolve(specifier));
  const decl = loadInterface(js.replace(/\.js$/, ".d.ts"));
  if (!decl) throw new Error(`No interface declaration found for ${specifier}`);
  const out: string[] = [];
  walk(value, { kind: "object", decl }, "", out);
  return out;
}

function walk(value: unknown, shape: TypeShape, path: string, out: string[]): void {
  if (value === null || value === undefined || shape.kind === "leaf") return;
  if (shape.kind === "array") {
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, shape.of, `${path}[${i}]`, out));
    return;
  }
  if (typeof value !== "object" || Array.isArray(value)) return;
  if (shape.kind === "map") {
    for (const [k, v] of Object.entries(value)) walk(v, shape.of, `${path}.${k}`, out);
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    const where = path ? `${path}.${k}` : k;
    const typeText = shape.decl.props.get(k);
    if (typeText === undefined) {
      out.push(where);
      continue;
    }
    walk(v, resolveShape(typeText, shape.decl), where, out);
  }
}

function resolveShape(typeText: string, ctx: InterfaceDecl): TypeShape {
  const t = typeText.trim();
  const array = /^Array<(.+)>$/s.exec(t);
  if (array) return { kind: "array", of: resolveShape(array[1], ctx) };
  const map = /^\{\s*\[key: string\]:\s*(.+?);?\s*\}$/s.exec(t);
  if (map) return { kind: "map", of: resolveShape(map[1], ctx) };
  if (!/^[A-Za-z_]\w*$/.test(t)) return { kind: "leaf" };
  if (t === ctx.name) return { kind: "object", decl: ctx };
  const file = ctx.imports.get(t);
  if (!file) return { kind: "leaf" };
  const decl = loadInterface(file);
  return decl ? { kind: "object", decl } : { kind: "leaf" };
}

function loadInterface(file: string): InterfaceDecl | undefined {
  if (cache.has(file)) return cache.get(file);
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch {
    cache.set(file, undefined);
    return undefined;
  }
  text = text.replace(/\/\*[\s\S]*?\*\//g, "");
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/import \{([^}]*)\} from "([^"]+)";/g)) {
    const target = resolveImport(m[2], file);
    if (!target) continue;
    for (const name of m[1].split(",").map((s) => s.trim()).filter(Boolean)) {
      imports.set(name.split(/\s+as\s+/).at(-1)!, target);
    }
  }
  const head = /export interface (\w+)[^{]*\{/.exec(text);
  if (!head) {
    cache.set(file, undefined);
    return undefined;
  }
  const body = braceBody(text, head.index + head[0].length - 1);
  const decl: InterfaceDecl = { name: head[1], props: parseProps(body), imports, file };
  cache.set(file, decl);
  return decl;
}

function resolveImport(spec: string, from: string): string | undefined {
  if (spec.startsWith(".")) return join(dirname(from), spec.replace(/\.js$/, ".d.ts"));
  const parts = spec.split("/");
  const pkgLen = spec.startsWith("@") ? 2 : 1;
  const pkg = parts.slice(0, pkgLen).join("/");
  const sub = parts.slice(pkgLen).join("/");
  if (!sub) return undefined; // package roots (base models) carry no field lists we need
  for (let dir = dirname(from); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", pkg, `${sub}.d.ts`);
    try {
      Deno.statSync(candidate);
      return candidate;
    } catch {
      // keep walking up
    }
  }
  return undefined;
}

/** The text between the brace at `open` and its match. */
function braceBody(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error("Unbalanced braces in a declaration file");
}

/** `"name"?: Type;` entries at the top level of an interface body. */
function parseProps(body: string): Map<string, string> {
  const props = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    const m = /"([^"]+)"\??:\s*/y;
    m.lastIndex = i;
    const hit = m.exec(body);
    if (!hit) {
      i++;
      continue;
    }
    let j = m.lastIndex;
    let depth = 0;
    for (; j < body.length; j++) {
      const c = body[j];
      if (c === "{" || c === "<" || c === "(" || c === "[") depth++;
      else if (c === "}" || c === ">" || c === ")" || c === "]") depth--;
      else if (c === ";" && depth === 0) break;
    }
    props.set(hit[1], body.slice(m.lastIndex, j));
    i = j + 1;
  }
  return props;
}
