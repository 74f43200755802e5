/**
 * @module
 * Loads the `yaml` package on demand, as its ES module build: the package's default (Node)
 * entry is CommonJS, and bundling CommonJS pulls Deno's Node compatibility layer into every
 * plugin start (~40 ms measured with `deno bundle`), even when no YAML is read.
 */

import type * as Yaml from "yaml";

/** The `yaml` package (the same version as the `yaml` import, ES module build). */
export async function loadYaml(): Promise<typeof Yaml> {
  return (await import("yaml-esm")) as typeof Yaml;
}
