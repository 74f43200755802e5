/**
 * @module
 * CNI configuration files on the node: a network found by its `name` in `confDir` (`.conf`,
 * `.json`, `.conflist` in file-name order, as Multus looks), and `clusterNetwork` given as a file or directory path.
 */

import { extname, join } from "../../util/path.ts";
import { ConfigError } from "../../cni/errors.ts";
import { type NetworkConfig, parseNetworkConfig } from "../../cni/network_config.ts";
import { parseConfigText } from "../../cni/request.ts";
import type { Logger } from "../../log/logger.ts";
import { errorMessage } from "../../util/errors.ts";

const CONFIG_EXTENSIONS = new Set([".conf", ".json", ".conflist"]);

/** Reads a config file as JSON text (comments of hand-written files stripped). */
async function readConfigFile(path: string): Promise<NetworkConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(
      path,
      `Cannot read the network configuration ${path}: ${errorMessage(err)}`,
    );
  }
  try {
    JSON.parse(text);
  } catch {
    text = JSON.stringify(parseConfigText(text));
  }
  return parseNetworkConfig(text, path);
}

/** Config files of a directory (`.conf`, `.json`, `.conflist`) in file-name order. */
export async function configFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory || !CONFIG_EXTENSIONS.has(extname(entry.name))) continue;
      names.push(entry.name);
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw new ConfigError(dir, `Cannot list ${dir}: ${errorMessage(err)}`);
  }
  return names.sort().map((n) => join(dir, n));
}

/**
 * The configuration in `confDir` whose JSON `name` is `name`, or undefined. Files that do
 * not parse are skipped with an error on `log`, the request's logger (Multus aborts the whole
 * lookup).
 */
export async function findConfigByName(
  confDir: string,
  name: string,
  log: Logger,
): Promise<NetworkConfig | undefined> {
  for (const path of await configFiles(confDir)) {
    let config: NetworkConfig;
    try {
      config = await readConfigFile(path);
    } catch (err) {
      log.error(`skipping ${path} while looking for network "${name}": ${errorMessage(err)}`);
      continue;
    }
    if (config.name === name) return config;
  }
  return undefined;
}

/**
 * Loads a network named by path (`clusterNetwork`, `defaultNetworks`): a config file, or the
 * first config of a directory. `key` names the setting in messages.
 */
export async function loadConfigFromPath(
  path: string,
  key = "clusterNetwork",
): Promise<NetworkConfig> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    throw new ConfigError(key, `Cannot use ${key} ${path}: ${errorMessage(err)}`, {
      details: `Point ${key} at the network's config file, or the directory holding it`,
    });
  }
  if (!info.isDirectory) return await readConfigFile(path);
  const files = await configFiles(path);
  if (files.length === 0) {
    throw new ConfigError(
      key,
      `Cannot use ${key} ${path}: it holds no .conf, .json or .conflist file`,
    );
  }
  return await readConfigFile(files[0]);
}
