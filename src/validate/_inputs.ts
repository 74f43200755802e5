/**
 * @module
 * The files given to `multus validate`: read (a path, or `-` for standard input), parsed as
 * JSON (comments allowed, as in hand-written CNI configs) or YAML (several documents,
 * `List` objects), and sorted into Multus configs, NetworkAttachmentDefinitions, pods (or
 * pod templates of workloads) and plain CNI network configs.
 */

import { extname, join } from "../util/path.ts";
import { JsonSyntaxError, parseJsonc, rawArrayElements, setTopLevelKeys } from "../cni/raw_json.ts";
import type { Report, Where } from "./_findings.ts";
import { loadYaml } from "../util/yaml.ts";
import { errorMessage, isObject } from "../util/errors.ts";
import { DRA_KINDS, type DraInput } from "./_dra.ts";

/** Name shown for standard input. */
export const STDIN_NAME = "<stdin>";

/** A file's text. */
export interface Source {
  file: string;
  text: string;
}

/** One parsed document of a file. */
export interface Doc {
  where: Where;
  value: unknown;
  /** The JSON text of the document when the file is JSON (kept for byte-exact configs). */
  jsonText?: string;
}

/** A Multus configuration (a `type: multus` conf, or the multus plugin of a conflist). */
export interface MultusInput {
  kind: "multus";
  where: Where;
  /** The configuration text the plugin would get on stdin. */
  text: string;
  /** For a conflist: the whole list text, and the index of the multus plugin. */
  list?: { text: string; index: number };
}

/** A NetworkAttachmentDefinition object. */
export interface NadInput {
  kind: "nad";
  where: Where;
  object: Record<string, unknown>;
}

/** A pod, or the pod template of a workload. */
export interface PodInput {
  kind: "pod";
  /** Where the pod (template) is; `path` is the template's path (`spec.template`). */
  where: Where;
  namespace: string;
  /** For messages: `pod "ns/name"` or `pods of Deployment "ns/name"`. */
  label: string;
  metadata: Record<string, unknown>;
  spec: Record<string, unknown>;
}

/** A plain CNI network configuration (conf or conflist) given on its own. */
export interface NetworkInput {
  kind: "network";
  where: Where;
  text: string;
}

/** Anything `multus validate` checks. */
export type Input = MultusInput | NadInput | PodInput | NetworkInput | DraInput;

/** Multus plugin types: the thin plugin and the thick plugin's shim. */
export const MULTUS_TYPES: ReadonlySet<string> = new Set(["multus", "multus-shim"]);

const JSON_EXTENSIONS = new Set([".json", ".conf", ".conflist"]);
const YAML_EXTENSIONS = new Set([".yaml", ".yml"]);
const INPUT_EXTENSIONS = new Set([...JSON_EXTENSIONS, ...YAML_EXTENSIONS]);

/** Workload kinds whose pod template is at `spec.template`. */
const TEMPLATE_KINDS = new Set([
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "ReplicaSet",
  "ReplicationController",
  "Job",
]);

/**
 * Reads the files named by `arg`: a file, `-` (standard input), or a directory (its `.conf`,
 * `.conflist`, `.json`, `.yaml` and `.yml` files in name order). An unreadable path is
 * reported and yields nothing.
 */
export async function readSources(arg: string, report: Report): Promise<Source[]> {
  if (arg === "-") {
    const text = await new Response(Deno.stdin.readable).text();
    return [{ file: STDIN_NAME, text }];
  }
  try {
    const info = await Deno.stat(arg);
    if (info.isDirectory) {
      const names: string[] = [];
      for await (const entry of Deno.readDir(arg)) {
        if (!entry.isDirectory && INPUT_EXTENSIONS.has(extname(entry.name))) {
          names.push(entry.name);
        }
      }
      const sources: Source[] = [];
      for (const name of names.sort()) sources.push(...await readSources(join(arg, name), report));
      return sources;
    }
    return [{ file: arg, text: await Deno.readTextFile(arg) }];
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound
      ? "no such file or directory"
      : errorMessage(err);
    report.error({ file: arg, path: "" }, `Cannot read ${arg}: ${reason}`, {
      hint: "Check the path; use - to read from standard input",
    });
    return [];
  }
}

/**
 * Parses a file into documents: JSON for `.json`, `.conf`, `.conflist` (and text starting
 * with `{` or `[`), else YAML with any number of documents. Syntax errors are reported with
 * their line and column, and the document is skipped.
 */
export async function parseSource(source: Source, report: Report): Promise<Doc[]> {
  const ext = extname(source.file).toLowerCase();
  const looksJson = /^\s*[[{]/.test(source.text);
  if (JSON_EXTENSIONS.has(ext) || (!YAML_EXTENSIONS.has(ext) && looksJson)) {
    return parseJsonSource(source, report);
  }
  return await parseYamlSource(source, report);
}

function parseJsonSource(source: Source, report: Report): Doc[] {
  try {
    const value = parseJsonc(source.text);
    return [{ where: { file: source.file, path: "" }, value, jsonText: source.text }];
  } catch (err) {
    if (err instanceof JsonSyntaxError) {
      report.error(
        { file: source.file, path: `line ${err.line} column ${err.column}` },
        `invalid JSON: ${err.reason}`,
        { hint: "Fix the JSON syntax (a missing comma, quote or bracket is the usual cause)" },
      );
    } else {
      report.error({ file: source.file, path: "" }, `invalid JSON: ${errorMessage(err)}`);
    }
    return [];
  }
}

async function parseYamlSource(source: Source, report: Report): Promise<Doc[]> {
  const { parseAllDocuments } = await loadYaml();
  // An empty stream is an empty array too.
  const documents = [...parseAllDocuments(source.text)];
  const docs: Doc[] = [];
  documents.forEach((doc, i) => {
    const label = documents.length > 1 ? `document ${i + 1}` : "";
    if (doc.errors.length > 0) {
      const first = doc.errors[0];
      const pos = first.linePos?.[0];
      const reason = first.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
      report.error(
        { file: source.file, path: pos ? `line ${pos.line} column ${pos.col}` : label },
        `invalid YAML: ${reason}`,
        { hint: "Fix the YAML syntax (indentation and unquoted ':' are the usual causes)" },
      );
      return;
    }
    if (doc.contents === null) return;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (err) {
      report.error({ file: source.file, path: label }, `invalid YAML: ${errorMessage(err)}`);
      return;
    }
    // An empty document (a trailing or doubled "---", only comments), as helm and kustomize
    // emit: kubectl skips it, and so do we.
    if (value === null) return;
    docs.push({ where: { file: source.file, path: label }, value });
  });
  return docs;
}

/** A key of an object matched case-insensitively, as Go's encoding/json does (last wins). */
export function getKey(obj: Record<string, unknown>, key: string): unknown {
  const lower = key.toLowerCase();
  let value: unknown;
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) value = v;
  return value;
}

function keySpelling(obj: Record<string, unknown>, key: string): string | undefined {
  const lower = key.toLowerCase();
  return Object.keys(obj).findLast((k) => k.toLowerCase() === lower);
}

/** What {@linkcode classify} found in a document. */
export interface Classified {
  inputs: Input[];
  /** Kubernetes objects of other kinds, skipped. */
  ignored: number;
}

/**
 * Sorts a document into what it holds: `List` objects (and JSON arrays) are unpacked; a
 * NetworkAttachmentDefinition, a Pod or a workload's pod template; a JSON object with
 * `type: multus` (or a conflist with a multus plugin) is a Multus config; another object with
 * `type` or `plugins` is a CNI network config. Anything else is reported as unrecognised.
 */
export function classify(doc: Doc, report: Report): Classified {
  const out: Classified = { inputs: [], ignored: 0 };
  classifyValue(doc.value, { where: doc.where, jsonText: doc.jsonText, report, out });
  return out;
}

interface ClassifyState {
  where: Where;
  jsonText?: string;
  report: Report;
  out: Classified;
}

function classifyValue(value: unknown, state: ClassifyState): void {
  const { where, report, out } = state;
  if (Array.isArray(value)) {
    value.forEach((item, i) =>
      classifyValue(item, { ...state, where: indexed(where, i), jsonText: undefined })
    );
    return;
  }
  if (!isObject(value)) {
    report.error(where, `expected an object, got ${describe(value)}`, {
      hint: "Give Multus configs, NetworkAttachmentDefinitions or pods (JSON or YAML)",
    });
    return;
  }
  const kind = value.kind;
  if (typeof kind === "string" && kind !== "") {
    classifyObject(value, state);
    return;
  }
  const type = getKey(value, "type");
  const plugins = getKey(value, "plugins");
  const text = state.jsonText ?? JSON.stringify(value);
  if (typeof type === "string" && type !== "") {
    if (MULTUS_TYPES.has(type)) out.inputs.push({ kind: "multus", where, text });
    else out.inputs.push({ kind: "network", where, text });
    return;
  }
  if (Array.isArray(plugins)) {
    const index = plugins.findIndex((p) => {
      const t = isObject(p) ? getKey(p, "type") : undefined;
      return typeof t === "string" && MULTUS_TYPES.has(t);
    });
    if (index >= 0) {
      out.inputs.push({
        kind: "multus",
        where,
        text: multusPluginText(value, { text, index }),
        list: { text, index },
      });
    } else {
      out.inputs.push({ kind: "network", where, text });
    }
    return;
  }
  if (type !== undefined || plugins !== undefined) {
    out.inputs.push({ kind: "network", where, text });
    return;
  }
  report.warning(
    where,
    "not recognised: not a Multus config, a NetworkAttachmentDefinition, a pod or a CNI network config; skipped",
    { hint: 'Kubernetes objects need "kind"; CNI configs need "type" or "plugins"' },
  );
}

function indexed(where: Where, i: number): Where {
  const path = where.path === "" ? `[${i}]` : `${where.path}[${i}]`;
  return { ...where, path };
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "string"
    ? `the string ${JSON.stringify(value.slice(0, 40))}`
    : `a ${typeof value}`;
}

/**
 * The multus plugin's configuration as the runtime passes it: the plugin object with the
 * list's `name` and `cniVersion` (libcni injects them).
 */
function multusPluginText(
  list: Record<string, unknown>,
  { text, index }: { text: string; index: number },
): string {
  const key = keySpelling(list, "plugins") ?? "plugins";
  let plugin: string;
  try {
    plugin = rawArrayElements(text, [key])?.[index] ?? "";
  } catch {
    plugin = "";
  }
  if (plugin === "") plugin = JSON.stringify((getKey(list, "plugins") as unknown[])[index]);
  const inject: Record<string, unknown> = {};
  const name = getKey(list, "name");
  const cniVersion = getKey(list, "cniVersion");
  if (name !== undefined) inject.name = name;
  if (cniVersion !== undefined) inject.cniVersion = cniVersion;
  try {
    return setTopLevelKeys(plugin, inject);
  } catch {
    return plugin;
  }
}

function classifyObject(value: Record<string, unknown>, state: ClassifyState): void {
  const kind = value.kind as string;
  const { where, out } = state;
  const metadata = isObject(value.metadata) ? value.metadata : {};
  const name = typeof metadata.name === "string" ? metadata.name : "";
  const namespace = typeof metadata.namespace === "string" && metadata.namespace !== ""
    ? metadata.namespace
    : "default";
  const label = name === ""
    ? `${kind} (${where.path || "unnamed"})`
    : `${kind} ${namespace}/${name}`;
  const at: Where = { file: where.file, object: label, path: "" };

  if (kind.endsWith("List") && Array.isArray(value.items)) {
    value.items.forEach((item, i) =>
      classifyValue(item, { ...state, where: indexed(where, i), jsonText: undefined })
    );
    return;
  }
  if (kind === "NetworkAttachmentDefinition") {
    out.inputs.push({ kind: "nad", where: at, object: value });
    return;
  }
  if (DRA_KINDS.has(kind)) {
    // Claims and templates are namespaced; slices and classes are not.
    const scoped = kind.startsWith("ResourceClaim") ? label : name ? `${kind} ${name}` : label;
    out.inputs.push({ kind: "dra", where: { ...at, object: scoped }, object: value });
    return;
  }
  if (kind === "Pod") {
    const spec = isObject(value.spec) ? value.spec : {};
    out.inputs.push({
      kind: "pod",
      where: at,
      namespace,
      label: `pod "${namespace}/${name}"`,
      metadata,
      spec,
    });
    return;
  }
  let template: unknown;
  let path = "";
  if (TEMPLATE_KINDS.has(kind)) {
    template = isObject(value.spec) ? value.spec.template : undefined;
    path = "spec.template";
  } else if (kind === "CronJob") {
    const spec = isObject(value.spec) ? value.spec : {};
    const job = isObject(spec.jobTemplate) ? spec.jobTemplate : {};
    template = isObject(job.spec) ? job.spec.template : undefined;
    path = "spec.jobTemplate.spec.template";
  }
  if (isObject(template)) {
    const tmeta = isObject(template.metadata) ? template.metadata : {};
    out.inputs.push({
      kind: "pod",
      where: { ...at, path },
      namespace,
      label: `pods of ${kind} "${namespace}/${name}"`,
      metadata: tmeta,
      spec: isObject(template.spec) ? template.spec : {},
    });
    return;
  }
  out.ignored++;
}

export { isObject };
