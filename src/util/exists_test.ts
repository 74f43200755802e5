import assert from "node:assert/strict";
import { exists } from "./exists.ts";
import { join } from "./path.ts";

Deno.test("exists: a file and a directory are there, a missing path is not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "file"), "x");
    assert.equal(await exists(join(dir, "file")), true);
    assert.equal(await exists(dir), true);
    assert.equal(await exists(join(dir, "missing")), false);
    assert.equal(await exists(join(dir, "missing"), { followLinks: false }), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("exists: a dangling link counts only without following links", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.symlink(join(dir, "gone"), join(dir, "link"));
    assert.equal(await exists(join(dir, "link")), false);
    assert.equal(await exists(join(dir, "link"), { followLinks: false }), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
