import assert from "node:assert/strict";
import * as nodePath from "node:path";
import { isIP } from "node:net";
import { basename, dirname, extname, join, normalize, resolve } from "./path.ts";
import { ipFamily } from "./ip.ts";

Deno.test("path helpers agree with node:path on POSIX paths", () => {
  const samples = [
    "/a/b/c",
    "a/b/",
    "/",
    "",
    ".",
    "..",
    "a/../../b",
    "/a/./b//c/..",
    "x.conf",
    "/etc/cni/net.d/00-multus.conflist",
    ".hidden",
    "a/b.c.d",
  ];
  for (const p of samples) {
    assert.equal(
      normalize(p),
      nodePath.normalize(p).replace(/\/$/, "") || (p.startsWith("/") ? "/" : "."),
      `normalize ${p}`,
    );
    if (p !== "") {
      assert.equal(dirname(p), nodePath.dirname(p), `dirname ${p}`);
      assert.equal(basename(p), nodePath.basename(p), `basename ${p}`);
      assert.equal(extname(p), nodePath.extname(p), `extname ${p}`);
    }
  }
  assert.equal(join("/var/lib/cni", "multus", "abc"), "/var/lib/cni/multus/abc");
  assert.equal(join("/a", "../b"), "/b");
  assert.equal(resolve("x"), nodePath.resolve("x"));
  assert.equal(resolve("/x/../y"), "/y");
});

Deno.test("ipFamily() agrees with node:net isIP", () => {
  const samples = [
    "1.2.3.4",
    "255.255.255.255",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3",
    "::",
    "::1",
    "fe80::1",
    "2001:db8::5",
    "::ffff:1.2.3.4",
    "1::2::3",
    "12345::",
    "a:b:c:d:e:f:1:2",
    "a:b:c:d:e:f:1:2:3",
    "fe80::1%eth0",
    "",
    "x",
    "1.2.3.4/24",
  ];
  for (const s of samples) {
    const expected = s.includes("%") ? 0 : isIP(s);
    assert.equal(ipFamily(s), expected, s);
  }
});
