/**
 * @module
 * `default-route` in the pod's network selection: the pod's default route of a family goes
 * via the requested gateway on that network's interface, and the other interfaces' default
 * routes of that family are removed. The cached results are rewritten to match, so CHECK and
 * DEL see what is installed. (Multus v4 does not delete the old routes: its netlink version
 * reports default routes differently, and the add is then silently skipped.)
 */

import { CniError, CniErrorCode, ConfigError } from "../../cni/errors.ts";
import { readCachedResult, writeCachedResult } from "../../cni/result_cache.ts";
import { ipFamily } from "../../util/ip.ts";
import type { Delegate, PlannedDelegate } from "./delegate.ts";
import type { Invocation } from "../config/invocation.ts";
import { errorMessage } from "../../util/errors.ts";

/** A requested default gateway. */
interface GatewayRequest {
  delegate: PlannedDelegate;
  gateway: string;
  family: 4 | 6;
}

/**
 * Fails before anything runs when the pod asks for more than one default gateway of a family
 * (ECMP is not supported, as in Multus).
 */
export function checkDefaultRouteRequests(delegates: Delegate[], podLabel: string): void {
  for (const family of [4, 6] as const) {
    const asked = delegates.flatMap((d) =>
      (d.defaultRoute ?? []).filter((gw) => ipFamily(gw) === family).map((gw) =>
        `${d.name} via ${gw}`
      )
    );
    if (asked.length > 1) {
      throw new ConfigError(
        "default-route",
        `Cannot attach the networks of ${podLabel}: more than one IPv${family} default route requested (${
          asked.join(", ")
        })`,
        { details: 'Request "default-route" on one network per IP family (ECMP is not supported)' },
      );
    }
  }
}

/** Installs the requested default routes in the pod's netns and rewrites the cached results. */
export async function applyDefaultRoutes(
  inv: Invocation,
  delegates: PlannedDelegate[],
): Promise<void> {
  const requests: GatewayRequest[] = delegates.flatMap((d) =>
    (d.defaultRoute ?? []).map((gateway) => ({
      delegate: d,
      gateway,
      family: ipFamily(gateway) as 4 | 6,
    }))
  );
  if (requests.length === 0) return;
  for (const req of requests) {
    const flag = `-${req.family}`;
    const existing = JSON.parse(
      await ipInNetns(inv.request.netns, [flag, "-j", "route", "show", "default"]) || "[]",
    ) as { dev?: string }[];
    for (const route of existing) {
      if (!route.dev) continue;
      await ipInNetns(inv.request.netns, [flag, "route", "del", "default", "dev", route.dev]);
    }
    await ipInNetns(inv.request.netns, [
      flag,
      "route",
      "replace",
      "default",
      "via",
      req.gateway,
      "dev",
      req.delegate.ifName,
    ]);
    inv.log.verbose(
      `default route (IPv${req.family}) via ${req.gateway} on ${req.delegate.ifName}`,
      {
        network: req.delegate.name,
      },
    );
    for (const d of delegates) await rewriteCachedRoutes(inv, d, req);
  }
}

async function ipInNetns(netns: string, args: string[]): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("nsenter", {
      args: [`--net=${netns}`, "ip", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (err) {
    throw new CniError(
      CniErrorCode.Internal,
      `Cannot set the default route: nsenter and ip (util-linux, iproute2) are needed on the node: ${
        errorMessage(err)
      }`,
    );
  }
  if (!out.success) {
    throw new CniError(
      CniErrorCode.Internal,
      `Cannot set the default route: ip ${args.join(" ")} failed: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return new TextDecoder().decode(out.stdout).trim();
}

function isDefault(dst: unknown, family: 4 | 6): boolean {
  if (typeof dst !== "string") return false;
  const [ip, prefix] = dst.split("/");
  return prefix === "0" && ipFamily(ip) === family;
}

/** Drops the family's default routes from a delegate's cached result; adds the requested one. */
async function rewriteCachedRoutes(
  inv: Invocation,
  d: PlannedDelegate,
  req: GatewayRequest,
): Promise<void> {
  const key = {
    networkName: d.config.name,
    containerId: inv.request.containerId,
    ifName: d.ifName,
  };
  const cached = await readCachedResult(inv.conf.cniDir, key, inv.log);
  if (!cached?.result || typeof cached.result !== "object") return;
  const result = structuredClone(cached.result) as Record<string, unknown>;
  const chosen = d === req.delegate;
  const dst = req.family === 4 ? "0.0.0.0/0" : "::/0";
  const legacyKey = req.family === 4 ? "ip4" : "ip6";
  const legacy = result[legacyKey] as { routes?: { dst: string; gw?: string }[] } | undefined;
  if ("ip4" in result || "ip6" in result) {
    if (legacy) {
      legacy.routes = (legacy.routes ?? []).filter((r) => !isDefault(r.dst, req.family));
      if (chosen) legacy.routes.push({ dst, gw: req.gateway });
      if (legacy.routes.length === 0) delete legacy.routes;
    }
  } else {
    const routes = ((result.routes ?? []) as { dst: string; gw?: string }[]).filter((r) =>
      !isDefault(r.dst, req.family)
    );
    if (chosen) routes.push({ dst, gw: req.gateway });
    if (routes.length) result.routes = routes;
    else delete result.routes;
  }
  await writeCachedResult(inv.conf.cniDir, { ...cached, result });
}
