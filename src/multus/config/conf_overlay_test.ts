import assert from "node:assert/strict";
import { applyOverlay, overlayFrom } from "./conf_overlay.ts";

Deno.test("applyOverlay() lets the overlay win, whatever the case of either key, and keeps the request's own keys", () => {
  const request =
    '{"cniVersion":"0.4.0","name":"multus-cni-network","type":"multus-shim","LogLevel":"error","runtimeConfig":{"portMappings":[]},"n":12345678901234567890}';
  const overlay = overlayFrom(
    '{"cniVersion":"1.0.0","name":"other","type":"multus","loglevel":"debug","cniDir":"/c", /* a comment */ "delegates":[{"big":98765432109876543210}],}',
  );
  assert.deepEqual(Object.keys(overlay), ["loglevel", "cniDir", "delegates"]);
  const out = applyOverlay(request, overlay);
  assert.equal(
    out,
    '{"cniVersion":"0.4.0","name":"multus-cni-network","type":"multus-shim","runtimeConfig":{"portMappings":[]},"n":12345678901234567890,"loglevel":"debug","cniDir":"/c","delegates":[{"big":98765432109876543210}]}',
  );
});

Deno.test("overlayFrom() skips the keys asked, keeps the last of a key spelled twice", () => {
  const overlay = overlayFrom(
    '{"socketDir":"/s","binDir":"/a","BinDir":"/b"}',
    new Set(["socketdir"]),
  );
  assert.deepEqual(Object.fromEntries(Object.entries(overlay).map(([k, v]) => [k, v.text])), {
    BinDir: '"/b"',
  });
  assert.throws(() => overlayFrom("[]"), SyntaxError);
});

Deno.test("applyOverlay() leaves a request that is not a JSON object for the plugin to report", () => {
  const overlay = overlayFrom('{"cniDir":"/c"}');
  assert.equal(applyOverlay("", overlay), "");
  assert.equal(applyOverlay("[1]", overlay), "[1]");
  assert.equal(applyOverlay('{"a":', overlay), '{"a":');
});
