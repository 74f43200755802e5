/**
 * @module
 * The Multus plugin as the CNI skeleton (`cni/skel.ts`) drives it: loads the Multus
 * configuration of a request, builds the request's {@linkcode Invocation} (its logger, its
 * API session, the way delegates run) and runs the command. Everything a request uses comes
 * from {@linkcode CommandDeps} or is made for that request, so one process (a daemon) can run
 * several requests at once.
 */

import type { Exec } from "../../cni/exec.ts";
import { CniError } from "../../cni/errors.ts";
import { type CniRequest, parseConfigText, validateNetworkName } from "../../cni/request.ts";
import { type CniPlugin, type LoadedCommand, serveRequest } from "../../cni/skel.ts";
import { processExec } from "../../cni/exec.ts";
import { log as rootLog, type Logger } from "../../log/logger.ts";
import { errorMessage } from "../../util/errors.ts";
import {
  fallbackNetConf,
  loadMultusNetConf,
  type MultusNetConf,
  NETCONF_DEFAULTS,
  recoverCniDir,
} from "../config/netconf.ts";
import { type Invocation, type KubeSession, podFromArgs, podLabel } from "../config/invocation.ts";
import type { PodIdentity } from "../config/invocation.ts";
import type { OpenKubeAccess } from "../kube/session.ts";
import { usesKubernetes } from "./resolve.ts";

/** What the plugin's requests share: given by the thin plugin's process, or by a daemon. */
export interface CommandDeps {
  /** The root logger; each request logs through a child of it carrying its container and pod. */
  log: Logger;
  /**
   * Set the root logger's level and destinations from each request's configuration (default
   * true: the thin plugin serves one request per process). A daemon configures it once.
   */
  configureLog?: boolean;
  /**
   * Opens the API access for a request's configuration (default: a client of its own from
   * its kubeconfig, else the in-cluster environment). A daemon passes one that returns its
   * shared client, with its watch caches and event queue.
   */
  openKubeClient?: OpenKubeAccess;
  /** How delegates are found and run (default: as child processes). */
  exec?: Exec;
  /** The environment API access is read from (default: this process's). */
  env?: Record<string, string | undefined>;
}

/** The Multus plugin for the skeleton, with `deps` shared by its requests. */
export function multusPlugin(deps: CommandDeps): CniPlugin {
  return {
    logger(request) {
      const { pod } = podFromArgs(request.args);
      return deps.log.child({
        containerId: request.containerId || undefined,
        pod: pod ? `${pod.namespace}/${pod.name}` : undefined,
      });
    },
    load: (request, stdin, log) => Promise.resolve(loadCommand(request, { stdin, log, deps })),
  };
}

/**
 * Runs one CNI request in this process: `env` and `readStdin` are its environment and
 * stdin. Returns what goes to stdout; throws what failed (the skeleton's `runSkel` turns
 * that into the printed error).
 */
export async function runCniCommand(
  env: Record<string, string | undefined>,
  readStdin: () => Promise<string>,
  deps: CommandDeps = { log: rootLog },
): Promise<string> {
  return await serveRequest({ env, readStdin, log: deps.log }, multusPlugin(deps));
}

function loadCommand(
  request: CniRequest,
  { stdin, log, deps }: { stdin: string; log: Logger; deps: CommandDeps },
): LoadedCommand {
  const { pod, infraContainerId } = podFromArgs(request.args);
  const explain = (err: unknown) => forPod(err, pod, request);
  let conf: MultusNetConf;
  let unusableConf: Invocation["unusableConf"];
  try {
    conf = loadMultusNetConf(stdin);
  } catch (err) {
    if (request.command !== "DEL") throw explain(err);
    // DEL must not wedge a pod because of a broken config: the scratch cache holds everything
    // needed, in the cniDir the text still names (else DEL fails when the default has none).
    const cniDir = recoverCniDir(stdin);
    log.error(
      `DEL with an unusable multus configuration (${
        errorMessage(err)
      }); using the scratch cache in ${
        cniDir ?? `${NETCONF_DEFAULTS.cniDir} (the text does not say which cniDir)`
      }`,
    );
    conf = fallbackNetConf(cniDir);
    unusableConf = { error: err, cniDirKnown: cniDir !== undefined };
  }
  if (deps.configureLog !== false) configureLogging(log, conf);
  for (const warning of conf.warnings) log.warn(warning);
  log.debug(
    `${request.command}: configuration loaded ${Math.round(performance.now())} ms after start`,
  );
  try {
    checkConfigName(conf, request);
  } catch (err) {
    throw explain(err);
  }
  return {
    cniVersion: conf.cniVersion,
    explain,
    run: (checked) => {
      let session: Promise<KubeSession | undefined> | undefined;
      const inv: Invocation = {
        request: checked,
        conf,
        pod,
        infraContainerId,
        unusableConf,
        env: deps.env ?? Deno.env.toObject(),
        log,
        exec: deps.exec ?? processExec,
        kube: () => session ??= openSession(inv, deps.openKubeClient),
      };
      return runCommand(inv, stdin);
    },
  };
}

async function openSession(
  inv: Invocation,
  open: OpenKubeAccess | undefined,
): Promise<KubeSession | undefined> {
  const { openKubeSession } = await import("../kube/session.ts");
  return await openKubeSession(inv, open);
}

async function runCommand(inv: Invocation, stdin: string): Promise<string> {
  switch (inv.request.command) {
    case "ADD": {
      if (usesKubernetes(inv)) (await import("../kube/session.ts")).prefetchPod(inv);
      const { cmdAdd } = await import("./add.ts");
      return await cmdAdd(inv);
    }
    case "DEL": {
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
      await cmdGc(inv, validAttachmentsOf(parseConfigText(stdin), inv.conf.name));
      return "";
    }
    case "VERSION":
      throw new CniError(999, "VERSION is answered by the skeleton");
  }
}

/** Adds the pod (or container) a configuration error stopped, keeping code and details. */
function forPod(err: unknown, pod: PodIdentity | undefined, request: CniRequest): unknown {
  if (!(err instanceof CniError)) return err;
  const who = podLabel({ pod, request });
  return new CniError(err.code, `${err.message} (${request.command} of ${who})`, {
    details: err.details,
    cause: err,
  });
}

function configureLogging(log: Logger, conf: MultusNetConf): void {
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
