/**
 * @module
 * Running a whole network configuration (conf or conflist) for one attachment, as libcni's
 * AddNetworkList/DelNetworkList/CheckNetworkList/GetStatusNetworkList/GCNetworkList do.
 */

import { CniError, CniErrorCode, DelegateError, StorageError } from "./errors.ts";
import { type Exec, type PluginEnv, processExec } from "./exec.ts";
import type { NetworkConfig, PluginConfig } from "./network_config.ts";
import { RawJson, setTopLevelKeys, stripJsonc } from "./raw_json.ts";
import { validateContainerId, validateIfName, validateNetworkName } from "./request.ts";
import type { CniCommand } from "./request.ts";
import { type CniResult, convertResult, parseResult, resultToJson } from "./result.ts";
import {
  listCachedAttachments,
  readCachedResult,
  removeCachedResult,
  writeCachedResult,
} from "./result_cache.ts";
import { versionAtLeast } from "./version.ts";
import type { Logger } from "../log/logger.ts";
import { errorMessage } from "../util/errors.ts";

/** The per-attachment runtime parameters. */
export interface RuntimeConf {
  containerId: string;
  /** Path of the network namespace ("" allowed for DEL). */
  netns: string;
  ifName: string;
  /** `CNI_ARGS` pairs in order. */
  args: [string, string][];
  /** Capability arguments; a key reaches a plugin only if it declares that capability. */
  capabilityArgs: Record<string, unknown>;
  /** Plugin search directories in order (`CNI_PATH`, then binDir). */
  path: string[];
  /** Directory holding `results/` (Multus's `cniDir`). */
  cacheDir: string;
  /** Per-plugin timeout in milliseconds. */
  timeoutMs: number;
  /** How plugins are found and run (default: as child processes). */
  exec?: Exec;
  /** The request's logger: plugin runs and result-cache problems are logged with its fields. */
  log: Logger;
}

/** An attachment the runtime still considers valid (GC). */
export interface ValidAttachment {
  containerID: string;
  ifname: string;
}

/**
 * ADD: runs each plugin in order with `name`/`cniVersion` injected, `runtimeConfig` for
 * declared capabilities, and the previous plugin's result as `prevResult`; validates the
 * container id, network name and ifname first; caches the final result. Returns the final
 * result in the version the last plugin returned. Does not roll back on failure (the caller
 * runs DEL).
 *
 * When the result cannot be cached the attachment is deleted again (DEL of every plugin)
 * and a StorageError is thrown, so a failed ADD never leaves an uncached attachment behind.
 */
export async function addNetwork(net: NetworkConfig, rt: RuntimeConf): Promise<CniResult> {
  validateContainerId(rt.containerId);
  validateNetworkName(net.name);
  validateIfName(rt.ifName);

  let prev: CniResult | undefined;
  for (const plugin of net.plugins) {
    try {
      const output = await runPlugin(net, plugin, { command: "ADD", rt, prevResult: prev });
      if (output === undefined) {
        throw new DelegateError(plugin.type, "ADD", `plugin "${plugin.type}" printed no result`, {
          code: CniErrorCode.DecodeFailure,
        });
      }
      prev = parseResult(output, net.cniVersion);
    } catch (err) {
      throw wrapPluginError(err, { plugin, net, command: "ADD" });
    }
  }
  if (prev === undefined) {
    throw new CniError(CniErrorCode.InvalidNetworkConfig, `network "${net.name}" has no plugins`);
  }

  try {
    await writeCachedResult(rt.cacheDir, {
      containerId: rt.containerId,
      ifName: rt.ifName,
      networkName: net.name,
      config: net.raw,
      netns: rt.netns,
      cniArgs: rt.args,
      capabilityArgs: rt.capabilityArgs,
      result: JSON.parse(resultToJson(prev)),
    });
  } catch (err) {
    logOf(rt).error(
      `cannot cache the result of network "${net.name}", deleting the attachment: ${
        errorMessage(err)
      }`,
    );
    try {
      await runDel(net, rt, versionAtLeast(net.cniVersion, "0.4.0") ? prev : undefined);
    } catch (delErr) {
      logOf(rt).error(
        `cleanup DEL of network "${net.name}" after a cache failure failed: ${
          errorMessage(delErr)
        }`,
      );
    }
    if (err instanceof StorageError) throw err;
    throw new StorageError(rt.cacheDir, `cannot cache the result of network "${net.name}"`, {
      cause: err,
    });
  }
  return prev;
}

/**
 * DEL: runs the plugins in reverse order with the cached result as `prevResult` (0.4.0+),
 * continues past a failing plugin and throws one DelegateError naming every failure; removes
 * the cache entry when all plugins succeeded.
 *
 * A netns path that no longer exists is passed as an empty `CNI_NETNS` (the namespace is
 * gone; plugins then release what they can).
 */
export async function delNetwork(net: NetworkConfig, rt: RuntimeConf): Promise<void> {
  let prev: CniResult | undefined;
  if (versionAtLeast(net.cniVersion, "0.4.0")) {
    prev = await cachedPrevResult(net, rt, { strict: false });
  }
  await runDel(net, rt, prev);
}

/** CHECK (0.4.0+; error below), honouring `disableCheck`, with the cached result. */
export async function checkNetwork(net: NetworkConfig, rt: RuntimeConf): Promise<void> {
  if (!versionAtLeast(net.cniVersion, "0.4.0")) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `configuration version "${net.cniVersion}" does not support the CHECK command`,
    );
  }
  if (net.disableCheck) return;
  const prev = await cachedPrevResult(net, rt, { strict: true });
  for (const plugin of net.plugins) {
    try {
      await runPlugin(net, plugin, { command: "CHECK", rt, prevResult: prev });
    } catch (err) {
      throw wrapPluginError(err, { plugin, net, command: "CHECK" });
    }
  }
}

/** STATUS (1.1.0+; success without exec below), stops at the first error, unwrapped. */
export async function statusNetwork(
  net: NetworkConfig,
  rt: Pick<RuntimeConf, "path" | "timeoutMs" | "exec" | "log">,
): Promise<void> {
  if (!versionAtLeast(net.cniVersion, "1.1.0")) return;
  for (const plugin of net.plugins) {
    const path = await execOf(rt).findPlugin(plugin.type, rt.path);
    const stdin = setTopLevelKeys(stripJsonc(plugin.raw), {
      name: net.name,
      cniVersion: net.cniVersion,
    });
    logOf(rt).debug(`running plugin "${plugin.type}" (STATUS) of network "${net.name}"`);
    await execOf(rt).execPlugin(path, stdin, emptyEnv("STATUS", rt.path), {
      timeoutMs: rt.timeoutMs,
      log: rt.log,
      parseOutput: false,
    });
  }
}

/**
 * GC: unless `disableGC`, DELs cached attachments of this network not in `valid`, then (1.1.0+)
 * sends GC to every plugin with both `cni.dev/valid-attachments` and `cni.dev/attachments`;
 * continues on errors and throws them combined.
 */
export async function gcNetwork(
  net: NetworkConfig,
  rt: Pick<RuntimeConf, "path" | "cacheDir" | "timeoutMs" | "exec" | "log">,
  valid: ValidAttachment[],
): Promise<void> {
  if (net.disableGC) return;
  const errors: CniError[] = [];
  const keep = new Set(valid.map((a) => `${a.containerID}\0${a.ifname}`));

  let cached: Awaited<ReturnType<typeof listCachedAttachments>> = [];
  try {
    cached = await listCachedAttachments(rt.cacheDir);
  } catch (err) {
    errors.push(asCniError(err));
  }
  for (const attachment of cached) {
    if (attachment.networkName !== net.name) continue;
    if (keep.has(`${attachment.containerId}\0${attachment.ifName}`)) continue;
    logOf(rt).verbose(
      `GC: deleting stale attachment ${attachment.containerId} ${attachment.ifName} ` +
        `of network "${net.name}"`,
    );
    try {
      await delNetwork(net, {
        containerId: attachment.containerId,
        netns: attachment.netns ?? "",
        ifName: attachment.ifName,
        args: attachment.cniArgs ?? [],
        capabilityArgs: attachment.capabilityArgs ?? {},
        path: rt.path,
        cacheDir: rt.cacheDir,
        timeoutMs: rt.timeoutMs,
        exec: rt.exec,
        log: rt.log,
      });
    } catch (err) {
      const cause = asCniError(err);
      errors.push(
        new DelegateError(
          err instanceof DelegateError ? err.pluginType : "",
          "DEL",
          `failed to delete stale attachment ${attachment.containerId} ${attachment.ifName}: ${cause.message}`,
          { code: cause.code, details: cause.details, cause: err },
        ),
      );
    }
  }

  if (versionAtLeast(net.cniVersion, "1.1.0")) {
    const attachments = new RawJson(
      JSON.stringify(valid.map((a) => ({ containerID: a.containerID, ifname: a.ifname }))),
    );
    for (const plugin of net.plugins) {
      try {
        const path = await execOf(rt).findPlugin(plugin.type, rt.path);
        const stdin = setTopLevelKeys(stripJsonc(plugin.raw), {
          name: net.name,
          cniVersion: net.cniVersion,
          "cni.dev/valid-attachments": attachments,
          "cni.dev/attachments": attachments,
        });
        logOf(rt).debug(`running plugin "${plugin.type}" (GC) of network "${net.name}"`);
        await execOf(rt).execPlugin(path, stdin, emptyEnv("GC", rt.path), {
          timeoutMs: rt.timeoutMs,
          log: rt.log,
          parseOutput: false,
        });
      } catch (err) {
        const cause = asCniError(err);
        errors.push(
          new DelegateError(
            plugin.type,
            "GC",
            `failed to GC plugin ${plugin.type}: ${cause.message}`,
            {
              code: cause.code,
              details: cause.details,
              cause: err,
            },
          ),
        );
      }
    }
  }
  if (errors.length > 0) throw combineErrors(errors, "GC");
}

/** DEL of every plugin in reverse order with `prev` as `prevResult`, past failures. */
async function runDel(net: NetworkConfig, rt: RuntimeConf, prev: CniResult | undefined) {
  let netns = rt.netns;
  if (netns !== "" && !(await pathExists(netns))) {
    logOf(rt).verbose(
      `netns "${netns}" of container ${rt.containerId} no longer exists: ` +
        `running DEL of network "${net.name}" with an empty CNI_NETNS`,
    );
    netns = "";
  }
  const env = pluginEnv("DEL", { ...rt, netns });
  const errors: CniError[] = [];
  for (const plugin of [...net.plugins].reverse()) {
    try {
      await runPlugin(net, plugin, { command: "DEL", rt, prevResult: prev, env });
    } catch (err) {
      const wrapped = wrapPluginError(err, { plugin, net, command: "DEL" });
      logOf(rt).verbose(wrapped.message);
      errors.push(wrapped);
    }
  }
  if (errors.length > 0) throw combineErrors(errors, "DEL");
  await removeCacheEntry(net, rt);
}

/** The cached ADD result converted to the configuration's version, for DEL and CHECK. */
async function cachedPrevResult(
  net: NetworkConfig,
  rt: RuntimeConf,
  options: { strict: boolean },
): Promise<CniResult | undefined> {
  const key = { networkName: net.name, containerId: rt.containerId, ifName: rt.ifName };
  let entry;
  try {
    entry = await readCachedResult(rt.cacheDir, key, rt.log);
  } catch (err) {
    // An invalid key cannot name a cache file: CHECK fails, DEL goes on without prevResult.
    if (options.strict) throw err;
    logOf(rt).verbose(`no cached result for network "${net.name}": ${errorMessage(err)}`);
    return undefined;
  }
  if (entry?.result === undefined) return undefined;
  try {
    return convertResult(parseResult(entry.result, net.cniVersion), net.cniVersion);
  } catch (err) {
    const message =
      `cannot use the cached result of network "${net.name}" for container ${rt.containerId} ` +
      `interface ${rt.ifName}: ${errorMessage(err)}`;
    if (options.strict) {
      throw new CniError(asCniError(err).code, message, { cause: err });
    }
    logOf(rt).verbose(`${message}; continuing without prevResult`);
    return undefined;
  }
}

async function removeCacheEntry(net: NetworkConfig, rt: RuntimeConf): Promise<void> {
  try {
    await removeCachedResult(rt.cacheDir, {
      networkName: net.name,
      containerId: rt.containerId,
      ifName: rt.ifName,
    });
  } catch (err) {
    logOf(rt).verbose(
      `cannot remove the cached result of network "${net.name}": ${errorMessage(err)}`,
    );
  }
}

/**
 * A plugin's stdin: its configuration text with `name` and `cniVersion` of the network,
 * `runtimeConfig` for declared capabilities (only when one matched) and `prevResult` set;
 * every other byte as given (JSONC comments and trailing commas blanked out, since plugins
 * read strict JSON).
 */
/**
 * Runs one plugin for an attachment command with the network's stdin; returns its parsed
 * output for ADD (other commands' output is not read, as libcni).
 */
async function runPlugin(
  net: NetworkConfig,
  plugin: PluginConfig,
  call: {
    command: "ADD" | "CHECK" | "DEL";
    rt: RuntimeConf;
    prevResult?: CniResult;
    env?: PluginEnv;
  },
): Promise<unknown> {
  const path = await execOf(call.rt).findPlugin(plugin.type, call.rt.path);
  const stdin = pluginStdin(net, plugin, {
    capabilityArgs: call.rt.capabilityArgs,
    prevResult: call.prevResult,
  });
  logOf(call.rt).debug(
    `running plugin "${plugin.type}" (${call.command}) of network "${net.name}"`,
  );
  return await execOf(call.rt).execPlugin(
    path,
    stdin,
    call.env ?? pluginEnv(call.command, call.rt),
    {
      timeoutMs: call.rt.timeoutMs,
      parseOutput: call.command === "ADD",
      log: call.rt.log,
    },
  );
}

function pluginStdin(
  net: NetworkConfig,
  plugin: PluginConfig,
  options: { capabilityArgs: Record<string, unknown>; prevResult?: CniResult },
): string {
  const values: Record<string, unknown> = { name: net.name, cniVersion: net.cniVersion };
  const runtimeConfig = matchedCapabilities(plugin, options.capabilityArgs);
  if (runtimeConfig) values.runtimeConfig = runtimeConfig;
  if (options.prevResult) values.prevResult = new RawJson(resultToJson(options.prevResult));
  return setTopLevelKeys(stripJsonc(plugin.raw), values);
}

/** The capability arguments whose key the plugin declares `true`; undefined when none. */
function matchedCapabilities(
  plugin: PluginConfig,
  capabilityArgs: Record<string, unknown>,
): Record<string, unknown> | undefined {
  let out: Record<string, unknown> | undefined;
  for (const [key, declared] of Object.entries(plugin.capabilities ?? {})) {
    if (declared !== true || !Object.hasOwn(capabilityArgs, key)) continue;
    const value = capabilityArgs[key];
    if (isEmpty(value)) continue;
    (out ??= {})[key] = value;
  }
  return out;
}

function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === "object") return Object.keys(value).length === 0;
  return false;
}

function pluginEnv(
  command: CniCommand,
  rt: Pick<RuntimeConf, "containerId" | "netns" | "ifName" | "args" | "path">,
): PluginEnv {
  return {
    command,
    containerId: rt.containerId,
    netns: rt.netns,
    ifName: rt.ifName,
    args: rt.args,
    path: rt.path,
  };
}

function emptyEnv(command: CniCommand, path: string[]): PluginEnv {
  return { command, containerId: "", netns: "", ifName: "", args: [], path };
}

const COMMAND_WORD: Record<string, string> = {
  ADD: "add",
  DEL: "delete",
  CHECK: "check",
};

/** libcni's wrapping: `plugin type="<t>" name="<net>" failed (add): <err>`, code kept. */
function wrapPluginError(
  err: unknown,
  context: { plugin: PluginConfig; net: NetworkConfig; command: CniCommand },
): DelegateError {
  const cause = asCniError(err);
  const { plugin, net, command } = context;
  return new DelegateError(
    plugin.type,
    command,
    `plugin type="${plugin.type}" name="${net.name}" failed (${
      COMMAND_WORD[command] ?? command.toLowerCase()
    }): ${cause.message}`,
    { code: cause.code, details: cause.details, cause: err },
  );
}

/** One error for several: the first one alone, else `errors: <e1> / <e2>` (first code). */
function combineErrors(errors: CniError[], command: string): CniError {
  if (errors.length === 1) return errors[0];
  const first = errors[0];
  return new DelegateError(
    first instanceof DelegateError ? first.pluginType : "",
    command,
    `errors: ${errors.map((e) => e.message).join(" / ")}`,
    { code: first.code, cause: errors },
  );
}

function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  return new CniError(CniErrorCode.Internal, errorMessage(err), {
    cause: err,
  });
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    return !(err instanceof Deno.errors.NotFound);
  }
}

function execOf(rt: { exec?: Exec }): Exec {
  return rt.exec ?? processExec;
}

function logOf(rt: { log: Logger }): Logger {
  return rt.log;
}
