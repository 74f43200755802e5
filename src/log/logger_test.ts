import assert from "node:assert/strict";

/** Runs a tiny program that logs `lines` lines with the given rotation; returns the files. */
async function logWith(rotation: Record<string, number>, lines: number): Promise<string[]> {
  const dir = await Deno.makeTempDir();
  try {
    const program = `
      import { log } from "${new URL("./logger.ts", import.meta.url).href}";
      log.configure({ level: "debug", toStderr: false, file: "${dir}/multus.log", rotation: ${
      JSON.stringify(rotation)
    } });
      for (let i = 0; i < ${lines}; i++) log.debug("line " + i);
    `;
    const out = await new Deno.Command(Deno.execPath(), { args: ["eval", program] }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const files: string[] = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    return files.sort();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("logger: zero logOptions mean Multus's defaults, not a rotation per line", async () => {
  assert.deepEqual(await logWith({ maxSize: 0, maxBackups: 0, maxAge: 0 }, 50), ["multus.log"]);
  assert.deepEqual(await logWith({}, 50), ["multus.log"]);
});

Deno.test("logger: one line per event, control characters escaped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const program = `
      import { log } from "${new URL("./logger.ts", import.meta.url).href}";
      log.configure({ level: "verbose", toStderr: false, file: "${dir}/m.log" });
      log.setContext({ containerId: "abcdef0123456789", pod: "ns/p" });
      log.verbose("two\\nlines\\rand \\u001b[31mred", { network: "ns/net" });
      log.debug("not written at verbose");
    `;
    const out = await new Deno.Command(Deno.execPath(), { args: ["eval", program] }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const text = await Deno.readTextFile(`${dir}/m.log`);
    const lines = text.split("\n").filter(Boolean);
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /^\d{4}-\d\d-\d\dT[\d:.]+Z \[verbose\] container=abcdef012345 pod=ns\/p network=ns\/net two\\nlines\\u000dand \\u001b\[31mred$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
