/**
 * @module
 * Network namespaces and host links for end-to-end tests, created with iproute2 under unique
 * names and removed afterwards.
 */

import { uniqueSuffix } from "./plugin_run.ts";

/** Runs a command; throws with its stderr on failure. */
export async function sh(cmd: string[], options: { allowFail?: boolean } = {}): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success && !options.allowFail) {
    throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** An address as `ip -j addr` shows it. */
export interface LinkAddress {
  family: string;
  local: string;
  prefixlen: number;
}

/** A link as `ip -j addr` shows it. */
export interface LinkInfo {
  ifname: string;
  address?: string;
  operstate?: string;
  addr_info: LinkAddress[];
  link_type?: string;
}

/** A route as `ip -j route` shows it. */
export interface RouteInfo {
  dst: string;
  gateway?: string;
  dev: string;
}

/** A network namespace standing in for a pod. */
export class TestNetns {
  readonly name: string;
  readonly path: string;

  private constructor(name: string) {
    this.name = name;
    this.path = `/var/run/netns/${name}`;
  }

  /** Creates `mt-<random>`. */
  static async create(): Promise<TestNetns> {
    const ns = new TestNetns(`mt-${uniqueSuffix()}`);
    await sh(["ip", "netns", "add", ns.name]);
    await sh(["ip", "-n", ns.name, "link", "set", "lo", "up"]);
    return ns;
  }

  /** Links with their addresses. */
  async links(): Promise<LinkInfo[]> {
    return JSON.parse(await sh(["ip", "-n", this.name, "-j", "addr", "show"]));
  }

  /** One link by name, or undefined. */
  async link(name: string): Promise<LinkInfo | undefined> {
    return (await this.links()).find((l) => l.ifname === name);
  }

  /** IPv4 addresses of a link as `a.b.c.d/len`. */
  async ipv4(name: string): Promise<string[]> {
    const link = await this.link(name);
    return (link?.addr_info ?? []).filter((a) => a.family === "inet").map((a) =>
      `${a.local}/${a.prefixlen}`
    );
  }

  /** IPv4 routes. */
  async routes(): Promise<RouteInfo[]> {
    return JSON.parse(await sh(["ip", "-n", this.name, "-j", "-4", "route", "show"]));
  }

  /** Deletes the namespace (idempotent). */
  async remove(): Promise<void> {
    await sh(["ip", "netns", "del", this.name], { allowFail: true });
  }
}

/** A veth pair on the host whose `a` end serves as a macvlan master; removed by `remove`. */
export class HostVeth {
  readonly a: string;
  readonly b: string;

  private constructor(suffix: string) {
    this.a = `mtv${suffix}a`;
    this.b = `mtv${suffix}b`;
  }

  /** Creates and brings up `mtv<random>a` / `mtv<random>b`. */
  static async create(): Promise<HostVeth> {
    const v = new HostVeth(uniqueSuffix());
    await sh(["ip", "link", "add", v.a, "type", "veth", "peer", "name", v.b]);
    await sh(["ip", "link", "set", v.a, "up"]);
    await sh(["ip", "link", "set", v.b, "up"]);
    return v;
  }

  async remove(): Promise<void> {
    await sh(["ip", "link", "del", this.a], { allowFail: true });
  }
}

/** True when a host link exists. */
export async function hostLinkExists(name: string): Promise<boolean> {
  const out = await sh(["ip", "-j", "link", "show", "dev", name], { allowFail: true });
  return out.trim().startsWith("[") && JSON.parse(out).length > 0;
}

/** Deletes a host link if it exists (bridges the tests created). */
export async function deleteHostLink(name: string): Promise<void> {
  await sh(["ip", "link", "del", name], { allowFail: true });
}

/** Files in a directory (recursively, relative paths), [] when absent. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string, prefix: string) {
    try {
      for await (const e of Deno.readDir(d)) {
        if (e.isDirectory) await walk(`${d}/${e.name}`, `${prefix}${e.name}/`);
        else out.push(`${prefix}${e.name}`);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  await walk(dir, "");
  return out.sort();
}
