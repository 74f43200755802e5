/**
 * @module
 * Installer step: write `00-multus.conf(list)` into the CNI config directory, rendered in
 * front of the primary config (`--multus-conf-file auto`) or copied from the given file, and
 * remove it when the primary config goes away. In daemon mode that file is the shim config,
 * and the thin config it falls back to is written first, as `multus.d/thin.conf`: a shim
 * config is never visible without its fallback.
 */

import { basename, join } from "../util/path.ts";
import { errorMessage, isObject } from "../util/errors.ts";
import { installText } from "./_binary.ts";
import { lineDiff } from "./_diff.ts";
import { type RenderedConf, renderMultusConf } from "./_multus_conf.ts";
import { renderShimConf, renderThinConf, THIN_CONF_NAME } from "./_shim_config.ts";
import { isMultusConfig, OUR_CONFIG_NAMES } from "./_primary.ts";
import { type InstallRun, readText, type SyncState } from "./_run.ts";
import { usePrimaryConfig } from "./_use_primary.ts";

const CONFIG_MODE = 0o644;

/** One pass over the Multus config; never throws, a problem is recorded and returned. */
export async function writeMultusConfig(run: InstallRun): Promise<SyncState> {
  try {
    return run.flags.multusConfFile === "auto"
      ? await writeAutoConfig(run)
      : await writeCopiedConfig(run);
  } catch (err) {
    return problem(run, "error", `Cannot update the Multus config: ${errorMessage(err)}`);
  }
}

async function writeAutoConfig(run: InstallRun): Promise<SyncState> {
  const flags = run.flags;
  const search = await usePrimaryConfig(run);
  if (search.kind === "invalid") {
    return problem(
      run,
      "error",
      `Cannot use ${search.path} as the primary CNI config: ${search.reason}`,
    );
  }
  if (search.kind === "missing") {
    const previous = run.primaryPath;
    run.primaryPath = undefined;
    const removed = await removeOurConfigs(run);
    if (removed.length > 0) {
      run.say(
        `${previous ? `The primary CNI config ${previous} is gone` : "No primary CNI config"}: ` +
          `removed ${removed.join(", ")} so that no new pod is started with a stale network`,
      );
    }
    return problem(run, "waiting", `No primary CNI config yet: ${search.reason}`);
  }

  const thin = renderMultusConf(search.conf, {
    primaryHostPath: run.hostPath(search.path),
    kubeconfigHostPath: flags.multusKubeconfigFileHost,
    cniVersion: flags.cniVersion,
    forceCniVersion: flags.forceCniVersion,
    overrideNetworkName: flags.overrideNetworkName,
    namespaceIsolation: flags.namespaceIsolation,
    globalNamespaces: flags.globalNamespaces,
    logToStderr: flags.multusLogToStderr,
    logLevel: flags.multusLogLevel,
    logFile: flags.multusLogFile,
    binDir: flags.additionalBinDir,
    confDirHostPath: run.hostPath(run.multusCniConfDir),
    readinessIndicatorFile: flags.readinessIndicatorFile,
    embedPrimary: flags.renameConfFile,
  });
  const rendered = flags.mode === "daemon" ? await writeThinConf(run, thin) : thin;
  const target = join(run.confDir, rendered.fileName);
  await writeConfig(run, target, rendered.text);
  // The other form would shadow ours ("00-multus.conf" sorts before "00-multus.conflist")
  // or confuse readers: remove it when it is a Multus config.
  for (const name of OUR_CONFIG_NAMES) {
    const other = join(run.confDir, name);
    if (other === target) continue;
    const text = await readText(other);
    if (text === undefined || !isMultusConfig(parseObject(text) ?? {})) continue;
    await Deno.remove(other);
    run.owned.delete(other);
    run.say(`Removed ${other}: superseded by ${target} (cniVersion ${rendered.cniVersion})`);
  }
  run.lastProblem = "";
  run.clearTopic("config");
  return "ok";
}

/** Writes `multus.d/thin.conf`; returns the shim config to write in front of the primary. */
async function writeThinConf(run: InstallRun, thin: RenderedConf): Promise<RenderedConf> {
  const path = join(run.confDir, "multus.d", THIN_CONF_NAME);
  await writeConfig(run, path, renderThinConf(thin));
  return renderShimConf(thin, {
    socketDir: run.flags.daemonSocketDir,
    thinConfigHostPath: run.hostPath(path),
  });
}

async function writeCopiedConfig(run: InstallRun): Promise<SyncState> {
  const source = run.flags.multusConfFile;
  const text = await readText(source);
  if (text === undefined) {
    return problem(run, "error", `Cannot read --multus-conf-file ${source}`);
  }
  if (parseObject(text) === undefined) {
    return problem(run, "error", `--multus-conf-file ${source} is not a JSON object`);
  }
  const target = join(run.confDir, basename(source));
  await writeConfig(run, target, text);
  const first = (await listConfigNames(run.confDir))[0];
  if (first !== undefined && first !== basename(source)) {
    run.sayOnce(
      "order",
      `Warning: ${first} sorts before ${basename(source)} in ${run.confDir}: ` +
        `the runtime uses ${first}, not the Multus config`,
    );
  }
  run.lastProblem = "";
  run.clearTopic("config");
  return "ok";
}

async function writeConfig(run: InstallRun, target: string, text: string): Promise<void> {
  const before = await readText(target);
  const result = await installText(target, text, CONFIG_MODE);
  run.owned.set(target, text);
  if (!result.changed) {
    if (run.said.has(`written:${target}`)) return;
    run.said.add(`written:${target}`);
    run.say(`${target} is up to date`);
    return;
  }
  run.said.add(`written:${target}`);
  const diff = lineDiff(before === text ? undefined : before, text);
  run.say(`${before === undefined ? "Wrote" : "Updated"} ${target}:`, diff);
}

/** Removes 00-multus.conf(list) when we wrote it or it is our kind of output. */
async function removeOurConfigs(run: InstallRun): Promise<string[]> {
  const removed: string[] = [];
  for (const name of OUR_CONFIG_NAMES) {
    const path = join(run.confDir, name);
    const text = await readText(path);
    if (text === undefined) continue;
    if (run.owned.get(path) !== text && !isOurOutput(run, text)) continue;
    await Deno.remove(path);
    run.owned.delete(path);
    removed.push(path);
  }
  return removed;
}

/** Our output: a Multus config whose clusterNetwork is a file of the watched directory. */
function isOurOutput(run: InstallRun, text: string): boolean {
  const conf = parseObject(text);
  if (!conf) return false;
  const plugin = Array.isArray(conf.plugins) ? conf.plugins[0] : conf;
  if (!isObject(plugin) || (plugin.type !== "multus" && plugin.type !== "multus-shim")) {
    return false;
  }
  const dir = run.hostPath(run.autoconfDir).replace(/\/+$/, "");
  return typeof plugin.clusterNetwork === "string" &&
    plugin.clusterNetwork.startsWith(`${dir}/`);
}

/**
 * Records why the config is not written and says it once (a one-shot run says it when it
 * fails). An error is said only when the next pass sees it again: a primary config caught
 * half-written by a file event is not worth an alarming line.
 */
function problem(run: InstallRun, state: SyncState, message: string): SyncState {
  const repeated = run.lastProblem === message;
  run.lastProblem = message;
  if (run.flags.skipConfigWatch) return state;
  if (state === "waiting") run.sayOnce("config", `${message}; waiting for it`);
  else if (repeated) run.sayOnce("config", message);
  return state;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

async function listConfigNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isDirectory && /\.(conf|conflist|json)$/.test(entry.name)) names.push(entry.name);
  }
  return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
