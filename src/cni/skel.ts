/**
 * @module
 * The CNI skeleton, as libcni's `pkg/skel`: one request in (environment and stdin, injected),
 * one answer out. It answers VERSION itself, reads stdin once, lets the plugin load its
 * configuration, checks the configuration's version against the command, checks the network
 * namespace for ADD and DEL, then runs the command. Every failure becomes the CNI error
 * object, logged once; nothing here prints.
 */

import type { Logger } from "../log/logger.ts";
import { errorMessage } from "../util/errors.ts";
import { sniffCniVersion } from "./config_sniff.ts";
import { CniError, CniErrorCode, type CniErrorJson, toCniErrorJson } from "./errors.ts";
import { type CniRequest, parseRequest } from "./request.ts";
import {
  CURRENT_VERSION,
  isSupportedVersion,
  SUPPORTED_VERSIONS,
  versionAtLeast,
} from "./version.ts";

/** Where one request comes from. */
export interface SkelIo {
  /** The CNI environment (`CNI_COMMAND`, `CNI_CONTAINERID`, …). */
  env: Record<string, string | undefined>;
  /** Reads the network configuration (stdin), once. */
  readStdin: () => Promise<string>;
  /** Logs failures that happen before the plugin has a logger of its own. */
  log: Logger;
}

/** A configuration loaded for one request: what the skeleton checks, and the command to run. */
export interface LoadedCommand {
  /** The configuration's `cniVersion` ("" when absent: 0.1.0). */
  cniVersion: string;
  /** Says for whom a check failed (adds the pod to the message); default: unchanged. */
  explain?: (err: unknown) => unknown;
  /** Runs the command (for the request as checked); returns what goes to stdout. */
  run: (request: CniRequest) => Promise<string>;
}

/** A CNI plugin as the skeleton drives it. */
export interface CniPlugin {
  /** The logger of one request (its lines name the container and pod). */
  logger(request: CniRequest): Logger;
  /** Loads the configuration of a request (not VERSION); may throw a configuration error. */
  load(request: CniRequest, stdin: string, log: Logger): Promise<LoadedCommand>;
}

/** A plugin, or a function that loads it (after VERSION, which needs none). */
export type PluginSource = CniPlugin | (() => Promise<CniPlugin>);

/** The answer to one request. */
export type SkelOutcome =
  | { ok: true; stdout: string }
  | { ok: false; error: CniErrorJson };

/** The VERSION answer. */
export function versionJson(): string {
  return JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS });
}

/** Runs one request through `plugin`; never throws: a failure is logged and returned. */
export async function runSkel(io: SkelIo, plugin: PluginSource): Promise<SkelOutcome> {
  const state: RequestState = { log: io.log };
  try {
    return { ok: true, stdout: await serveRequest(io, plugin, state) };
  } catch (err) {
    const stdin = state.stdin;
    const error = toCniErrorJson(err, stdin === undefined ? undefined : sniffCniVersion(stdin));
    state.log.always(
      "error",
      `${io.env.CNI_COMMAND} failed: ${error.msg}${error.details ? ` (${error.details})` : ""}`,
    );
    return { ok: false, error };
  }
}

/** What is known of a request so far, for reporting its failure. */
export interface RequestState {
  log: Logger;
  stdin?: string;
}

/**
 * Runs one request through `plugin` and returns what goes to stdout; throws what failed
 * (for callers that print errors themselves).
 */
export async function serveRequest(
  io: SkelIo,
  source: PluginSource,
  state: RequestState = { log: io.log },
): Promise<string> {
  // Answered before anything else is parsed or loaded: runtimes probe every plugin with it.
  if (io.env.CNI_COMMAND === "VERSION") return versionJson();
  const plugin = typeof source === "function" ? await source() : source;
  let request = parseRequest(io.env);
  const stdin = state.stdin = await readStdinOrFail(io.readStdin);
  const log = state.log = plugin.logger(request);
  const loaded = await plugin.load(request, stdin, log);
  try {
    checkVersion(loaded.cniVersion, request);
    if (request.command === "ADD" || request.command === "DEL") {
      request = await checkNetns(request, log);
    }
  } catch (err) {
    throw loaded.explain?.(err) ?? err;
  }
  const stdout = await loaded.run(request);
  log.debug(`${request.command}: done ${Math.round(performance.now())} ms after start`);
  return stdout;
}

async function readStdinOrFail(readStdin: () => Promise<string>): Promise<string> {
  try {
    return await readStdin();
  } catch (err) {
    throw new CniError(
      CniErrorCode.IoFailure,
      `Cannot read the network configuration from stdin: ${errorMessage(err)}`,
    );
  }
}

/** The configuration's version must be supported, and new enough for the command. */
function checkVersion(cniVersion: string, request: CniRequest): void {
  const version = cniVersion === "" ? "0.1.0" : cniVersion;
  if (!isSupportedVersion(version)) {
    throw new CniError(CniErrorCode.IncompatibleVersion, "incompatible CNI versions", {
      details: `config is "${cniVersion}", plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`,
    });
  }
  const needs = { CHECK: "0.4.0", STATUS: "1.1.0", GC: "1.1.0" } as Record<string, string>;
  const min = needs[request.command];
  if (min && !versionAtLeast(version, min)) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `config version does not allow ${request.command}`,
      { details: `config is "${cniVersion}"; ${request.command} needs ${min} or later` },
    );
  }
}

/** Where the kernel shows this process's own network namespace. */
const OWN_NETNS = "/proc/self/ns/net";

/**
 * ADD and DEL must never act on the plugin's own network namespace (libcni skel), and ADD
 * needs the namespace to exist. Returns the request to go on with.
 *
 * When the comparison cannot be made (the plugin's own namespace or the target cannot be
 * inspected), the target might be the host's namespace: ADD fails, saying why, and DEL goes
 * on without CNI_NETNS, so delegates release addresses and caches but touch no interface
 * (a real pod's interfaces go with its namespace).
 */
async function checkNetns(request: CniRequest, log: Logger): Promise<CniRequest> {
  if (request.netns === "") return request;
  let target: Deno.FileInfo;
  try {
    target = await Deno.stat(request.netns);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      if (request.command === "ADD") {
        throw new CniError(
          CniErrorCode.UnknownContainer,
          `Cannot add networks: the network namespace ${request.netns} does not exist`,
          { details: "The container's sandbox is gone; the runtime will create a new one" },
        );
      }
      // DEL: the namespace is gone with everything in it; delegates release the rest.
      return request;
    }
    return cannotCompareNetns(request, log, `cannot inspect ${request.netns}: ${reasonOf(err)}`);
  }
  let own: Deno.FileInfo;
  try {
    own = await Deno.stat(OWN_NETNS);
  } catch (err) {
    return cannotCompareNetns(request, log, `cannot read ${OWN_NETNS}: ${reasonOf(err)}`);
  }
  if (own.ino === target.ino && own.dev === target.dev) {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      "plugin's netns and netns from CNI_NETNS should not be the same",
      { details: `CNI_NETNS=${request.netns} is the host's own network namespace` },
    );
  }
  return request;
}

function cannotCompareNetns(request: CniRequest, log: Logger, reason: string): CniRequest {
  if (request.command === "ADD") {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      `Cannot add networks: cannot tell whether CNI_NETNS=${request.netns} is the host's own ` +
        `network namespace (${reason})`,
      {
        details: "The plugin refuses to attach interfaces to what might be the host's " +
          "namespace; it needs /proc mounted and readable (it runs as root on the node)",
      },
    );
  }
  log.warn(
    `${request.command}: cannot tell whether CNI_NETNS=${request.netns} is the host's own ` +
      `network namespace (${reason}); running the delegates without CNI_NETNS, so they ` +
      "release addresses but touch no interface",
  );
  return { ...request, netns: "" };
}

function reasonOf(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "it does not exist";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.NotCapable) {
    return "this multus build lacks the permission to read it: build it with scripts/build.sh";
  }
  return errorMessage(err);
}
