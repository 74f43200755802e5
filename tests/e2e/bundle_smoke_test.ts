/**
 * Smoke test of the bundled program (`deno bundle` output run by `deno run --no-config` with
 * the release permission flags), the fallback artifact where `deno compile` cannot be used:
 * VERSION, and one ADD/DEL with the real plugins.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT, runPlugin, SYSTEM_CNI_DIR, uniqueSuffix } from "../helpers/plugin_run.ts";
import { deleteHostLink, listFiles, TestNetns } from "../helpers/netns.ts";

Deno.test("the bundled program answers VERSION and runs ADD/DEL", async () => {
  const dir = await Deno.makeTempDir({ prefix: "multus-bundle-" });
  const ns = await TestNetns.create();
  const bridge = `mtbr${uniqueSuffix()}`;
  try {
    const bundle = join(dir, "multus.js");
    const built = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "deno", "--minify", "-o", bundle, "src/main.ts"],
      cwd: REPO_ROOT,
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stderr: "piped",
    }).output();
    assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
    // A bundle hoists every static import of a `node:` module to the top, so it would load
    // Node compatibility (tens of ms) at every start; node:http2 and node:net (device
    // networks) and node:https (a TLS fallback) must stay behind dynamic imports.
    const code = await Deno.readTextFile(bundle);
    const staticNodeImports = code.match(
      /\bimport\s*(?:[^;()"'`]*?\bfrom\s*)?["']node:[^"']*["']/g,
    );
    assert.deepEqual(staticNodeImports, null);
    assert.match(
      code,
      /\bimport\(\s*["']node:http2["']\s*\)/,
      "the kubelet client is in the bundle",
    );
    const flags = (await Deno.readTextFile(join(REPO_ROOT, "scripts", "permission_flags"))).trim();
    const bin = join(dir, "bin");
    await Deno.mkdir(bin);
    const launcher = join(bin, "multus");
    await Deno.writeTextFile(
      launcher,
      `#!/bin/sh\nDENO_NO_UPDATE_CHECK=1 exec "${Deno.execPath()}" run --quiet --no-config ${flags} "${bundle}" "$@"\n`,
    );
    await Deno.chmod(launcher, 0o755);

    const version = await runPlugin(launcher, { command: "VERSION", config: "{}" });
    assert.equal(version.code, 0, version.stdout);
    assert.deepEqual(version.json!.supportedVersions, [
      "0.1.0",
      "0.2.0",
      "0.3.0",
      "0.3.1",
      "0.4.0",
      "1.0.0",
      "1.1.0",
    ]);

    const conf = {
      cniVersion: "1.0.0",
      name: "bundle-smoke",
      type: "multus",
      cniDir: join(dir, "cache"),
      binDir: bin,
      delegates: [{
        cniVersion: "1.0.0",
        name: "smoke-bridge",
        type: "bridge",
        bridge,
        ipam: { type: "host-local", subnet: "10.250.9.0/24", dataDir: join(dir, "leases") },
      }],
    };
    const call = {
      containerId: `bundle-${uniqueSuffix()}`,
      netns: ns.path,
      ifName: "eth0",
      path: [SYSTEM_CNI_DIR],
      config: conf,
    };
    const add = await runPlugin(launcher, { command: "ADD", ...call });
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.deepEqual(await ns.ipv4("eth0"), ["10.250.9.2/24"]);
    const del = await runPlugin(launcher, { command: "DEL", ...call });
    assert.equal(del.code, 0, del.stdout);
    assert.equal(await ns.link("eth0"), undefined);
    assert.deepEqual(await listFiles(join(dir, "cache")), []);
  } finally {
    await ns.remove();
    await deleteHostLink(bridge);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
