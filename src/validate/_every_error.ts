/**
 * @module
 * Every error of a configuration in one run. The plugin's loaders stop at the first bad key,
 * which would make a user fix three keys in three runs; here, after an error that names a
 * top-level key, that key is taken out of the text and the text is loaded again, until it
 * loads or fails for a reason no key explains.
 */

import { ConfigError } from "../cni/errors.ts";
import { parseNetworkConfig } from "../cni/network_config.ts";
import { setTopLevelKeys } from "../cni/raw_json.ts";

/** How to read the errors of one loader. */
export interface ErrorKeys {
  /** The top-level key (as spelled in the text) an error is about; undefined for none. */
  keyOf(err: unknown): string | undefined;
  /**
   * Keys whose removal could have caused `err` (default: its own key). An error that a
   * removal may have caused is not the user's and ends the search.
   */
  causes?(err: unknown, key: string): string[];
}

/**
 * Loads `text` with `load` and returns every error found, the loader's own first error first
 * (an empty list when it loads).
 */
export function loadCollectingErrors(
  text: string,
  load: (text: string) => unknown,
  keys: ErrorKeys,
): unknown[] {
  const errors: unknown[] = [];
  const removed = new Set<string>();
  let current = text;
  // Each round removes one key, so the rounds are bounded by the keys of the text.
  for (let round = 0; round <= 1000; round++) {
    try {
      load(current);
      return errors;
    } catch (err) {
      const key = keys.keyOf(err);
      const causes = key === undefined ? [] : keys.causes?.(err, key) ?? [key];
      if (errors.length > 0 && (key === undefined || causes.some((k) => removed.has(k)))) {
        return errors;
      }
      errors.push(err);
      if (key === undefined) return errors;
      let next: string;
      try {
        next = setTopLevelKeys(current, { [key]: undefined });
      } catch {
        return errors;
      }
      if (next === current) return errors; // the key is not in the text: nothing to take out
      removed.add(key);
      current = next;
    }
  }
  return errors;
}

/**
 * The top-level key of a ConfigError's field (`logOptions.maxAge` → `logOptions`,
 * `spec.config.plugins[0].type` with prefix `spec.config` → `plugins`).
 */
export function configErrorKey(err: unknown, prefix = ""): string | undefined {
  if (!(err instanceof ConfigError)) return undefined;
  let field = err.field;
  if (prefix !== "") {
    if (!field.startsWith(`${prefix}.`)) return undefined;
    field = field.slice(prefix.length + 1);
  }
  const key = field.split(/[.[]/)[0];
  return key === "" || key === "(top level)" ? undefined : key;
}

/**
 * Every error of a CNI network configuration (conf or conflist) as the plugin parses it;
 * `where` is the name the parser gives it in messages and fields (e.g. `spec.config`).
 */
export function networkConfigErrors(text: string, where: string): unknown[] {
  return loadCollectingErrors(text, (t) => parseNetworkConfig(t, where), {
    keyOf: (err) => configErrorKey(err, where),
    // Without "type" a config is read as a list: a bad "type" taken out leaves "plugins" missing.
    causes: (_err, key) => key === "plugins" || key === "type" ? ["plugins", "type"] : [key],
  });
}
