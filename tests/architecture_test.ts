/**
 * The layout stays true: read from `deno info --json` of every entry point (static, dynamic
 * and type-only imports), no module imports a higher layer, no two files import each other
 * in a circle, and no two folders do. The layers are those of docs/architecture.md.
 */

import assert from "node:assert/strict";
import { REPO_ROOT } from "./helpers/plugin_run.ts";

/**
 * Layers, lowest first: a file may import its own folder and the folders of lower layers.
 * Folders of one layer marked `leaves` may not import each other either.
 */
const LAYERS: { name: string; folders: string[]; leaves?: boolean }[] = [
  { name: "base", folders: ["src/util/"] },
  { name: "logging", folders: ["src/log/"] },
  { name: "protocol and clients", folders: ["src/cni/", "src/k8s/", "src/kubelet/"], leaves: true },
  { name: "Multus config", folders: ["src/multus/config/"] },
  { name: "Multus planning", folders: ["src/multus/plan/"] },
  { name: "Multus Kubernetes resolution", folders: ["src/multus/kube/"] },
  { name: "Multus commands", folders: ["src/multus/run/"] },
  {
    name: "entry points",
    folders: ["src/plugin/", "src/install/", "src/validate/", "src/daemon/", "src/shim/"],
    leaves: true,
  },
  { name: "router", folders: ["src/main.ts"] },
];

/** One import: `from` imports `to` (repository-relative paths) at `line`. */
export interface ImportEdge {
  from: string;
  to: string;
  line: number;
}

/** The folder (or the file, for `src/main.ts`) a path belongs to, and its layer index. */
function placeOf(path: string): { folder: string; layer: number } | undefined {
  for (const [layer, { folders }] of LAYERS.entries()) {
    for (const folder of folders) {
      if (path === folder || path.startsWith(folder)) return { folder, layer };
    }
  }
  return undefined;
}

function folderOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/") + 1);
}

/** Every problem of the import graph, each naming the files concerned; empty when clean. */
export function layeringProblems(edges: ImportEdge[]): string[] {
  const problems: string[] = [];
  for (const { from, to, line } of edges) {
    const a = placeOf(from);
    const b = placeOf(to);
    if (!a) problems.push(`${from} is in no layer: add its folder to LAYERS`);
    if (!b) problems.push(`${to} is in no layer: add its folder to LAYERS`);
    if (!a || !b) continue;
    if (b.layer > a.layer) {
      problems.push(
        `${from}:${line} imports ${to}, a higher layer (${LAYERS[a.layer].name} may not import ${
          LAYERS[b.layer].name
        })`,
      );
    } else if (b.layer === a.layer && a.folder !== b.folder && LAYERS[a.layer].leaves) {
      problems.push(
        `${from}:${line} imports ${to}: ${a.folder} and ${b.folder} are leaves of one layer (${
          LAYERS[a.layer].name
        }) and may not import each other`,
      );
    }
  }
  for (const cycle of cycles(edges.map(({ from, to }) => [from, to]))) {
    problems.push(`import cycle among files: ${cycle.join(" -> ")} -> ${cycle[0]}`);
  }
  const folderEdges = edges
    .map(({ from, to }) => [folderOf(from), folderOf(to)] as [string, string])
    .filter(([a, b]) => a !== b);
  for (const cycle of cycles(folderEdges)) {
    const witnesses = edges.filter(({ from, to }) =>
      cycle.includes(folderOf(from)) && cycle.includes(folderOf(to)) &&
      folderOf(from) !== folderOf(to)
    ).map(({ from, to }) => `${from} -> ${to}`);
    const shown = witnesses.length > 6
      ? [...witnesses.slice(0, 6), `${witnesses.length - 6} more`]
      : witnesses;
    problems.push(
      `import cycle among folders: ${cycle.join(" -> ")} -> ${cycle[0]} (${shown.join(", ")})`,
    );
  }
  return problems;
}

/** The strongly connected components with more than one node (or a self-import): Tarjan. */
function cycles(edges: [string, string][]): string[][] {
  const next = new Map<string, string[]>();
  for (const [a, b] of edges) {
    if (!next.has(a)) next.set(a, []);
    if (!next.has(b)) next.set(b, []);
    next.get(a)!.push(b);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || next.get(v)!.includes(v)) found.push(component.reverse());
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

interface InfoModule {
  specifier: string;
  dependencies?: {
    code?: { specifier: string; span: { start: { line: number } } };
    type?: { specifier: string; span: { start: { line: number } } };
  }[];
}

/** The imports among files of src/, read with `deno info --json` from `roots`. */
async function importGraph(roots: string[]): Promise<ImportEdge[]> {
  const prefix = new URL(`file://${REPO_ROOT}/`).href;
  const edges = new Map<string, ImportEdge>();
  const seen = new Set<string>();
  for (const root of roots) {
    if (seen.has(root)) continue;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: REPO_ROOT,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
    for (const module of info.modules) {
      if (!module.specifier.startsWith(`${prefix}src/`)) continue;
      const from = module.specifier.slice(prefix.length);
      seen.add(from);
      for (const dep of module.dependencies ?? []) {
        for (const target of [dep.code, dep.type]) {
          if (!target?.specifier.startsWith(`${prefix}src/`)) continue;
          const to = target.specifier.slice(prefix.length);
          edges.set(`${from}\n${to}`, { from, to, line: target.span.start.line + 1 });
        }
      }
    }
  }
  return [...edges.values()];
}

/** Every module of src/ except tests, entry points first. */
async function sourceFiles(): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(`${REPO_ROOT}/${dir}`)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (path.endsWith(".ts") && !path.endsWith("_test.ts")) files.push(path);
    }
  };
  await walk("src");
  const isEntry = (f: string) => f === "src/main.ts" || /^src\/[^/]+\/main\.ts$/.test(f);
  return [...files.filter(isEntry).sort(), ...files.filter((f) => !isEntry(f)).sort()];
}

Deno.test("every import of src/ runs down a layer, in no cycle of files or folders", async () => {
  const problems = layeringProblems(await importGraph(await sourceFiles()));
  assert.deepEqual(problems, [], `\n${problems.join("\n")}`);
});

Deno.test("layeringProblems() names an upward import, a file cycle and a folder cycle", () => {
  const problems = layeringProblems([
    { from: "src/util/path.ts", to: "src/log/logger.ts", line: 3 },
    { from: "src/log/logger.ts", to: "src/util/path.ts", line: 5 },
    { from: "src/cni/a.ts", to: "src/cni/b.ts", line: 1 },
    { from: "src/cni/b.ts", to: "src/cni/a.ts", line: 2 },
    { from: "src/k8s/errors.ts", to: "src/cni/errors.ts", line: 9 },
  ]);
  assert.deepEqual(problems, [
    "src/util/path.ts:3 imports src/log/logger.ts, a higher layer (base may not import logging)",
    "src/k8s/errors.ts:9 imports src/cni/errors.ts: src/k8s/ and src/cni/ are leaves of one layer (protocol and clients) and may not import each other",
    "import cycle among files: src/cni/a.ts -> src/cni/b.ts -> src/cni/a.ts",
    "import cycle among files: src/log/logger.ts -> src/util/path.ts -> src/log/logger.ts",
    "import cycle among folders: src/log/ -> src/util/ -> src/log/ (src/util/path.ts -> src/log/logger.ts, src/log/logger.ts -> src/util/path.ts)",
  ]);
});
