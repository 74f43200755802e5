import assert from "node:assert/strict";
import { CniError } from "./errors.ts";
import {
  parseCniArgs,
  parseConfigText,
  parseRequest,
  validateContainerId,
  validateIfName,
  validateNetworkName,
} from "./request.ts";

function assertCniError(
  fn: () => unknown,
  expected: { code: number; message: string; details?: string },
): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CniError, `expected CniError, got ${err}`);
    assert.equal(err.code, expected.code);
    assert.equal(err.message, expected.message);
    assert.equal(err.details, expected.details);
    return true;
  });
}

const ADD_ENV = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "abc-123_x.y",
  CNI_NETNS: "/var/run/netns/blue",
  CNI_IFNAME: "eth0",
  CNI_ARGS: "IgnoreUnknown=true;K8S_POD_NAME=p;;X=YWJj==",
  CNI_PATH: "/opt/cni/bin::/usr/lib/cni",
};

Deno.test("parseRequest() reads an ADD request", () => {
  assert.deepEqual(parseRequest(ADD_ENV), {
    command: "ADD",
    containerId: "abc-123_x.y",
    netns: "/var/run/netns/blue",
    ifName: "eth0",
    args: [["IgnoreUnknown", "true"], ["K8S_POD_NAME", "p"], ["X", "YWJj=="]],
    path: ["/opt/cni/bin", "/usr/lib/cni"],
  });
});

Deno.test("parseRequest() lists missing variables in skel order", () => {
  assertCniError(() => parseRequest({ CNI_COMMAND: "ADD" }), {
    code: 4,
    message: "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing",
  });
  assertCniError(() => parseRequest({ CNI_COMMAND: "DEL", CNI_NETNS: "" }), {
    code: 4,
    message: "required env variables [CNI_CONTAINERID,CNI_IFNAME,CNI_PATH] missing",
  });
  assertCniError(() => parseRequest({ CNI_COMMAND: "CHECK", CNI_CONTAINERID: "c" }), {
    code: 4,
    message: "required env variables [CNI_NETNS,CNI_IFNAME,CNI_PATH] missing",
  });
  assertCniError(() => parseRequest({ CNI_COMMAND: "GC" }), {
    code: 4,
    message: "required env variables [CNI_PATH] missing",
  });
  assertCniError(() => parseRequest({ CNI_COMMAND: "STATUS" }), {
    code: 4,
    message: "required env variables [CNI_PATH] missing",
  });
  assertCniError(() => parseRequest({}), {
    code: 4,
    message: "required env variables [CNI_COMMAND] missing",
  });
  assertCniError(() => parseRequest({ ...ADD_ENV, CNI_PATH: "" }), {
    code: 4,
    message: "required env variables [CNI_PATH] missing",
  });
});

Deno.test("parseRequest() accepts DEL without CNI_NETNS and VERSION alone", () => {
  const del = parseRequest({
    CNI_COMMAND: "DEL",
    CNI_CONTAINERID: "c1",
    CNI_IFNAME: "net1",
    CNI_PATH: "/opt/cni/bin",
  });
  assert.deepEqual(del, {
    command: "DEL",
    containerId: "c1",
    netns: "",
    ifName: "net1",
    args: [],
    path: ["/opt/cni/bin"],
  });
  assert.deepEqual(parseRequest({ CNI_COMMAND: "VERSION", CNI_ARGS: "bad" }), {
    command: "VERSION",
    containerId: "",
    netns: "",
    ifName: "",
    args: [],
    path: [],
  });
  assert.equal(parseRequest({ CNI_COMMAND: "GC", CNI_PATH: "/x" }).command, "GC");
  assert.equal(parseRequest({ CNI_COMMAND: "STATUS", CNI_PATH: "/x" }).command, "STATUS");
});

Deno.test("parseRequest() validates the container id and ifname as it reads them", () => {
  assertCniError(() => parseRequest({ ...ADD_ENV, CNI_CONTAINERID: "-bad/id" }), {
    code: 4,
    message: "invalid characters in containerID",
    details: "-bad/id",
  });
  // Validation comes before the missing-variable report, as in skel.
  assertCniError(() => parseRequest({ ...ADD_ENV, CNI_CONTAINERID: "a b", CNI_PATH: "" }), {
    code: 4,
    message: "invalid characters in containerID",
    details: "a b",
  });
  assertCniError(() => parseRequest({ ...ADD_ENV, CNI_IFNAME: "averyveryverylong" }), {
    code: 4,
    message: "interface name is too long",
    details: "interface name should be less than 16 characters",
  });
  // Not required for GC, so not validated.
  assert.equal(
    parseRequest({ CNI_COMMAND: "GC", CNI_PATH: "/x", CNI_CONTAINERID: "bad id" }).containerId,
    "bad id",
  );
});

Deno.test("parseRequest() rejects unknown commands", () => {
  assertCniError(() => parseRequest({ ...ADD_ENV, CNI_COMMAND: "add" }), {
    code: 4,
    message: "unknown CNI_COMMAND: add",
  });
  assertCniError(() => parseRequest({ CNI_COMMAND: "FOO" }), {
    code: 4,
    message: "unknown CNI_COMMAND: FOO",
  });
});

Deno.test("parseRequest() rejects a CNI_ARGS pair without =", () => {
  assertCniError(() => parseRequest({ ...ADD_ENV, CNI_ARGS: "A=1;oops" }), {
    code: 4,
    message: 'invalid CNI_ARGS pair "oops"',
  });
});

Deno.test("parseCniArgs() splits pairs at the first =", () => {
  assert.deepEqual(parseCniArgs(""), []);
  assert.deepEqual(parseCniArgs(";;"), []);
  assert.deepEqual(parseCniArgs("A=;B=c=d;IP=10.0.0.1/24,10.0.0.2"), [
    ["A", ""],
    ["B", "c=d"],
    ["IP", "10.0.0.1/24,10.0.0.2"],
  ]);
  assert.deepEqual(parseCniArgs("=v"), [["", "v"]]);
  assertCniError(() => parseCniArgs("K8S_POD_NAME"), {
    code: 4,
    message: 'invalid CNI_ARGS pair "K8S_POD_NAME"',
  });
});

Deno.test("validateContainerId() follows the CNI grammar", () => {
  for (const ok of ["a", "0", "abc-DEF_1.2", "f".repeat(64)]) validateContainerId(ok);
  for (const bad of ["-a", ".a", "_a", "a/b", "a b", "a:b", "é"]) {
    assertCniError(() => validateContainerId(bad), {
      code: 4,
      message: "invalid characters in containerID",
      details: bad,
    });
  }
  assertCniError(() => validateContainerId(""), { code: 3, message: "missing containerID" });
});

Deno.test("validateIfName() follows libcni's rules", () => {
  for (const ok of ["eth0", "net1", "a".repeat(15), "veth-x_y.z", "é".repeat(7)]) {
    validateIfName(ok);
  }
  assertCniError(() => validateIfName(""), { code: 4, message: "interface name is empty" });
  for (const long of ["a".repeat(16), "é".repeat(8)]) {
    assertCniError(() => validateIfName(long), {
      code: 4,
      message: "interface name is too long",
      details: "interface name should be less than 16 characters",
    });
  }
  for (const dots of [".", ".."]) {
    assertCniError(() => validateIfName(dots), { code: 4, message: "interface name is . or .." });
  }
  for (const bad of ["a/b", "a:b", "a b", "a\tb", "a\u00a0b", "a\u3000b"]) {
    assertCniError(() => validateIfName(bad), {
      code: 4,
      message: "interface name contains / or : or whitespace characters",
    });
  }
});

Deno.test("validateNetworkName() follows the CNI grammar", () => {
  validateNetworkName("my-net_1.0");
  assertCniError(() => validateNetworkName(""), { code: 7, message: "missing network name" });
  for (const bad of ["-x", "a/b", "../x", "a b"]) {
    assertCniError(() => validateNetworkName(bad), {
      code: 7,
      message: "invalid characters found in network name",
      details: bad,
    });
  }
});

Deno.test("parseConfigText() parses JSON and JSONC", () => {
  assert.deepEqual(parseConfigText('{"name":"n","big":1}'), { name: "n", big: 1 });
  assert.deepEqual(
    parseConfigText('{\n  // the network\n  "name": "n", /* x */\n  "a": [1, 2,],\n}'),
    { name: "n", a: [1, 2] },
  );
  assert.deepEqual(parseConfigText('{"url":"http://x/*y*/"}'), { url: "http://x/*y*/" });
});

Deno.test("parseConfigText() reports malformed text with line and column", () => {
  assertCniError(() => parseConfigText('{\n  "name": "n"\n  "type": "x"\n}'), {
    code: 6,
    message: 'error unmarshall network config: expected "," or "}" after a value, ' +
      'got character "\\"" at line 3 column 3',
  });
  assertCniError(() => parseConfigText(""), {
    code: 6,
    message: "error unmarshall network config: unexpected end of input at line 1 column 1",
  });
  assertCniError(() => parseConfigText("[1]"), {
    code: 6,
    message: "error unmarshall network config: expected a JSON object, got an array",
  });
  assertCniError(() => parseConfigText("null"), {
    code: 6,
    message: "error unmarshall network config: expected a JSON object, got null",
  });
});
