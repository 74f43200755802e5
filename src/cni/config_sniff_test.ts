import assert from "node:assert/strict";
import { isShimConfig, sniffCniVersion } from "./config_sniff.ts";

Deno.test("isShimConfig() is true only for a top-level type multus-shim (any key case)", () => {
  assert.equal(isShimConfig('{"type":"multus-shim"}'), true);
  assert.equal(isShimConfig('{"Type":"multus-shim","cniVersion":"0.4.0"}'), true);
  assert.equal(isShimConfig('{"type":"multus","delegates":[{"type":"multus-shim"}]}'), false);
  assert.equal(isShimConfig('{"type":"multus","name":"multus-shim"}'), false);
  assert.equal(isShimConfig('{"type":"multus-shim"'), false);
  assert.equal(isShimConfig('["multus-shim"]'), false);
});

Deno.test("sniffCniVersion() finds the version without parsing", () => {
  assert.equal(sniffCniVersion('{"cniVersion" : "0.3.1"'), "0.3.1");
  assert.equal(sniffCniVersion('{"cniVersion":""}'), undefined);
});
