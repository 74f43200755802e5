import assert from "node:assert/strict";
import { CniError } from "../cni/errors.ts";
import { MAX_REQUEST_BYTES, parseShimRequest, readRequestBody } from "./shim_request.ts";

const encode = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

Deno.test("parseShimRequest() keeps the CNI variables and decodes the base64 configuration", () => {
  const request = parseShimRequest(
    encode({
      env: { CNI_COMMAND: "ADD", CNI_ARGS: "A=b", HOME: "/root", PATH: "/bin" },
      config: btoa('{"cniVersion":"1.0.0","name":"n"}'),
      interfaceAttributes: { ips: ["10.0.0.1/24"] },
    }),
  );
  assert.deepEqual(request.env, { CNI_COMMAND: "ADD", CNI_ARGS: "A=b" });
  assert.equal(request.config, '{"cniVersion":"1.0.0","name":"n"}');
  assert.deepEqual(parseShimRequest(encode({})), { env: {}, config: "" });
});

Deno.test("parseShimRequest() refuses what is not Multus's request shape with CNI errors", () => {
  const cases: [unknown, number, RegExp][] = [
    ["{", 6, /not JSON/],
    [[], 6, /not a JSON object/],
    [{ env: [] }, 4, /"env" must be a map of strings/],
    [{ env: { CNI_COMMAND: 1 } }, 4, /"CNI_COMMAND" must be a string/],
    [{ config: 5 }, 6, /"config" must be a base64 string/],
    [{ config: "!!" }, 6, /not valid base64/],
    [{ interfaceAttributes: "x" }, 6, /"interfaceAttributes" must be an object/],
  ];
  for (const [body, code, message] of cases) {
    assert.throws(
      () => parseShimRequest(encode(body)),
      (err) => err instanceof CniError && err.code === code && message.test(err.message),
      JSON.stringify(body),
    );
  }
});

Deno.test("readRequestBody() stops past the limit, declared or streamed", async () => {
  const big = new Request("http://x/cni", { method: "POST", body: new Uint8Array(100) });
  await assert.rejects(readRequestBody(big, 10), /at most 10/);
  const ok = new Request("http://x/cni", { method: "POST", body: "abc" });
  assert.equal(new TextDecoder().decode(await readRequestBody(ok)), "abc");
  const declared = new Request("http://x/cni", {
    method: "POST",
    body: "a",
    headers: { "content-length": String(MAX_REQUEST_BYTES + 1) },
  });
  await assert.rejects(readRequestBody(declared), /takes at most/);
});
