import assert from "node:assert/strict";
import { CniError } from "../../cni/errors.ts";
import type { Exec, PluginEnv } from "../../cni/exec.ts";
import { log } from "../../log/logger.ts";
import { loadMultusNetConf } from "../config/netconf.ts";
import type { Invocation } from "../config/invocation.ts";
import { cmdAdd } from "./add.ts";

/** An {@linkcode Exec} that runs no plugin: it records each call and fails one network's ADD. */
class RecordingExec implements Exec {
  readonly calls: string[] = [];
  readonly #failAddOf: string;

  constructor(failAddOf: string) {
    this.#failAddOf = failAddOf;
  }

  findPlugin(type: string): Promise<string> {
    return Promise.resolve(`/nonexistent/${type}`);
  }

  execPlugin(_path: string, stdin: string, env: PluginEnv): Promise<unknown> {
    const network = (JSON.parse(stdin) as { name: string }).name;
    this.calls.push(`${env.command} ${network} ${env.ifName}`);
    if (env.command !== "ADD") return Promise.resolve(undefined);
    if (network === this.#failAddOf) {
      return Promise.reject(new CniError(11, "no address left in the pool"));
    }
    return Promise.resolve({
      cniVersion: "1.0.0",
      interfaces: [{ name: env.ifName, sandbox: env.netns }],
      ips: [{ address: "10.1.1.2/24", interface: 0 }],
    });
  }
}

async function invocation(cniDir: string, exec: Exec): Promise<Invocation> {
  const delegate = (name: string) => ({ cniVersion: "1.0.0", name, type: "fake" });
  const conf = loadMultusNetConf(JSON.stringify({
    cniVersion: "1.0.0",
    name: "multus",
    type: "multus",
    cniDir,
    delegates: ["net1", "net2", "net3", "net4"].map(delegate),
  }));
  return {
    request: {
      command: "ADD",
      containerId: "rollback-unit-test",
      netns: await Deno.makeTempFile(), // stands in for the namespace: it exists
      ifName: "eth0",
      args: [],
      path: ["/nonexistent"],
    },
    conf,
    infraContainerId: "",
    env: {},
    log,
    exec,
    kube: () => Promise.resolve(undefined),
  };
}

Deno.test("cmdAdd() rolls back a failure at the third delegate: DEL of 3, 2, 1, scratch cache removed", async () => {
  const cniDir = await Deno.makeTempDir();
  try {
    const exec = new RecordingExec("net3");
    const inv = await invocation(cniDir, exec);
    const err = await cmdAdd(inv).then(() => undefined, (e) => e);

    assert.ok(err instanceof CniError, `expected a CNI error, got ${err}`);
    assert.equal(err.code, 11);
    assert.match(err.message, /network "net3"/);
    assert.match(err.details ?? "", /every network attached so far was rolled back/);
    assert.deepEqual(exec.calls, [
      "ADD net1 eth0",
      "ADD net2 net1",
      "ADD net3 net2",
      "DEL net3 net2",
      "DEL net2 net1",
      "DEL net1 eth0",
    ]);
    const left = [];
    for await (const entry of Deno.readDir(cniDir)) {
      if (entry.isFile) left.push(entry.name);
    }
    assert.deepEqual(left, [], "the scratch cache is removed");
    await Deno.remove(inv.request.netns);
  } finally {
    await Deno.remove(cniDir, { recursive: true });
  }
});
