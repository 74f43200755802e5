/**
 * @module
 * Finds the primary (cluster default) network config in the CNI config directory the way the
 * container runtime would pick it: the first `.conf`, `.conflist` or `.json` file in file-name
 * order. Our own output and any other Multus config are never taken (Multus nesting itself in
 * its own delegates after a restart is a classic upstream bug).
 */

import { join } from "../util/path.ts";
import { errorMessage, isObject } from "../util/errors.ts";

/** File names this installer writes into the CNI config directory. */
export const OUR_CONFIG_NAMES = ["00-multus.conf", "00-multus.conflist"] as const;

/** Extensions libcni and the runtimes read from the CNI config directory. */
export const CONFIG_EXTENSIONS = [".conf", ".conflist", ".json"] as const;

/** Suffix given to the primary config by `--rename-conf-file`. */
export const RENAMED_SUFFIX = ".old";

/** A primary config that was found and parsed. */
export interface PrimaryFound {
  kind: "found";
  /** Path of the file, as seen by this process. */
  path: string;
  /** The parsed JSON object. */
  conf: Record<string, unknown>;
  /** Files passed over because they are Multus configs (for the log). */
  skipped: string[];
}

/** No usable primary config (yet). */
export interface PrimaryMissing {
  kind: "missing";
  /** Why, for the log. */
  reason: string;
  /** Files passed over because they are Multus configs (for the log). */
  skipped: string[];
}

/** The file that would be the primary config cannot be used. */
export interface PrimaryInvalid {
  kind: "invalid";
  /** Path of the file. */
  path: string;
  /** Why it cannot be used. */
  reason: string;
}

/** Outcome of {@linkcode findPrimaryConfig}. */
export type PrimarySearch = PrimaryFound | PrimaryMissing | PrimaryInvalid;

/** Options of {@linkcode findPrimaryConfig}. */
export interface FindPrimaryOptions {
  /** Take exactly this file name (`--multus-master-cni-file-name`). */
  fileName?: string;
  /** Also accept files renamed by `--rename-conf-file` (`<name>.old`), after the others. */
  includeRenamed?: boolean;
}

/**
 * Looks for the primary network config in `dir`.
 *
 * A file that does not parse stops the search (it is reported, never skipped): it may be a
 * config being written, and silently taking the next file would pick the wrong network.
 */
export async function findPrimaryConfig(
  dir: string,
  options: FindPrimaryOptions = {},
): Promise<PrimarySearch> {
  if (options.fileName) return await namedPrimary(dir, options);
  const names = await listConfigFiles(dir);
  const skipped: string[] = [];
  const groups = [names.filter((n) => hasConfigExtension(n))];
  if (options.includeRenamed) {
    groups.push(names.filter((n) =>
      n.endsWith(RENAMED_SUFFIX) && hasConfigExtension(
        n.slice(0, -RENAMED_SUFFIX.length),
      )
    ));
  }
  for (const group of groups) {
    for (const name of group) {
      if (name.startsWith("00-multus.conf")) {
        skipped.push(name);
        continue;
      }
      const path = join(dir, name);
      const loaded = await loadConfig(path);
      if (loaded.kind === "invalid") return loaded;
      if (loaded.kind === "gone") continue;
      if (isMultusConfig(loaded.conf)) {
        skipped.push(name);
        continue;
      }
      return { kind: "found", path, conf: loaded.conf, skipped };
    }
  }
  return {
    kind: "missing",
    reason: `no ${CONFIG_EXTENSIONS.map((e) => `*${e}`).join(", ")} file in ${dir}` +
      (skipped.length ? ` other than Multus configs (${skipped.join(", ")})` : ""),
    skipped,
  };
}

/** True for a config whose plugin (or any plugin of a list) is Multus itself. */
export function isMultusConfig(conf: Record<string, unknown>): boolean {
  const types: unknown[] = [conf.type];
  if (Array.isArray(conf.plugins)) {
    for (const p of conf.plugins) if (isObject(p)) types.push(p.type);
  }
  return types.some((t) => t === "multus" || t === "multus-shim");
}

function hasConfigExtension(name: string): boolean {
  return CONFIG_EXTENSIONS.some((ext) => name.endsWith(ext));
}

async function namedPrimary(dir: string, options: FindPrimaryOptions): Promise<PrimarySearch> {
  const name = options.fileName!;
  const candidates = [name];
  if (options.includeRenamed) candidates.push(name + RENAMED_SUFFIX);
  for (const candidate of candidates) {
    const path = join(dir, candidate);
    const loaded = await loadConfig(path);
    if (loaded.kind === "gone") continue;
    if (loaded.kind === "invalid") return loaded;
    if (isMultusConfig(loaded.conf)) {
      return {
        kind: "invalid",
        path,
        reason: "it is a Multus config (type multus): Multus cannot delegate to itself",
      };
    }
    return { kind: "found", path, conf: loaded.conf, skipped: [] };
  }
  return {
    kind: "missing",
    reason: `${join(dir, name)} (--multus-master-cni-file-name) does not exist`,
    skipped: [],
  };
}

/** Regular files (or links to them) in `dir`, sorted by name as Go's sort.Strings does. */
async function listConfigFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) continue;
    names.push(entry.name);
  }
  return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

type Loaded =
  | { kind: "ok"; conf: Record<string, unknown> }
  | { kind: "gone" }
  | PrimaryInvalid;

async function loadConfig(path: string): Promise<Loaded> {
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return { kind: "gone" };
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { kind: "gone" };
    return { kind: "invalid", path, reason: `cannot read it: ${errorMessage(err)}` };
  }
  let conf: unknown;
  try {
    conf = JSON.parse(text);
  } catch (err) {
    return { kind: "invalid", path, reason: `it is not valid JSON: ${errorMessage(err)}` };
  }
  if (!isObject(conf)) return { kind: "invalid", path, reason: "it is not a JSON object" };
  return { kind: "ok", conf };
}

export { isObject };
