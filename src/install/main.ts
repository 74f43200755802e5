/**
 * @module
 * `multus install`: the node installer run by the DaemonSet, a drop-in for Multus's
 * `thin_entrypoint` (same flags). It installs the plugin binary, writes `00-multus.conf(list)`
 * in front of the primary network config and the plugin's kubeconfig, and then keeps both up
 * to date until it is stopped. Every write is atomic and skipped when nothing changed. Human
 * output goes to stderr; `--help` goes to stdout.
 */

import { basename, dirname, fromFileUrl, join, resolve } from "../util/path.ts";
import {
  FlagError,
  type InstallFlags,
  installHelp,
  parseInstallFlags,
  toHostPath,
} from "./flags.ts";
import { installFile, installText, launcherScript } from "./_binary.ts";
import { lineDiff } from "./_diff.ts";
import { type RenderedKubeconfig, renderKubeconfig } from "./_kubeconfig.ts";
import { renderMultusConf } from "./_multus_conf.ts";
import {
  findPrimaryConfig,
  isMultusConfig,
  isObject,
  OUR_CONFIG_NAMES,
  RENAMED_SUFFIX,
} from "./_primary.ts";
import { errorMessage } from "../util/errors.ts";

/** Exit status for a command line that cannot be used. */
export const EXIT_USAGE = 2;
/** Exit status for a failure (missing directory, unreadable service account, …). */
export const EXIT_FAILURE = 1;

const CONFIG_MODE = 0o644;
const KUBECONFIG_MODE = 0o600;
const DIR_MODE = 0o755;

/**
 * Runs `multus install` with the arguments that follow the subcommand.
 *
 * @param args The flags (see `multus install --help`).
 * @returns The exit status: 0 after a clean stop (signal) or a one-shot run, 1 on failure,
 * 2 for a bad command line.
 */
export async function runInstall(args: string[]): Promise<number> {
  let flags: InstallFlags;
  try {
    flags = parseInstallFlags(args);
  } catch (err) {
    if (!(err instanceof FlagError) && !(err instanceof TypeError)) throw err;
    writeErr(`multus install: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (flags.help) {
    Deno.stdout.writeSync(new TextEncoder().encode(installHelp()));
    return 0;
  }
  return await new Installer(flags, Deno.env.toObject()).run();
}

/** Raised for a problem that stops the installer; the message names the path and reason. */
class InstallError extends Error {
  override name = "InstallError";
}

type SyncState = "ok" | "waiting" | "error";

class Installer {
  #flags: InstallFlags;
  #env: Record<string, string>;
  #binDir: string;
  #confDir: string;
  #autoconfDir: string;
  #multusCniConfDir: string;
  #kubeconfigPath: string;
  /** Files we wrote (or found exactly as we would write them), with that content. */
  #owned = new Map<string, string>();
  /** Directories we created, in creation order. */
  #createdDirs: string[] = [];
  /** Primary configs renamed by --rename-conf-file: original path → renamed path. */
  #renamed = new Map<string, string>();
  #primaryPath: string | undefined;
  #lastKubeconfig: RenderedKubeconfig | undefined;
  #lastProblem = "";
  /** Targets whose "up to date" line was said. */
  #said = new Set<string>();
  /** Last message said per topic, so a lasting problem is said once. */
  #onceByTopic = new Map<string, string>();
  #stopping = false;
  #wake: (() => void) | undefined;
  #pokeTimer: ReturnType<typeof setTimeout> | undefined;
  #watcher: Deno.FsWatcher | undefined;

  constructor(flags: InstallFlags, env: Record<string, string>) {
    this.#flags = flags;
    this.#env = env;
    this.#binDir = resolve(flags.cniBinDir);
    this.#confDir = resolve(flags.cniConfDir);
    this.#autoconfDir = resolve(flags.multusAutoconfigDir);
    this.#multusCniConfDir = resolve(flags.multusCniConfDir);
    this.#kubeconfigPath = join(this.#confDir, "multus.d", "multus.kubeconfig");
  }

  async run(): Promise<number> {
    const onSignal = (signal: Deno.Signal) => () => this.#onSignal(signal);
    const listeners: [Deno.Signal, () => void][] = [
      ["SIGTERM", onSignal("SIGTERM")],
      ["SIGINT", onSignal("SIGINT")],
    ];
    for (const [signal, fn] of listeners) Deno.addSignalListener(signal, fn);
    try {
      return await this.#run();
    } finally {
      for (const [signal, fn] of listeners) Deno.removeSignalListener(signal, fn);
    }
  }

  /**
   * Says whether the kubelet's PodResources socket exists (the DaemonSet mounts its folder for
   * this): without it, networks whose NAD has a `resourceName` (SR-IOV, DPDK) cannot get a
   * device, unless the device checkpoint file is there.
   */
  async #reportPodResources(): Promise<void> {
    const socket = `${this.#flags.hostPrefix}/var/lib/kubelet/pod-resources/kubelet.sock`;
    try {
      await Deno.stat(socket);
      this.#say(`kubelet PodResources socket found (${socket}): device networks can be attached`);
    } catch {
      this.#say(
        `kubelet PodResources socket not found at ${socket}: networks with a resourceName ` +
          "(SR-IOV, DPDK) will use the kubelet's device checkpoint file or fail ADD",
      );
    }
  }

  async #run(): Promise<number> {
    const flags = this.#flags;
    try {
      await this.#checkInputs();
      if (!flags.skipMultusBinaryCopy) await this.#installPlugin();
      await this.#ensureDir(dirname(this.#kubeconfigPath));
      await this.#ensureDir(this.#multusCniConfDir);
      await this.#syncKubeconfig();
    } catch (err) {
      if (!(err instanceof InstallError)) throw err;
      this.#fail(err.message);
      await this.#cleanupIfAsked();
      return EXIT_FAILURE;
    }

    await this.#reportPodResources();
    const state = await this.#syncConfig();
    if (flags.skipConfigWatch) {
      if (state !== "ok") {
        this.#fail(`${this.#lastProblem} (with --skip-config-watch nothing waits for it)`);
        await this.#cleanupIfAsked();
        return EXIT_FAILURE;
      }
      if (!flags.cleanupConfigOnExit) return 0;
      this.#say(
        "Waiting for SIGTERM or SIGINT to remove the files written (--cleanup-config-on-exit)",
      );
      while (!this.#stopping) await this.#sleep(3_600_000);
      await this.#cleanup();
      return 0;
    }

    this.#say(
      `Watching ${this.#autoconfDir} and the service account every ${flags.pollIntervalMs} ms` +
        " (and on file events); stop with SIGTERM",
    );
    this.#startWatcher();
    try {
      while (!this.#stopping) {
        await this.#sleep(flags.pollIntervalMs);
        if (this.#stopping) break;
        try {
          await this.#syncKubeconfig();
        } catch (err) {
          this.#sayOnce("kubeconfig", errorMessage(err));
        }
        await this.#syncConfig();
      }
    } finally {
      this.#watcher?.close();
      clearTimeout(this.#pokeTimer);
    }
    await this.#cleanupIfAsked();
    return 0;
  }

  // ---- inputs and the plugin binary ----

  async #checkInputs(): Promise<void> {
    const flags = this.#flags;
    await requireDir(this.#confDir, "--cni-conf-dir");
    if (!flags.skipMultusBinaryCopy) await requireDir(this.#binDir, "--cni-bin-dir");
    if (flags.multusConfFile === "auto") {
      await requireDir(this.#autoconfDir, "--multus-autoconfig-dir");
    } else {
      try {
        await Deno.stat(flags.multusConfFile);
      } catch (err) {
        throw new InstallError(
          `--multus-conf-file ${flags.multusConfFile} cannot be read: ${describe(err)}`,
        );
      }
    }
  }

  async #installPlugin(): Promise<void> {
    const target = join(this.#binDir, "multus");
    const source = this.#flags.multusBinFile ??
      (Deno.build.standalone ? Deno.execPath() : undefined);
    if (source !== undefined) {
      if (await samePath(source, target)) {
        this.#say(`${target} is the running executable: nothing to copy`);
        return;
      }
      try {
        const result = await installFile(source, target);
        this.#say(
          result.changed ? `Installed ${target} (from ${source})` : `${target} is up to date`,
        );
      } catch (err) {
        throw new InstallError(errorMessage(err));
      }
      return;
    }
    // Running from source: install a launcher for the same Deno and entry module.
    const mainUrl = new URL("../main.ts", import.meta.url);
    if (mainUrl.protocol !== "file:") {
      throw new InstallError(
        `Cannot install a launcher for ${mainUrl.href}: run from a local checkout or use the ` +
          "compiled binary",
      );
    }
    const mainModule = fromFileUrl(mainUrl);
    const configPath = fromFileUrl(new URL("../../deno.json", import.meta.url));
    const config = await exists(configPath) ? configPath : undefined;
    const flagsFile = fromFileUrl(new URL("../../scripts/permission_flags", import.meta.url));
    const permissionFlags = (await readText(flagsFile))?.trim().split(/\s+/).filter(Boolean);
    const text = launcherScript({ deno: Deno.execPath(), mainModule, config, permissionFlags });
    let result;
    try {
      result = await installText(target, text, 0o755);
    } catch (err) {
      throw new InstallError(errorMessage(err));
    }
    this.#say(
      `Running from source, not as a compiled binary: ${
        result.changed ? "installed" : "kept"
      } ${target} as a launcher script that runs ${Deno.execPath()} on ${mainModule} ` +
        "(a release install copies the compiled binary instead)",
    );
    if (!(await exists(mainModule))) {
      this.#say(`Warning: ${mainModule} does not exist yet; the launcher will fail until it does`);
    }
  }

  async #ensureDir(dir: string): Promise<void> {
    const missing: string[] = [];
    for (let d = dir; !(await exists(d)); d = dirname(d)) {
      missing.unshift(d);
      if (dirname(d) === d) break;
    }
    if (missing.length === 0) return;
    try {
      await Deno.mkdir(dir, { recursive: true, mode: DIR_MODE });
    } catch (err) {
      throw new InstallError(`Cannot create directory ${dir}: ${describe(err)}`);
    }
    this.#createdDirs.push(...missing);
  }

  // ---- kubeconfig ----

  async #syncKubeconfig(): Promise<void> {
    let rendered: RenderedKubeconfig;
    try {
      rendered = await renderKubeconfig({
        serviceAccountDir: resolve(this.#flags.serviceAccountDir),
        hostPrefix: this.#flags.hostPrefix,
        skipTlsVerify: this.#flags.skipTlsVerify,
        env: this.#env,
      });
    } catch (err) {
      throw new InstallError(errorMessage(err));
    }
    const target = this.#kubeconfigPath;
    const existed = await exists(target);
    let result;
    try {
      result = await installText(target, rendered.text, KUBECONFIG_MODE);
    } catch (err) {
      throw new InstallError(errorMessage(err));
    }
    this.#owned.set(target, rendered.text);
    this.#onceByTopic.delete("kubeconfig");
    const last = this.#lastKubeconfig;
    this.#lastKubeconfig = rendered;
    if (!result.changed) {
      if (!last) this.#say(`${target} is up to date`);
      return;
    }
    if (!last || !existed) {
      const how = rendered.credentials === "embedded"
        ? "token and CA embedded, rewritten when they change"
        : "tokenFile and CA referenced by host path, read by the plugin at every call";
      this.#say(`Wrote kubeconfig ${target} (server ${rendered.server}; ${how})`);
      return;
    }
    const what = [];
    if (last.tokenHash !== rendered.tokenHash) what.push("the service account token");
    if (last.caHash !== rendered.caHash) what.push("the cluster CA");
    if (last.server !== rendered.server) what.push("the API server address");
    this.#say(
      `Refreshed kubeconfig ${target}: ${what.join(" and ") || "its content"} changed`,
    );
  }

  // ---- 00-multus.conf ----

  async #syncConfig(): Promise<SyncState> {
    try {
      return this.#flags.multusConfFile === "auto"
        ? await this.#syncAutoConfig()
        : await this.#syncCopiedConfig();
    } catch (err) {
      return this.#problem("error", `Cannot update the Multus config: ${errorMessage(err)}`);
    }
  }

  async #syncAutoConfig(): Promise<SyncState> {
    const flags = this.#flags;
    const search = await findPrimaryConfig(this.#autoconfDir, {
      fileName: flags.multusMasterCniFileName || undefined,
      includeRenamed: flags.renameConfFile,
    });
    if (search.kind === "invalid") {
      return this.#problem(
        "error",
        `Cannot use ${search.path} as the primary CNI config: ${search.reason}`,
      );
    }
    if (search.kind === "missing") {
      const previous = this.#primaryPath;
      this.#primaryPath = undefined;
      const removed = await this.#removeOurConfigs();
      if (removed.length > 0) {
        this.#say(
          `${previous ? `The primary CNI config ${previous} is gone` : "No primary CNI config"}: ` +
            `removed ${removed.join(", ")} so that no new pod is started with a stale network`,
        );
      }
      return this.#problem("waiting", `No primary CNI config yet: ${search.reason}`);
    }

    let path = search.path;
    if (flags.renameConfFile && !path.endsWith(RENAMED_SUFFIX)) {
      const renamed = path + RENAMED_SUFFIX;
      await Deno.rename(path, renamed);
      this.#renamed.set(path, renamed);
      this.#say(`Renamed ${path} to ${renamed} (--rename-conf-file): only Multus uses it now`);
      path = renamed;
    }
    if (path !== this.#primaryPath) {
      const skipped = search.skipped.length
        ? ` (passed over the Multus configs ${search.skipped.join(", ")})`
        : "";
      this.#say(`Primary CNI config: ${path}${skipped}`);
      this.#primaryPath = path;
    }

    const rendered = renderMultusConf(search.conf, {
      primaryHostPath: this.#hostPath(path),
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
      confDirHostPath: this.#hostPath(this.#multusCniConfDir),
      readinessIndicatorFile: flags.readinessIndicatorFile,
      embedPrimary: flags.renameConfFile,
    });
    const target = join(this.#confDir, rendered.fileName);
    await this.#writeConfig(target, rendered.text);
    // The other form would shadow ours ("00-multus.conf" sorts before "00-multus.conflist")
    // or confuse readers: remove it when it is a Multus config.
    for (const name of OUR_CONFIG_NAMES) {
      const other = join(this.#confDir, name);
      if (other === target) continue;
      const text = await readText(other);
      if (text === undefined || !isMultusConfig(parseObject(text) ?? {})) continue;
      await Deno.remove(other);
      this.#owned.delete(other);
      this.#say(`Removed ${other}: superseded by ${target} (cniVersion ${rendered.cniVersion})`);
    }
    this.#lastProblem = "";
    this.#onceByTopic.delete("config");
    return "ok";
  }

  async #syncCopiedConfig(): Promise<SyncState> {
    const source = this.#flags.multusConfFile;
    const text = await readText(source);
    if (text === undefined) {
      return this.#problem("error", `Cannot read --multus-conf-file ${source}`);
    }
    if (parseObject(text) === undefined) {
      return this.#problem("error", `--multus-conf-file ${source} is not a JSON object`);
    }
    const target = join(this.#confDir, basename(source));
    await this.#writeConfig(target, text);
    const first = (await listConfigNames(this.#confDir))[0];
    if (first !== undefined && first !== basename(source)) {
      this.#sayOnce(
        "order",
        `Warning: ${first} sorts before ${basename(source)} in ${this.#confDir}: ` +
          `the runtime uses ${first}, not the Multus config`,
      );
    }
    this.#lastProblem = "";
    this.#onceByTopic.delete("config");
    return "ok";
  }

  async #writeConfig(target: string, text: string): Promise<void> {
    const before = await readText(target);
    const result = await installText(target, text, CONFIG_MODE);
    this.#owned.set(target, text);
    if (!result.changed) {
      if (this.#said.has(`written:${target}`)) return;
      this.#said.add(`written:${target}`);
      this.#say(`${target} is up to date`);
      return;
    }
    this.#said.add(`written:${target}`);
    const diff = lineDiff(before === text ? undefined : before, text);
    this.#say(`${before === undefined ? "Wrote" : "Updated"} ${target}:`, diff);
  }

  /** Removes 00-multus.conf(list) when we wrote it or it is our kind of output. */
  async #removeOurConfigs(): Promise<string[]> {
    const removed: string[] = [];
    for (const name of OUR_CONFIG_NAMES) {
      const path = join(this.#confDir, name);
      const text = await readText(path);
      if (text === undefined) continue;
      if (this.#owned.get(path) !== text && !this.#isOurOutput(text)) continue;
      await Deno.remove(path);
      this.#owned.delete(path);
      removed.push(path);
    }
    return removed;
  }

  /** Our output: a Multus config whose clusterNetwork is a file of the watched directory. */
  #isOurOutput(text: string): boolean {
    const conf = parseObject(text);
    if (!conf) return false;
    const plugin = Array.isArray(conf.plugins) ? conf.plugins[0] : conf;
    if (!isObject(plugin) || plugin.type !== "multus") return false;
    const dir = this.#hostPath(this.#autoconfDir).replace(/\/+$/, "");
    return typeof plugin.clusterNetwork === "string" &&
      plugin.clusterNetwork.startsWith(`${dir}/`);
  }

  #hostPath(path: string): string {
    return toHostPath(path, this.#flags.hostPrefix);
  }

  // ---- stopping and cleanup ----

  #onSignal(signal: Deno.Signal): void {
    if (this.#stopping) {
      writeErr(`multus install: second ${signal}: exiting now\n`);
      Deno.exit(EXIT_FAILURE);
    }
    this.#stopping = true;
    this.#say(
      `Received ${signal}: stopping` +
        (this.#flags.cleanupConfigOnExit
          ? " and removing the files written (--cleanup-config-on-exit)"
          : "; the Multus config and kubeconfig stay in place for the plugin"),
    );
    this.#wake?.();
  }

  async #cleanupIfAsked(): Promise<void> {
    if (this.#flags.cleanupConfigOnExit) await this.#cleanup();
  }

  /** Removes exactly what this run wrote (if unchanged since) and the directories it made. */
  async #cleanup(): Promise<void> {
    for (const [path, content] of this.#owned) {
      const current = await readText(path);
      if (current === undefined) continue;
      if (current !== content) {
        this.#say(`Left ${path} in place: it changed after this installer wrote it`);
        continue;
      }
      try {
        await Deno.remove(path);
        this.#say(`Removed ${path}`);
      } catch (err) {
        this.#say(`Cannot remove ${path}: ${describe(err)}`);
      }
    }
    this.#owned.clear();
    for (const [original, renamed] of this.#renamed) {
      if (!(await exists(renamed)) || (await exists(original))) continue;
      try {
        await Deno.rename(renamed, original);
        this.#say(`Renamed ${renamed} back to ${original}`);
      } catch (err) {
        this.#say(`Cannot rename ${renamed} back to ${original}: ${describe(err)}`);
      }
    }
    for (const dir of [...this.#createdDirs].reverse()) {
      try {
        await Deno.remove(dir); // only when empty
      } catch {
        // not empty (someone put files there) or already gone: leave it
      }
    }
  }

  // ---- waiting ----

  #sleep(ms: number): Promise<void> {
    return new Promise((done) => {
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        done();
      }
      this.#wake = finish;
    });
  }

  /** Wakes the loop soon after file events in the watched directories (debounced). */
  #startWatcher(): void {
    const dirs = [...new Set([this.#confDir, this.#autoconfDir])];
    try {
      this.#watcher = Deno.watchFs(dirs, { recursive: false });
    } catch (err) {
      this.#say(`File events unavailable (${describe(err)}): polling only`);
      return;
    }
    const watcher = this.#watcher;
    (async () => {
      try {
        for await (const event of watcher) {
          if (event.kind === "access" || event.kind === "other") continue;
          if (this.#pokeTimer !== undefined) continue;
          this.#pokeTimer = setTimeout(() => {
            this.#pokeTimer = undefined;
            this.#wake?.();
          }, 50);
        }
      } catch {
        // watcher closed or failed: polling goes on
      }
    })();
  }

  // ---- output ----

  /**
   * Records why the config is not written and says it once (a one-shot run says it when it
   * fails). An error is said only when the next pass sees it again: a primary config caught
   * half-written by a file event is not worth an alarming line.
   */
  #problem(state: SyncState, message: string): SyncState {
    const repeated = this.#lastProblem === message;
    this.#lastProblem = message;
    if (this.#flags.skipConfigWatch) return state;
    if (state === "waiting") this.#sayOnce("config", `${message}; waiting for it`);
    else if (repeated) this.#sayOnce("config", message);
    return state;
  }

  #say(message: string, detail: string[] = []): void {
    const lines = [`${new Date().toISOString()} multus install: ${message}`];
    for (const line of detail) lines.push(`    ${line}`);
    writeErr(lines.join("\n") + "\n");
  }

  /** Says `message` unless it is what was last said on `topic` (cleared on success). */
  #sayOnce(topic: string, message: string): void {
    if (this.#onceByTopic.get(topic) === message) return;
    this.#onceByTopic.set(topic, message);
    this.#say(message);
  }

  #fail(message: string): void {
    writeErr(`${new Date().toISOString()} multus install: error: ${message}\n`);
  }
}

async function requireDir(path: string, flag: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    throw new InstallError(`${flag} ${path} cannot be used: ${describe(err)}`);
  }
  if (!info.isDirectory) throw new InstallError(`${flag} ${path} is not a directory`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function samePath(a: string, b: string): Promise<boolean> {
  try {
    return (await Deno.realPath(a)) === (await Deno.realPath(b));
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
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

function describe(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file or directory";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  return errorMessage(err);
}

function writeErr(text: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(text));
  } catch {
    // stderr closed: nothing else to do
  }
}
