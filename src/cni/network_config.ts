/**
 * @module
 * A delegate's network configuration, single plugin (`.conf`) or list (`.conflist`), kept as
 * its original text so it reaches the plugins byte for byte.
 */

import { describe, isObject } from "../util/errors.ts";
import { CniErrorCode, ConfigError } from "./errors.ts";
import { JsonSyntaxError, parseJsonc, rawArrayElements, setTopLevelKeys } from "./raw_json.ts";

/** One plugin of a network configuration. */
export interface PluginConfig {
  /** The plugin binary name (`type`). */
  type: string;
  /** Capabilities the plugin declares `true`. */
  capabilities: Record<string, boolean>;
  /** The plugin's configuration text exactly as given. */
  raw: string;
}

/** A parsed network configuration (conf or conflist). */
export interface NetworkConfig {
  /** The network `name` ("" when missing: only allowed where a caller injects it). */
  name: string;
  /** The configuration's `cniVersion` ("" when missing). */
  cniVersion: string;
  /** True for a conflist (`plugins` array and no top-level `type`). */
  isList: boolean;
  /** `disableCheck` of a conflist. */
  disableCheck: boolean;
  /** `disableGC` of a conflist. */
  disableGC: boolean;
  /** The plugins; a single conf has one, whose `raw` is the whole text. */
  plugins: PluginConfig[];
  /** The whole configuration text as given. */
  raw: string;
}

function fieldOf(where: string, field: string): string {
  return where ? `${where}.${field}` : field;
}

/**
 * Throws ConfigError (code 7) unless `type` is a plugin name: not empty, not `.`/`..`, no `/`
 * or `\` (a plugin type is never a path).
 */
export function validatePluginType(type: string, field: string, where = ""): void {
  if (type === "" || type === "." || type === ".." || /[/\\]/.test(type)) {
    const prefix = where ? `Cannot use network configuration ${where}: ` : "";
    throw new ConfigError(
      field,
      `${prefix}plugin type ${JSON.stringify(type)} is not a plugin name`,
      {
        details: "A plugin type names a binary in the CNI bin directories; it cannot be a path",
      },
    );
  }
}

function parseCapabilities(value: unknown, field: string, where: string): Record<string, boolean> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) {
    throw new ConfigError(
      field,
      `Cannot use network configuration ${where}: "capabilities" must be an object, got ${
        describe(value)
      }`,
    );
  }
  const out: Record<string, boolean> = {};
  for (const [key, v] of Object.entries(value)) if (v === true) out[key] = true;
  return out;
}

function parseFlag(obj: Record<string, unknown>, key: string, where: string): boolean {
  const value = obj[key];
  if (value === undefined || value === null) return false;
  if (typeof value === "boolean") return value;
  if (typeof value === "string") {
    const lower = value.toLowerCase();
    if (lower === "true") return true;
    if (lower === "false") return false;
  }
  throw new ConfigError(
    fieldOf(where, key),
    `Cannot use network configuration ${where}: "${key}" must be true or false, got ${
      describe(value)
    }`,
  );
}

function optionalString(obj: Record<string, unknown>, key: string, where: string): string {
  const value = obj[key];
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") {
    throw new ConfigError(
      fieldOf(where, key),
      `Cannot use network configuration ${where}: "${key}" must be a string, got ${
        describe(value)
      }`,
    );
  }
  return value;
}

function parseObject(raw: string, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = parseJsonc(raw);
  } catch (err) {
    const reason = err instanceof JsonSyntaxError ? err.detail : String(err);
    throw new ConfigError(
      where,
      `Cannot use network configuration ${where}: invalid JSON: ${reason}`,
      {
        code: CniErrorCode.DecodeFailure,
        cause: err,
      },
    );
  }
  if (!isObject(value)) {
    throw new ConfigError(
      where,
      `Cannot use network configuration ${where}: expected a JSON object, got ${describe(value)}`,
      { code: CniErrorCode.DecodeFailure },
    );
  }
  return value;
}

/**
 * Parses a conf or conflist text. A config with `type` is a single conf (even if it has
 * `plugins`); otherwise it must have a non-empty `plugins` array whose entries all have a
 * string `type`. Throws ConfigError naming `where` (e.g. `delegates[1]`) and the field.
 *
 * JSONC (comments, trailing commas) is accepted for reading; `raw` stays the text as given.
 * A `type` of `""` counts as absent (Multus then reads the config as a list).
 */
export function parseNetworkConfig(raw: string, where: string): NetworkConfig {
  const obj = parseObject(raw, where);
  const name = optionalString(obj, "name", where);
  const cniVersion = optionalString(obj, "cniVersion", where);
  const type = obj.type;
  if (type !== undefined && type !== null && typeof type !== "string") {
    throw new ConfigError(
      fieldOf(where, "type"),
      `Cannot use network configuration ${where}: "type" must be a string, got ${describe(type)}`,
    );
  }
  if (typeof type === "string" && type !== "") {
    validatePluginType(type, fieldOf(where, "type"), where);
    const capabilities = parseCapabilities(obj.capabilities, fieldOf(where, "capabilities"), where);
    return {
      name,
      cniVersion,
      isList: false,
      disableCheck: false,
      disableGC: false,
      plugins: [{ type, capabilities, raw }],
      raw,
    };
  }

  const plugins = obj.plugins;
  const pluginsField = fieldOf(where, "plugins");
  if (plugins === undefined || plugins === null) {
    throw new ConfigError(
      pluginsField,
      `Cannot use network configuration ${where}: it has neither "type" nor "plugins"`,
      { details: 'A single plugin configuration needs "type"; a list needs "plugins"' },
    );
  }
  if (!Array.isArray(plugins)) {
    throw new ConfigError(
      pluginsField,
      `Cannot use network configuration ${where}: "plugins" must be an array, got ${
        describe(plugins)
      }`,
    );
  }
  if (plugins.length === 0) {
    throw new ConfigError(
      pluginsField,
      `Cannot use network configuration ${where}: "plugins" is empty`,
    );
  }
  const texts = rawArrayElements(raw, ["plugins"]);
  if (texts === undefined || texts.length !== plugins.length) {
    // Cannot happen: the scanner and JSON.parse read the same text.
    throw new ConfigError(pluginsField, `Cannot use network configuration ${where}: bad "plugins"`);
  }
  const parsed = plugins.map((plugin: unknown, i: number): PluginConfig => {
    const field = `${pluginsField}[${i}]`;
    if (!isObject(plugin)) {
      throw new ConfigError(
        field,
        `Cannot use network configuration ${where}: plugin ${i} is not an object`,
      );
    }
    const pluginType = plugin.type;
    if (typeof pluginType !== "string" || pluginType === "") {
      throw new ConfigError(
        `${field}.type`,
        `Cannot use network configuration ${where}: plugin ${i} has no "type"`,
      );
    }
    validatePluginType(pluginType, `${field}.type`, where);
    return {
      type: pluginType,
      capabilities: parseCapabilities(plugin.capabilities, `${field}.capabilities`, where),
      raw: texts[i],
    };
  });
  return {
    name,
    cniVersion,
    isList: true,
    disableCheck: parseFlag(obj, "disableCheck", where),
    disableGC: parseFlag(obj, "disableGC", where),
    plugins: parsed,
    raw,
  };
}

/**
 * Returns the configuration text with top-level keys set (e.g. `name` injected into a NAD
 * config that lacks it), keeping everything else byte for byte, and parses it again.
 * A value of `undefined` removes the key.
 */
export function withTopLevelKeys(
  config: NetworkConfig,
  values: Record<string, unknown>,
  where: string,
): NetworkConfig {
  return parseNetworkConfig(setTopLevelKeys(config.raw, values), where);
}
