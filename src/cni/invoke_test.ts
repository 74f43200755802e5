import assert from "node:assert/strict";
import { join } from "node:path";
import {
  addNetwork,
  checkNetwork,
  delNetwork,
  gcNetwork,
  type RuntimeConf,
  statusNetwork,
} from "./invoke.ts";
import { CniError, DelegateError, StorageError } from "./errors.ts";
import { Logger } from "../log/logger.ts";
import { type NetworkConfig, parseNetworkConfig } from "./network_config.ts";
import { rawValueAt, setTopLevelKeys } from "./raw_json.ts";
import { parseResult, resultToJson } from "./result.ts";
import { readCachedResult, resultCachePath, writeCachedResult } from "./result_cache.ts";

/** One recorded plugin run. */
interface Call {
  plugin: string;
  command: string;
  stdin: string;
  env: Record<string, string>;
}

/** A quiet logger (level panic), as a request's is by default. */
const log = new Logger();

/**
 * A temp dir with fake plugins (bash scripts) that record every run (stdin, CNI env) and
 * answer from control files `ctl/<plugin>.<COMMAND>.{out,err,rc}`.
 */
class Fake {
  readonly root: string;
  readonly bin: string;
  readonly rec: string;
  readonly cache: string;

  constructor(root: string) {
    this.root = root;
    this.bin = join(root, "bin");
    this.rec = join(root, "rec");
    this.cache = join(root, "cache");
  }

  static async create(plugins: string[]): Promise<Fake> {
    const fake = new Fake(await Deno.makeTempDir({ prefix: "invoke_test_" }));
    await Deno.mkdir(fake.bin);
    await Deno.mkdir(join(fake.rec, "ctl"), { recursive: true });
    for (const name of plugins) await fake.plugin(name);
    return fake;
  }

  async plugin(name: string): Promise<void> {
    const d = this.rec;
    const script = `#!/bin/bash
d='${d}'
me=$(basename "$0")
n=$(( $(cat "$d/seq" 2>/dev/null || echo 0) + 1 ))
echo $n > "$d/seq"
cat > "$d/$n.stdin"
env | grep '^CNI_' | sort > "$d/$n.env"
echo "$me $CNI_COMMAND" >> "$d/calls"
f="$d/ctl/$me.$CNI_COMMAND"
[ -f "$f.out" ] && cat "$f.out"
[ -f "$f.err" ] && cat "$f.err" >&2
[ -f "$f.rc" ] && exit $(cat "$f.rc")
exit 0
`;
    const path = join(this.bin, name);
    await Deno.writeTextFile(path, script, { mode: 0o755 });
    await Deno.chmod(path, 0o755);
  }

  async control(
    plugin: string,
    command: string,
    answer: { out?: string; err?: string; rc?: number },
  ): Promise<void> {
    const base = join(this.rec, "ctl", `${plugin}.${command}`);
    if (answer.out !== undefined) await Deno.writeTextFile(`${base}.out`, answer.out);
    if (answer.err !== undefined) await Deno.writeTextFile(`${base}.err`, answer.err);
    if (answer.rc !== undefined) await Deno.writeTextFile(`${base}.rc`, String(answer.rc));
  }

  async calls(): Promise<Call[]> {
    let lines: string[];
    try {
      lines = (await Deno.readTextFile(join(this.rec, "calls"))).trim().split("\n");
    } catch {
      return [];
    }
    const out: Call[] = [];
    for (const [i, line] of lines.entries()) {
      const [plugin, command] = line.split(" ");
      const env = Object.fromEntries(
        (await Deno.readTextFile(join(this.rec, `${i + 1}.env`))).split("\n").filter((l) => l)
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      );
      out.push({
        plugin,
        command,
        stdin: await Deno.readTextFile(join(this.rec, `${i + 1}.stdin`)),
        env,
      });
    }
    return out;
  }

  async resetCalls(): Promise<void> {
    await Deno.remove(join(this.rec, "calls")).catch(() => {});
    await Deno.remove(join(this.rec, "seq")).catch(() => {});
  }

  rt(overrides: Partial<RuntimeConf> = {}): RuntimeConf {
    return {
      containerId: "ctr1",
      netns: "/var/run/netns/x",
      ifName: "eth0",
      args: [["IgnoreUnknown", "true"], ["K8S_POD_NAME", "p"]],
      capabilityArgs: {},
      path: [this.bin],
      cacheDir: this.cache,
      timeoutMs: 10_000,
      log,
      ...overrides,
    };
  }

  async cleanup(): Promise<void> {
    await Deno.remove(this.root, { recursive: true });
  }
}

async function withFake(plugins: string[], fn: (fake: Fake) => Promise<void>): Promise<void> {
  const fake = await Fake.create(plugins);
  try {
    await fn(fake);
  } finally {
    await fake.cleanup();
  }
}

function result(ip: string, version = "1.0.0"): string {
  return JSON.stringify({
    cniVersion: version,
    interfaces: [{ name: "eth0", sandbox: "/var/run/netns/x" }],
    ips: [{ address: ip, interface: 0 }],
  });
}

async function rejects<T extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => T,
): Promise<T> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${err}`);
    return err;
  }
  assert.fail("expected a rejection");
}

const P1 = `{"type":"p1", "zeta": 1, "mtu": 12345678901234567890, "alpha": {"b":2, "a":1},` +
  ` "runtimeConfig": {"keep": true}, "name": "plugin-own-name", "cniVersion": "0.3.0"}`;
const P2 = `{"type":"p2","capabilities":{"portMappings":true,"bandwidth":false,"ips":true},` +
  `"runtimeConfig":{"old":1}}`;
const P3 = `{"type":"p3","capabilities":{"mac":true},"runtimeConfig":{"untouched":[1]}}`;

function conflist(version: string, extra = ""): NetworkConfig {
  return parseNetworkConfig(
    `{"cniVersion":"${version}","name":"net"${extra},"plugins":[${P1},\n  ${P2},\n  ${P3}]}`,
    "test",
  );
}

const CAPABILITY_ARGS = {
  portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
  bandwidth: { ingressRate: 1000 },
  ips: [],
  mac: "",
};

Deno.test("addNetwork() runs a conflist in order with injected keys and chained prevResult", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    await fake.control("p1", "ADD", { out: result("10.0.0.1/24") });
    await fake.control("p2", "ADD", { out: result("10.0.0.2/24") });
    await fake.control("p3", "ADD", { out: result("10.0.0.3/24") });
    const net = conflist("1.0.0");
    const rt = fake.rt({ capabilityArgs: CAPABILITY_ARGS });
    const res = await addNetwork(net, rt);
    assert.equal(
      resultToJson(res),
      resultToJson(parseResult(JSON.parse(result("10.0.0.3/24")), "1.0.0")),
    );

    const calls = await fake.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ["p1 ADD", "p2 ADD", "p3 ADD"]);

    // p1: only name and cniVersion replaced; every other byte (big integer, order) kept.
    assert.equal(
      calls[0].stdin,
      setTopLevelKeys(P1, { name: "net", cniVersion: "1.0.0" }),
    );
    assert.match(calls[0].stdin, /"mtu": 12345678901234567890/);
    assert.match(calls[0].stdin, /"alpha": \{"b":2, "a":1\}/);
    assert.deepEqual(Object.keys(JSON.parse(calls[0].stdin)), [
      "type",
      "zeta",
      "mtu",
      "alpha",
      "runtimeConfig",
      "name",
      "cniVersion",
    ]);
    assert.equal(rawValueAt(calls[0].stdin, ["runtimeConfig"]), '{"keep": true}');
    assert.equal(rawValueAt(calls[0].stdin, ["prevResult"]), undefined);

    // p2: runtimeConfig replaced by the declared, supplied, non-empty capabilities only.
    assert.deepEqual(JSON.parse(calls[1].stdin).runtimeConfig, {
      portMappings: CAPABILITY_ARGS.portMappings,
    });
    assert.equal(
      rawValueAt(calls[1].stdin, ["prevResult"]),
      resultToJson(parseResult(JSON.parse(result("10.0.0.1/24")), "1.0.0")),
    );
    assert.equal(JSON.parse(calls[1].stdin).name, "net");

    // p3: no capability matched (mac empty): its own runtimeConfig passes through.
    assert.equal(rawValueAt(calls[2].stdin, ["runtimeConfig"]), '{"untouched":[1]}');
    assert.equal(
      rawValueAt(calls[2].stdin, ["prevResult"]),
      resultToJson(parseResult(JSON.parse(result("10.0.0.2/24")), "1.0.0")),
    );

    for (const call of calls) {
      assert.deepEqual(call.env, {
        CNI_ARGS: "IgnoreUnknown=true;K8S_POD_NAME=p",
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: "ctr1",
        CNI_IFNAME: "eth0",
        CNI_NETNS: "/var/run/netns/x",
        CNI_PATH: fake.bin,
      });
    }
  });
});

Deno.test("addNetwork() writes the cniCacheV1 entry after success", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    for (const p of ["p1", "p2", "p3"]) {
      await fake.control(p, "ADD", { out: result("10.0.0.9/24") });
    }
    const net = conflist("1.0.0");
    await addNetwork(
      net,
      fake.rt({ capabilityArgs: { portMappings: CAPABILITY_ARGS.portMappings } }),
    );
    const path = join(fake.cache, "results", "net-ctr1-eth0");
    const bytes = new TextEncoder().encode(net.raw);
    const config = btoa(String.fromCharCode(...bytes));
    assert.equal(
      await Deno.readTextFile(path),
      `{"kind":"cniCacheV1","containerId":"ctr1","config":"${config}","ifName":"eth0",` +
        `"networkName":"net","netns":"/var/run/netns/x",` +
        `"cniArgs":[["IgnoreUnknown","true"],["K8S_POD_NAME","p"]],` +
        `"capabilityArgs":{"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]},` +
        `"result":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x"}],` +
        `"ips":[{"address":"10.0.0.9/24","interface":0}]}}`,
    );
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  });
});

Deno.test("addNetwork() validates the attachment before running anything", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    const net = conflist("1.0.0");
    let err = await rejects(addNetwork(net, fake.rt({ containerId: "../x" })), CniError);
    assert.equal(err.code, 4);
    err = await rejects(addNetwork(net, fake.rt({ ifName: "a/b" })), CniError);
    assert.equal(err.code, 4);
    err = await rejects(addNetwork(net, fake.rt({ ifName: "" })), CniError);
    assert.equal(err.code, 4);
    const badName = parseNetworkConfig(`{"cniVersion":"1.0.0","name":"../etc","type":"p1"}`, "t");
    err = await rejects(addNetwork(badName, fake.rt()), CniError);
    assert.equal(err.code, 7);
    assert.deepEqual(await fake.calls(), []);
  });
});

Deno.test("addNetwork() stops at a failing plugin and wraps its error, code kept", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    await fake.control("p1", "ADD", { out: result("10.0.0.1/24") });
    await fake.control("p2", "ADD", {
      out: '{"code":11,"msg":"busy","details":"later"}',
      rc: 1,
    });
    const err = await rejects(addNetwork(conflist("1.0.0"), fake.rt()), DelegateError);
    assert.equal(err.code, 11);
    assert.equal(err.message, 'plugin type="p2" name="net" failed (add): busy; later');
    assert.equal(err.pluginType, "p2");
    assert.deepEqual((await fake.calls()).map((c) => `${c.plugin} ${c.command}`), [
      "p1 ADD",
      "p2 ADD",
    ]);
    await assert.rejects(Deno.stat(join(fake.cache, "results", "net-ctr1-eth0")));
  });
});

Deno.test("addNetwork() fails when a plugin prints no result or is missing", async () => {
  await withFake(["p1"], async (fake) => {
    const single = parseNetworkConfig(`{"cniVersion":"0.4.0","name":"net","type":"p1"}`, "t");
    let err = await rejects(addNetwork(single, fake.rt()), DelegateError);
    assert.equal(err.code, 6);
    assert.match(err.message, /^plugin type="p1" name="net" failed \(add\): /);

    const missing = parseNetworkConfig(`{"cniVersion":"0.4.0","name":"net","type":"nope"}`, "t");
    err = await rejects(addNetwork(missing, fake.rt()), DelegateError);
    assert.equal(
      err.message,
      `plugin type="nope" name="net" failed (add): failed to find plugin "nope" in path [${fake.bin}]`,
    );

    // parseNetworkConfig refuses such a type; invoke refuses it too, before any lookup.
    const path: NetworkConfig = {
      ...missing,
      plugins: [{ type: "../p1", capabilities: {}, raw: missing.raw }],
    };
    err = await rejects(addNetwork(path, fake.rt()), DelegateError);
    assert.equal(err.code, 7);
  });
});

Deno.test("addNetwork() hands plugins strict JSON when the configuration is JSONC", async () => {
  await withFake(["p1"], async (fake) => {
    await fake.control("p1", "ADD", { out: result("10.0.0.1/24") });
    const net = parseNetworkConfig(
      `{"cniVersion":"1.0.0","name":"net", // comment\n"plugins":[{"type":"p1",},],}`,
      "t",
    );
    await addNetwork(net, fake.rt());
    const [call] = await fake.calls();
    assert.deepEqual(JSON.parse(call.stdin), { type: "p1", name: "net", cniVersion: "1.0.0" });
  });
});

Deno.test("addNetwork() deletes what it added when the cache cannot be written", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    for (const p of ["p1", "p2", "p3"]) {
      await fake.control(p, "ADD", { out: result("10.0.0.7/24") });
    }
    // The cache directory is a regular file: nothing can be created under it.
    await Deno.writeTextFile(fake.cache, "not a directory");
    await rejects(addNetwork(conflist("1.0.0"), fake.rt()), StorageError);
    const calls = await fake.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), [
      "p1 ADD",
      "p2 ADD",
      "p3 ADD",
      "p3 DEL",
      "p2 DEL",
      "p1 DEL",
    ]);
    assert.equal(
      rawValueAt(calls[3].stdin, ["prevResult"]),
      resultToJson(parseResult(JSON.parse(result("10.0.0.7/24")), "1.0.0")),
    );
  });
});

Deno.test("delNetwork() runs in reverse order with the cached result (0.4.0+) and removes the cache", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    for (const p of ["p1", "p2", "p3"]) {
      await fake.control(p, "ADD", { out: result(`10.0.0.${p.slice(1)}/24`) });
    }
    const net = conflist("1.0.0");
    const rt = fake.rt({ capabilityArgs: CAPABILITY_ARGS, netns: "" });
    await addNetwork(net, rt);
    await fake.resetCalls();
    await delNetwork(net, rt);
    const calls = await fake.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ["p3 DEL", "p2 DEL", "p1 DEL"]);
    const final = resultToJson(parseResult(JSON.parse(result("10.0.0.3/24")), "1.0.0"));
    for (const call of calls) {
      assert.equal(rawValueAt(call.stdin, ["prevResult"]), final);
      assert.equal(call.env.CNI_COMMAND, "DEL");
      assert.equal(call.env.CNI_NETNS, "");
    }
    assert.deepEqual(JSON.parse(calls[1].stdin).runtimeConfig, {
      portMappings: CAPABILITY_ARGS.portMappings,
    });
    assert.equal(await readCachedResult(fake.cache, { ...rt, networkName: "net" }, log), undefined);

    // A second DEL: no cache, no prevResult, still success.
    await fake.resetCalls();
    await delNetwork(net, rt);
    for (const call of await fake.calls()) {
      assert.equal(rawValueAt(call.stdin, ["prevResult"]), undefined);
    }
  });
});

Deno.test("delNetwork() converts the cached result to the configuration's version", async () => {
  await withFake(["p1"], async (fake) => {
    const net = parseNetworkConfig(`{"cniVersion":"1.0.0","name":"net","type":"p1"}`, "t");
    const rt = fake.rt();
    await writeCachedResult(fake.cache, {
      containerId: "ctr1",
      ifName: "eth0",
      networkName: "net",
      config: net.raw,
      result: { cniVersion: "0.4.0", ips: [{ version: "4", address: "10.0.0.5/24" }] },
    });
    await delNetwork(net, rt);
    const [call] = await fake.calls();
    const prev = JSON.parse(rawValueAt(call.stdin, ["prevResult"])!);
    assert.equal(prev.cniVersion, "1.0.0");
    assert.equal(prev.ips[0].address, "10.0.0.5/24");
    assert.equal(prev.ips[0].version, undefined);
  });
});

Deno.test("delNetwork() below 0.4.0 sends no prevResult but removes the cache", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    for (const p of ["p1", "p2", "p3"]) {
      await fake.control(p, "ADD", { out: result("10.0.0.1/24", "0.3.1") });
    }
    const net = conflist("0.3.1");
    const rt = fake.rt();
    await addNetwork(net, rt);
    await fake.resetCalls();
    await delNetwork(net, rt);
    const calls = await fake.calls();
    assert.deepEqual(calls.map((c) => c.plugin), ["p3", "p2", "p1"]);
    for (const call of calls) assert.equal(rawValueAt(call.stdin, ["prevResult"]), undefined);
    assert.equal(await readCachedResult(fake.cache, { ...rt, networkName: "net" }, log), undefined);
  });
});

Deno.test("delNetwork() continues past failing plugins and reports them all", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    for (const p of ["p1", "p2", "p3"]) {
      await fake.control(p, "ADD", { out: result("10.0.0.1/24") });
    }
    const net = conflist("1.0.0");
    const rt = fake.rt();
    await addNetwork(net, rt);
    await fake.resetCalls();
    await fake.control("p2", "DEL", { out: '{"code":11,"msg":"locked"}', rc: 1 });
    let err = await rejects(delNetwork(net, rt), DelegateError);
    assert.equal(err.code, 11);
    assert.equal(err.message, 'plugin type="p2" name="net" failed (delete): locked');
    assert.deepEqual((await fake.calls()).map((c) => c.plugin), ["p3", "p2", "p1"]);
    // Not fully deleted: the cache entry stays for the next DEL.
    assert.notEqual(
      await readCachedResult(fake.cache, { ...rt, networkName: "net" }, log),
      undefined,
    );

    await fake.control("p3", "DEL", { err: "p3 exploded", rc: 2 });
    err = await rejects(delNetwork(net, rt), DelegateError);
    assert.equal(
      err.message,
      'errors: plugin type="p3" name="net" failed (delete): netplugin failed: "p3 exploded" / ' +
        'plugin type="p2" name="net" failed (delete): locked',
    );
  });
});

Deno.test("delNetwork() passes an empty CNI_NETNS when the netns is gone", async () => {
  await withFake(["p1"], async (fake) => {
    const net = parseNetworkConfig(`{"cniVersion":"1.0.0","name":"net","type":"p1"}`, "t");
    await delNetwork(net, fake.rt({ netns: join(fake.root, "gone") }));
    const existing = join(fake.root, "ns");
    await Deno.writeTextFile(existing, "");
    await delNetwork(net, fake.rt({ netns: existing }));
    const calls = await fake.calls();
    assert.equal(calls[0].env.CNI_NETNS, "");
    assert.equal(calls[1].env.CNI_NETNS, existing);
  });
});

Deno.test("delNetwork() ignores an unusable cached result", async () => {
  await withFake(["p1"], async (fake) => {
    const net = parseNetworkConfig(`{"cniVersion":"1.0.0","name":"net","type":"p1"}`, "t");
    const rt = fake.rt();
    const path = resultCachePath(fake.cache, { ...rt, networkName: "net" });
    await Deno.mkdir(join(fake.cache, "results"), { recursive: true });
    await Deno.writeTextFile(path, '{"cniVersion":"1.0.0","ips":[{"address":"not-an-ip"}]}');
    await delNetwork(net, rt);
    const [call] = await fake.calls();
    assert.equal(rawValueAt(call.stdin, ["prevResult"]), undefined);
    await assert.rejects(Deno.stat(path));
  });
});

Deno.test("checkNetwork() follows libcni's rules", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    const rt = fake.rt();
    const err = await rejects(checkNetwork(conflist("0.3.1"), rt), CniError);
    assert.equal(err.code, 1);
    assert.equal(err.message, 'configuration version "0.3.1" does not support the CHECK command');

    await checkNetwork(conflist("1.0.0", `,"disableCheck":true`), rt);
    assert.deepEqual(await fake.calls(), []);

    for (const p of ["p1", "p2", "p3"]) {
      await fake.control(p, "ADD", { out: result("10.0.0.1/24") });
    }
    const net = conflist("1.0.0");
    await addNetwork(net, rt);
    await fake.resetCalls();
    await checkNetwork(net, rt);
    let calls = await fake.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), [
      "p1 CHECK",
      "p2 CHECK",
      "p3 CHECK",
    ]);
    for (const call of calls) {
      assert.equal(
        rawValueAt(call.stdin, ["prevResult"]),
        resultToJson(parseResult(JSON.parse(result("10.0.0.1/24")), "1.0.0")),
      );
    }

    await fake.resetCalls();
    await fake.control("p2", "CHECK", { out: '{"code":3,"msg":"container gone"}', rc: 1 });
    const checkErr = await rejects(checkNetwork(net, rt), DelegateError);
    assert.equal(checkErr.code, 3);
    assert.match(checkErr.message, /container gone$/);
    calls = await fake.calls();
    assert.deepEqual(calls.map((c) => c.plugin), ["p1", "p2"]);
  });
});

Deno.test("statusNetwork() follows libcni's rules", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    await statusNetwork(conflist("1.0.0"), fake.rt());
    assert.deepEqual(await fake.calls(), []);

    await statusNetwork(conflist("1.1.0"), fake.rt({ capabilityArgs: CAPABILITY_ARGS }));
    let calls = await fake.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), [
      "p1 STATUS",
      "p2 STATUS",
      "p3 STATUS",
    ]);
    assert.deepEqual(calls[0].env, {
      CNI_ARGS: "",
      CNI_COMMAND: "STATUS",
      CNI_CONTAINERID: "",
      CNI_IFNAME: "",
      CNI_NETNS: "",
      CNI_PATH: fake.bin,
    });
    // Only name and cniVersion injected: the config's runtimeConfig is untouched.
    assert.equal(calls[1].stdin, setTopLevelKeys(P2, { name: "net", cniVersion: "1.1.0" }));

    await fake.resetCalls();
    await fake.control("p2", "STATUS", { out: '{"code":50,"msg":"no IPs left"}', rc: 1 });
    const err = await rejects(statusNetwork(conflist("1.1.0"), fake.rt()), DelegateError);
    assert.equal(err.code, 50);
    assert.equal(err.message, "no IPs left");
    calls = await fake.calls();
    assert.deepEqual(calls.map((c) => c.plugin), ["p1", "p2"]);
  });
});

Deno.test("gcNetwork() deletes stale cached attachments and sends GC (1.1.0)", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    const net = conflist("1.1.0");
    const entry = (containerId: string, networkName = "net") => ({
      containerId,
      ifName: "eth0",
      networkName,
      config: net.raw,
      netns: join(fake.root, containerId),
      cniArgs: [["K8S_POD_NAME", containerId]] as [string, string][],
      result: JSON.parse(result("10.0.0.4/24", "1.1.0")),
    });
    await writeCachedResult(fake.cache, entry("keep"));
    await writeCachedResult(fake.cache, entry("stale"));
    await writeCachedResult(fake.cache, entry("other", "othernet"));
    const valid = [{ containerID: "keep", ifname: "eth0" }, { containerID: "x", ifname: "net1" }];

    await gcNetwork(conflist("1.1.0", `,"disableGC":true`), fake.rt(), valid);
    assert.deepEqual(await fake.calls(), []);

    await gcNetwork(net, fake.rt(), valid);
    const calls = await fake.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), [
      "p3 DEL",
      "p2 DEL",
      "p1 DEL",
      "p1 GC",
      "p2 GC",
      "p3 GC",
    ]);
    assert.equal(calls[0].env.CNI_CONTAINERID, "stale");
    assert.equal(calls[0].env.CNI_ARGS, "K8S_POD_NAME=stale");
    assert.equal(calls[0].env.CNI_NETNS, ""); // the cached netns path does not exist
    assert.notEqual(rawValueAt(calls[0].stdin, ["prevResult"]), undefined);
    const gc = JSON.parse(calls[3].stdin);
    assert.deepEqual(gc["cni.dev/valid-attachments"], valid);
    assert.deepEqual(gc["cni.dev/attachments"], valid);
    assert.equal(gc.name, "net");
    assert.equal(calls[3].env.CNI_CONTAINERID, "");
    assert.equal(calls[3].env.CNI_IFNAME, "");
    assert.equal(
      calls[3].stdin,
      setTopLevelKeys(P1, {
        name: "net",
        cniVersion: "1.1.0",
        "cni.dev/valid-attachments": valid,
        "cni.dev/attachments": valid,
      }),
    );

    const key = { ifName: "eth0", networkName: "net" };
    assert.equal(
      await readCachedResult(fake.cache, { ...key, containerId: "stale" }, log),
      undefined,
    );
    assert.notEqual(
      await readCachedResult(fake.cache, { ...key, containerId: "keep" }, log),
      undefined,
    );
    assert.notEqual(
      await readCachedResult(
        fake.cache,
        { ...key, containerId: "other", networkName: "othernet" },
        log,
      ),
      undefined,
    );
  });
});

Deno.test("gcNetwork() below 1.1.0 only deletes, and continues past errors", async () => {
  await withFake(["p1", "p2", "p3"], async (fake) => {
    const old = conflist("1.0.0");
    await writeCachedResult(fake.cache, {
      containerId: "stale",
      ifName: "eth0",
      networkName: "net",
      config: old.raw,
    });
    await gcNetwork(old, fake.rt(), []);
    assert.deepEqual((await fake.calls()).map((c) => `${c.plugin} ${c.command}`), [
      "p3 DEL",
      "p2 DEL",
      "p1 DEL",
    ]);

    await fake.resetCalls();
    await fake.control("p1", "GC", { out: '{"code":5,"msg":"disk"}', rc: 1 });
    await fake.control("p3", "GC", { err: "nope", rc: 1 });
    const err = await rejects(gcNetwork(conflist("1.1.0"), fake.rt(), []), DelegateError);
    assert.equal(err.code, 5);
    assert.equal(
      err.message,
      'errors: failed to GC plugin p1: disk / failed to GC plugin p3: netplugin failed: "nope"',
    );
    assert.deepEqual((await fake.calls()).map((c) => c.plugin), ["p1", "p2", "p3"]);
  });
});

async function sh(...cmd: string[]): Promise<string> {
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: "addNetwork()/checkNetwork()/delNetwork() work with the real bridge, host-local and tuning",
  ignore: !(await Deno.stat("/usr/lib/cni/bridge").then(() => true, () => false)) ||
    Deno.uid() !== 0,
  async fn() {
    const id = crypto.randomUUID().slice(0, 8);
    const nsName = `mt-${id}`;
    const bridge = `mtbr${id.slice(0, 6)}`;
    const octet = 100 + Math.floor(Math.random() * 100);
    const root = await Deno.makeTempDir({ prefix: "invoke_real_" });
    await sh("ip", "netns", "add", nsName);
    try {
      const net = parseNetworkConfig(
        JSON.stringify({
          cniVersion: "1.0.0",
          name: "realnet",
          plugins: [
            {
              type: "bridge",
              bridge,
              isGateway: true,
              ipam: {
                type: "host-local",
                subnet: `10.234.${octet}.0/24`,
                dataDir: join(root, "ipam"),
              },
            },
            { type: "tuning", mtu: 1400 },
          ],
        }),
        "real",
      );
      const rt: RuntimeConf = {
        containerId: `ctr-${id}`,
        netns: `/var/run/netns/${nsName}`,
        ifName: "eth0",
        args: [["IgnoreUnknown", "true"]],
        capabilityArgs: {},
        path: ["/usr/lib/cni"],
        cacheDir: join(root, "cache"),
        timeoutMs: 30_000,
        log,
      };
      const res = await addNetwork(net, rt);
      const json = JSON.parse(resultToJson(res));
      assert.equal(json.cniVersion, "1.0.0");
      assert.equal(json.ips[0].address, `10.234.${octet}.2/24`);
      const link = await sh("ip", "-n", nsName, "-j", "addr", "show", "eth0");
      const [info] = JSON.parse(link);
      assert.equal(info.mtu, 1400);
      assert.ok(
        info.addr_info.some((a: { local: string }) => a.local === `10.234.${octet}.2`),
      );
      await checkNetwork(net, rt);

      await delNetwork(net, rt);
      assert.equal(
        await readCachedResult(rt.cacheDir, { ...rt, networkName: "realnet" }, log),
        undefined,
      );
      const after = await sh("ip", "-n", nsName, "-j", "link", "show");
      assert.ok(!JSON.parse(after).some((l: { ifname: string }) => l.ifname === "eth0"));
      // The IP lease is released.
      const leases = [...Deno.readDirSync(join(root, "ipam", "realnet"))].map((e) => e.name);
      assert.ok(!leases.includes(`10.234.${octet}.2`), leases.join(","));
      // DEL again, and DEL with the netns gone: both succeed.
      await delNetwork(net, rt);
      await sh("ip", "netns", "del", nsName);
      await delNetwork(net, rt);
    } finally {
      await sh("ip", "netns", "del", nsName).catch(() => {});
      await sh("ip", "link", "del", bridge).catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  },
});
