/**
 * @module
 * The CNI plugin: parses the request, loads the configuration, checks versions, and runs
 * the command. Returns what goes to stdout; errors are thrown and printed by `main.ts`.
 */

import { CniError, CniErrorCode } from "../../cni/errors.ts";
import {
  type CniRequest,
  parseConfigText,
  parseRequest,
  validateNetworkName,
} from "../../cni/request.ts";
import {
  CURRENT_VERSION,
  isSupportedVersion,
  SUPPORTED_VERSIONS,
  versionAtLeast,
} from "../../cni/version.ts";
import { log } from "../../log/logger.ts";
import {
  fallbackNetConf,
  loadMultusNetConf,
  type MultusNetConf,
  NETCONF_DEFAULTS,
  recoverCniDir,
} from "../config/netconf.ts";
import { type Invocation, podFromArgs, podLabel } from "../config/invocation.ts";
import type { PodIdentity } from "../config/invocation.ts";
import { usesKubernetes } from "./resolve.ts";

/** The outcome of one CNI command. */
export interface CniOutcome {
  stdout: string;
  /** cniVersion to put in an error, when known. */
  cniVersion?: string;
}

/** Runs the CNI command described by `env` with `readStdin` as the configuration source. */
export async function runCniCommand(
  env: Record<string, string | undefined>,
  readStdin: () => Promise<string>,
): Promise<string> {
  const request = parseRequest(env);
  if (request.command === "VERSION") {
    return JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS });
  }
  const stdin = await readStdinOrFail(readStdin);
  log.setContext({ containerId: request.containerId || undefined });
  const { pod, infraContainerId } = podFromArgs(request.args);
  if (pod) log.setContext({ pod: `${pod.namespace}/${pod.name}` });

  let conf: MultusNetConf;
  let unusableConf: Invocation["unusableConf"];
  try {
    conf = loadMultusNetConf(stdin);
  } catch (err) {
    if (request.command !== "DEL") throw forPod(err, pod, request);
    // DEL must not wedge a pod because of a broken config: the scratch cache holds everything
    // needed, in the cniDir the text still names (else DEL fails when the default has none).
    const cniDir = recoverCniDir(stdin);
    log.error(
      `DEL with an unusable multus configuration (${
        (err as Error).message
      }); using the scratch cache in ${
        cniDir ?? `${NETCONF_DEFAULTS.cniDir} (the text does not say which cniDir)`
      }`,
    );
    conf = fallbackNetConf(cniDir);
    unusableConf = { error: err, cniDirKnown: cniDir !== undefined };
  }
  configureLogging(conf);
  for (const warning of conf.warnings) log.warn(warning);
  log.debug(
    `${request.command}: configuration loaded ${Math.round(performance.now())} ms after start`,
  );
  try {
    checkConfigName(conf, request);
    checkVersion(conf, request);
  } catch (err) {
    throw forPod(err, pod, request);
  }

  const inv: Invocation = { request, conf, pod, infraContainerId, unusableConf };
  switch (request.command) {
    case "ADD": {
      await checkNetnsFor(inv);
      if (usesKubernetes(inv)) (await import("../kube/session.ts")).prefetchPod(inv);
      const { cmdAdd } = await import("./add.ts");
      return await cmdAdd(inv);
    }
    case "DEL": {
      await checkNetnsFor(inv);
      const { cmdDel } = await import("./del.ts");
      await cmdDel(inv);
      return "";
    }
    case "CHECK": {
      const { cmdCheck } = await import("./check.ts");
      await cmdCheck(inv);
      return "";
    }
    case "STATUS": {
      const { cmdStatus } = await import("./status_gc.ts");
      await cmdStatus(inv);
      return "";
    }
    case "GC": {
      const { cmdGc, validAttachmentsOf } = await import("./status_gc.ts");
      await cmdGc(inv, validAttachmentsOf(parseConfigText(stdin), conf.name));
      return "";
    }
  }
}

/** {@linkcode checkNetns} for this run; errors name the pod. */
async function checkNetnsFor(inv: Invocation): Promise<void> {
  try {
    inv.request = await checkNetns(inv.request);
  } catch (err) {
    throw forPod(err, inv.pod, inv.request);
  }
}

async function readStdinOrFail(readStdin: () => Promise<string>): Promise<string> {
  try {
    return await readStdin();
  } catch (err) {
    throw new CniError(
      CniErrorCode.IoFailure,
      `Cannot read the network configuration from stdin: ${(err as Error).message}`,
    );
  }
}

/** Adds the pod (or container) a configuration error stopped, keeping code and details. */
function forPod(err: unknown, pod: PodIdentity | undefined, request: CniRequest): unknown {
  if (!(err instanceof CniError)) return err;
  const who = podLabel({ pod, request });
  const wrapped = new CniError(err.code, `${err.message} (${request.command} of ${who})`, {
    details: err.details,
    cause: err,
  });
  return wrapped;
}

function configureLogging(conf: MultusNetConf): void {
  log.configure({
    level: conf.logLevel,
    file: conf.logFile,
    toStderr: conf.logToStderr,
    rotation: {
      maxSize: conf.logOptions.maxSize,
      maxBackups: conf.logOptions.maxBackups,
      maxAge: conf.logOptions.maxAge,
    },
  });
}

function checkConfigName(conf: MultusNetConf, request: CniRequest): void {
  if (request.command === "DEL" && conf.name === "") return;
  validateNetworkName(conf.name);
}

function checkVersion(conf: MultusNetConf, request: CniRequest): void {
  const version = conf.cniVersion === "" ? "0.1.0" : conf.cniVersion;
  if (!isSupportedVersion(version)) {
    throw new CniError(CniErrorCode.IncompatibleVersion, "incompatible CNI versions", {
      details: `config is "${conf.cniVersion}", plugin supports ${
        JSON.stringify(SUPPORTED_VERSIONS)
      }`,
    });
  }
  const needs = { CHECK: "0.4.0", STATUS: "1.1.0", GC: "1.1.0" } as Record<string, string>;
  const min = needs[request.command];
  if (min && !versionAtLeast(version, min)) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `config version does not allow ${request.command}`,
      { details: `config is "${conf.cniVersion}"; ${request.command} needs ${min} or later` },
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
async function checkNetns(request: CniRequest): Promise<CniRequest> {
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
    return cannotCompareNetns(request, `cannot inspect ${request.netns}: ${reasonOf(err)}`);
  }
  let own: Deno.FileInfo;
  try {
    own = await Deno.stat(OWN_NETNS);
  } catch (err) {
    return cannotCompareNetns(request, `cannot read ${OWN_NETNS}: ${reasonOf(err)}`);
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

function cannotCompareNetns(request: CniRequest, reason: string): CniRequest {
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
  return (err as Error)?.message ?? String(err);
}
