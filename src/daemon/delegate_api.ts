/**
 * @module
 * `POST /delegate`, Multus's hot-plug API, as multus-dynamic-networks-controller calls it:
 * `{"env": {CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS}, "config":
 * <base64 of the delegate's CNI configuration>, "interfaceAttributes": {"ips", "mac",
 * "cni-args"}}`. ADD answers `{"Result": <1.0.0 result>}`, DEL and CHECK an empty 200, a
 * failure 400 with the CNI error JSON. The request runs through the daemon's limiter under
 * its container's key, so it never runs beside a CNI request (or a hot-plug pass) for the
 * same sandbox.
 */

import { CniError, CniErrorCode, toCniErrorJson } from "../cni/errors.ts";
import type { Exec } from "../cni/exec.ts";
import { parseNetworkConfig } from "../cni/network_config.ts";
import {
  type CniCommand,
  type CniRequest,
  parseCniArgs,
  validateContainerId,
} from "../cni/request.ts";
import { convertResult, resultToJson } from "../cni/result.ts";
import type { Logger } from "../log/logger.ts";
import type { ConfOverlay } from "../multus/config/conf_overlay.ts";
import { type Invocation, podFromArgs } from "../multus/config/invocation.ts";
import { lockSandbox } from "../multus/run/sandbox_lock.ts";
import { type InterfaceAttributes, runDelegateRequest } from "../multus/run/hotplug_delegate.ts";

import { hotplugNetConf } from "./hotplug_conf.ts";
import { LimiterRefusal, type RequestLimiter } from "./limiter.ts";
import { parseShimRequest, readRequestBody } from "./shim_request.ts";

/** What {@linkcode DelegateApi} needs of the daemon. */
export interface DelegateApiOptions {
  overlay: ConfOverlay;
  limiter: RequestLimiter;
  queueWaitMs: number;
  log: Logger;
  env: Record<string, string | undefined>;
  /** How delegates run (the daemon's: clean environment, chrootDir, timed). */
  exec: Exec;
}

const JSON_HEADERS = { "Content-Type": "application/json" };

/** Serves `POST /delegate`. */
export class DelegateApi {
  #o: DelegateApiOptions;

  constructor(options: DelegateApiOptions) {
    this.#o = options;
  }

  /** Answers one request. */
  async handle(httpRequest: Request): Promise<Response> {
    let inv: Invocation;
    let configText: string;
    let attributes: InterfaceAttributes | undefined;
    try {
      const body = await readRequestBody(httpRequest);
      const shim = parseShimRequest(body);
      attributes = parseAttributes(body);
      configText = shim.config;
      inv = this.#invocation(shim.env);
    } catch (err) {
      return this.#failed(err, httpRequest);
    }
    const o = this.#o;
    try {
      const config = parseNetworkConfig(configText, "the /delegate request's config");
      const result = await o.limiter.run(
        inv.request.containerId,
        o.queueWaitMs,
        async () => {
          const lock = await lockSandbox(inv.request.containerId, inv.log);
          try {
            return await runDelegateRequest(inv, config, attributes);
          } finally {
            await lock.release();
          }
        },
      );
      inv.log.verbose(
        `/delegate ${inv.request.command} ${config.name} (${inv.request.ifName}) done`,
      );
      if (!result) return new Response(null, { status: 200, headers: JSON_HEADERS });
      return new Response(`{"Result":${resultToJson(convertResult(result, "1.0.0"))}}`, {
        status: 200,
        headers: JSON_HEADERS,
      });
    } catch (err) {
      if (err instanceof LimiterRefusal) {
        return this.#failed(
          new CniError(
            CniErrorCode.TryAgainLater,
            `The multus daemon is busy: /delegate ${inv.request.command} did not run because ${err.message}`,
          ),
          httpRequest,
          503,
        );
      }
      return this.#failed(err, httpRequest);
    }
  }

  #invocation(env: Record<string, string>): Invocation {
    const command = (env.CNI_COMMAND ?? "").toUpperCase();
    if (!["ADD", "DEL", "CHECK"].includes(command)) {
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        `Cannot run /delegate: CNI_COMMAND must be ADD, DEL or CHECK, got "${command}"`,
      );
    }
    const containerId = env.CNI_CONTAINERID ?? "";
    validateContainerId(containerId);
    const netns = env.CNI_NETNS ?? "";
    if (command !== "DEL" && netns === "") {
      throw new CniError(
        CniErrorCode.InvalidEnvironment,
        "Cannot run /delegate: CNI_NETNS is missing",
      );
    }
    const args = parseCniArgs(env.CNI_ARGS ?? "");
    const request: CniRequest = {
      command: command as CniCommand,
      containerId,
      netns,
      // Multus's default when the controller sends none.
      ifName: env.CNI_IFNAME || "eth0",
      args,
      path: (env.CNI_PATH ?? "").split(":").filter((p) => p !== ""),
    };
    const { pod, infraContainerId } = podFromArgs(args);
    const log = this.#o.log.child({
      containerId,
      pod: pod ? `${pod.namespace}/${pod.name}` : undefined,
    });
    return {
      request,
      conf: hotplugNetConf(this.#o.overlay, "multus-cni-network"),
      pod,
      infraContainerId,
      env: this.#o.env,
      log,
      kube: () => Promise.resolve(undefined),
      exec: this.#o.exec,
    };
  }

  #failed(err: unknown, _httpRequest: Request, status = 400): Response {
    const error = toCniErrorJson(err, undefined);
    this.#o.log.error(
      `/delegate failed: ${error.msg}${error.details ? ` (${error.details})` : ""}`,
    );
    const code = err instanceof CniError && err.name === "RequestTooLarge" ? 413 : status;
    return new Response(JSON.stringify(error), { status: code, headers: JSON_HEADERS });
  }
}

/** `interfaceAttributes` of the body (already checked to be an object or absent). */
function parseAttributes(body: Uint8Array): InterfaceAttributes | undefined {
  const parsed = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>;
  const a = parsed.interfaceAttributes;
  if (!a || typeof a !== "object") return undefined;
  const r = a as Record<string, unknown>;
  const bad = (field: string, want: string) =>
    new CniError(
      CniErrorCode.DecodeFailure,
      `Cannot decode the /delegate request: "interfaceAttributes.${field}" must be ${want}`,
    );
  const out: InterfaceAttributes = {};
  if (r.ips !== undefined && r.ips !== null) {
    if (!Array.isArray(r.ips) || r.ips.some((ip) => typeof ip !== "string")) {
      throw bad("ips", "a list of strings");
    }
    out.ips = r.ips as string[];
  }
  if (r.mac !== undefined && r.mac !== null) {
    if (typeof r.mac !== "string") throw bad("mac", "a string");
    out.mac = r.mac;
  }
  const cniArgs = r["cni-args"];
  if (cniArgs !== undefined && cniArgs !== null) {
    if (typeof cniArgs !== "object" || Array.isArray(cniArgs)) throw bad("cni-args", "an object");
    out.cniArgs = cniArgs as Record<string, unknown>;
  }
  return out;
}
