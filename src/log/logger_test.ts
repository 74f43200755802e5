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

/** Runs `body` (a program using `Logger`, `FILE_RETRY_MS`, `MAX_LINE_CHARS` and `dir`). */
async function runLogger(dir: string, body: string): Promise<string> {
  const program = `
    import { FILE_RETRY_MS, Logger, MAX_LINE_CHARS } from "${
    new URL("./logger.ts", import.meta.url).href
  }";
    const dir = ${JSON.stringify(dir)};
    ${body}
  `;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", program] }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, stderr);
  return stderr;
}

function messages(text: string): string[] {
  return text.split("\n").filter(Boolean).map((l) => l.replace(/^\S+ \[\w+\] /, ""));
}

Deno.test("logger: a failing log file is said once, its lines go to stderr, and it is used again once it can be", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const stderr = await runLogger(
      dir,
      `
      let t = Date.parse("2030-01-01T00:00:00Z");
      const log = new Logger({ now: () => t });
      // A file where the log's directory should be: the directory cannot be created.
      Deno.writeTextFileSync(dir + "/blocked", "");
      log.configure({ level: "debug", toStderr: false, file: dir + "/blocked/multus.log" });
      log.debug("one");
      log.debug("two");
      t += FILE_RETRY_MS - 1;
      log.always("error", "three");
      Deno.removeSync(dir + "/blocked");
      t += 1;
      log.debug("four");
      log.debug("five");
    `,
    );
    const said = messages(stderr);
    assert.equal(said.length, 5, stderr);
    assert.match(
      said[0],
      new RegExp(`^cannot write log file ${dir}/blocked/multus.log: .+; its lines go to stderr`),
    );
    assert.deepEqual(said.slice(1), [
      "one",
      "two",
      "three",
      `log file ${dir}/blocked/multus.log can be written again`,
    ]);
    assert.deepEqual(messages(await Deno.readTextFile(`${dir}/blocked/multus.log`)), [
      "four",
      "five",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("logger: a line is bounded however long the message", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await runLogger(
      dir,
      `
      const log = new Logger();
      log.configure({ level: "debug", toStderr: false, file: dir + "/m.log" });
      log.setContext({ pod: "ns/p" });
      log.debug("x".repeat(3 * MAX_LINE_CHARS));
      log.debug("\\u0001".repeat(3 * MAX_LINE_CHARS));
      log.debug("😀".repeat(MAX_LINE_CHARS));
      log.debug("a" + "😀".repeat(MAX_LINE_CHARS));
      log.debug("short");
    `,
    );
    const lines = (await Deno.readTextFile(`${dir}/m.log`)).split("\n").filter(Boolean);
    assert.equal(lines.length, 5);
    const max = 64 * 1024;
    assert.match(lines[0], /pod=ns\/p x+\.\.\. \[\d+ more characters cut\]$/);
    assert.ok(lines[0].length < max + 100, `${lines[0].length}`);
    assert.match(lines[1], /(\\u0001)+\.\.\. \[\d+ more characters cut\]$/);
    assert.ok(lines[1].length < 6 * max + 100, `${lines[1].length}`);
    // Cut between two characters, not inside one (no lone surrogate, so no U+FFFD), whichever
    // way the emoji fall on the limit.
    for (const line of lines.slice(2, 4)) {
      assert.match(line, /😀\.\.\. \[\d+ more characters cut\]$/);
      assert.ok(!line.includes("\ufffd"));
    }
    assert.match(lines[4], / short$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("logger: only Multus's four level names are levels", async () => {
  const { parseLogLevel } = await import("./logger.ts");
  assert.equal(parseLogLevel("VERbose"), "verbose");
  for (const name of ["constructor", "toString", "__proto__", "max", ""]) {
    assert.equal(parseLogLevel(name), undefined, name);
  }
});

Deno.test("logger: a rotation queues its backup for compression; settled() resolves once it is a .gz", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { Logger } = await import("./logger.ts");
    const log = new Logger();
    // 2 KB per file: each rotation leaves a backup with about that much in it.
    log.configure({
      level: "debug",
      toStderr: false,
      file: `${dir}/multus.log`,
      rotation: { maxSize: 2 / 1024, maxBackups: 3 },
    });
    for (let i = 0; i < 200; i++) log.debug(`line ${i} ${"x".repeat(40)}`);
    await log.settled();
    const files: string[] = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    const backups = files.filter((n) => n !== "multus.log");
    assert.ok(backups.length >= 1 && backups.length <= 3, `kept: ${files}`);
    assert.ok(backups.every((n) => n.endsWith(".log.gz")), `all compressed: ${files}`);

    log.configure({ rotation: { compress: false } });
    for (let i = 0; i < 100; i++) log.debug(`line ${i} ${"x".repeat(40)}`);
    await log.settled();
    const after: string[] = [];
    for await (const e of Deno.readDir(dir)) after.push(e.name);
    assert.ok(after.some((n) => /\.log$/.test(n) && n !== "multus.log"), `plain: ${after}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
