/**
 * The log file as an operator sees it: the plugin run through its launcher by a "runtime"
 * (this test), writing to a `logFile` that must be rotated, or whose directory does not exist
 * yet, or that cannot be written at all.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeTestRoot, type PluginRun, type TestRoot } from "../helpers/plugin_run.ts";

/** A configuration that loads (so logging is configured) and then fails the command. */
function failingConf(logFile: string, extra: Record<string, unknown> = {}) {
  return {
    cniVersion: "9.9.9",
    name: "multus-log-test",
    type: "multus",
    logFile,
    delegates: [{ cniVersion: "1.0.0", name: "lo", type: "loopback" }],
    ...extra,
  };
}

async function failingAdd(
  root: TestRoot,
  logFile: string,
  extra: Record<string, unknown> = {},
): Promise<PluginRun> {
  const run = await root.run({
    command: "ADD",
    // Far from UTC, so a backup named by local time would show.
    env: { TZ: "Asia/Tokyo" },
    containerId: "ctr-log-test",
    // Never opened: the version check fails first.
    netns: "/run/netns/multus-log-test-none",
    config: failingConf(logFile, extra),
  });
  assert.equal(run.code, 1, `the command fails: ${run.stdout} ${run.stderr}`);
  assert.match(String(run.json?.msg), /incompatible CNI versions/);
  return run;
}

/** lumberjack's backup timestamp ("2006-01-02T15-04-05.000", UTC) of `daysAgo` days ago. */
function stamp(daysAgo: number): string {
  return new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 23).replaceAll(
    ":",
    "-",
  );
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

Deno.test("log rotation removes only the backups it made, never other files that share the log file's stem", async () => {
  const root = await makeTestRoot();
  try {
    const dir = join(root.dir, "logs");
    await Deno.mkdir(dir);
    const logFile = join(dir, "multus.log");
    // Over the default maxSize (100 MB) without using the disk: one more line rotates it.
    await Deno.writeTextFile(logFile, "old line\n");
    await Deno.truncate(logFile, 100 * 1024 * 1024);

    const old = new Date(Date.now() - 30 * 86_400_000);
    const foreign = [
      "multus-daemon.log",
      "multus-keep.conf",
      "multus-notes",
      "multus-.log",
      `multus-${stamp(30)}.log.bak`, // a backup someone copied aside
      `multus-${stamp(30)}.txt`, // another extension
      `multus-${stamp(30).slice(0, 19)}.log`, // no milliseconds: not lumberjack's format
      `multus-${stamp(30)}Z.log`, // not lumberjack's format either
      "multus-2020-13-01T00-00-00.000.log", // no month 13
      "multus-2021-02-30T00-00-00.000.log", // no 30 February
      `multus-daemon-${stamp(30)}.log`, // the backup of another log file (multus-daemon.log)
      `other-${stamp(30)}.log`,
    ];
    for (const name of foreign) {
      await Deno.writeTextFile(join(dir, name), `${name}\n`);
      await Deno.utime(join(dir, name), old, old);
    }
    // A directory with a backup's name is not a backup.
    const directory = `multus-${stamp(40)}.log`;
    await Deno.mkdir(join(dir, directory));

    // Backups in lumberjack's naming: the two older than maxAge (5 days) go, of the rest the
    // five newest stay (a backup and its .gz count once); age comes from the name, as
    // lumberjack does, not from the modification time.
    const expired = [`multus-${stamp(6)}.log`, `multus-${stamp(7)}.log.gz`];
    const recent = [1, 2, 3, 4].map((d) => `multus-${stamp(d / 10)}.log`);
    const compressedTwin = `${recent[3]}.gz`;
    const beyondMaxBackups = [`multus-${stamp(4)}.log`, `multus-${stamp(4.5)}.log.gz`];
    for (const name of [...expired, ...recent, compressedTwin, ...beyondMaxBackups]) {
      await Deno.writeTextFile(join(dir, name), "backup\n");
    }
    // A recent backup with an old modification time stays.
    await Deno.utime(join(dir, recent[0]), old, old);

    const before = Date.now();
    // Uncompressed, so the pruning is seen by name alone (compression has its own tests).
    const run = await failingAdd(root, logFile, { logOptions: { compress: false } });
    const end = Date.now();
    assert.doesNotMatch(run.stderr, /cannot write log file/);

    const after = await listDir(dir);
    const lost = [...foreign, directory].filter((n) => !after.includes(n));
    assert.deepEqual(lost, [], "files rotation did not make are never removed");
    const made = after.filter((n) =>
      /^multus-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$/.test(n) &&
      ![...recent, ...foreign, directory].includes(n)
    );
    assert.equal(made.length, 1, `one new backup: ${after.join(", ")}`);
    const madeAt = Date.parse(
      `${made[0].slice(7, 17)}T${made[0].slice(18, 30).replaceAll("-", ":")}Z`,
    );
    assert.ok(
      madeAt >= before - 1 && madeAt <= end,
      `the backup is named by the UTC time of rotation: ${made[0]}`,
    );
    assert.equal((await Deno.stat(join(dir, made[0]))).size, 100 * 1024 * 1024);

    assert.deepEqual(
      after,
      [
        "multus.log",
        ...made,
        ...foreign,
        directory,
        ...recent,
        compressedTwin,
      ].sort(),
      "kept: the log, the new backup, every foreign file, the four newest older backups",
    );
    const text = await Deno.readTextFile(logFile);
    assert.match(
      text,
      /^\S+ \[error\] container=ctr-log-test ADD failed: incompatible CNI versions/,
    );
    assert.equal(text.split("\n").filter(Boolean).length, 1);
  } finally {
    await root.cleanup();
  }
});

Deno.test("log rotation with maxBackups and maxAge 0 keeps every backup, and never touches foreign files", async () => {
  const root = await makeTestRoot();
  try {
    const logFile = join(root.dir, "plugin"); // no extension: backups are plugin-<stamp>
    await Deno.writeTextFile(logFile, "x".repeat(2 * 1024 * 1024));
    const old = new Date(Date.now() - 30 * 86_400_000);
    const names = [`plugin-${stamp(30)}`, `plugin-${stamp(31)}.gz`, "plugin-keep", "plugin-x.log"];
    for (const name of names) {
      await Deno.writeTextFile(join(root.dir, name), "kept\n");
      await Deno.utime(join(root.dir, name), old, old);
    }
    await failingAdd(root, logFile, {
      logOptions: { maxSize: 1, maxBackups: 0, maxAge: 0, compress: false },
    });
    const after = await listDir(root.dir);
    for (const name of names) assert.ok(after.includes(name), `${name} kept: ${after}`);
    const made = after.filter((n) => /^plugin-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}$/.test(n));
    assert.equal(made.length, 2, `the old backup and the new one: ${after}`);
    assert.equal((await Deno.stat(logFile)).size < 1024, true, "the log was rotated");
  } finally {
    await root.cleanup();
  }
});

Deno.test("a logFile in a directory that does not exist: the directory is created (0755) and the line written", async () => {
  const root = await makeTestRoot();
  try {
    const logFile = join(root.dir, "var", "log", "multus", "multus.log");
    const run = await failingAdd(root, logFile, { logLevel: "debug", logToStderr: false });
    assert.doesNotMatch(run.stderr, /cannot write log file/);
    const text = await Deno.readTextFile(logFile);
    assert.match(text, /\[debug\] container=ctr-log-test ADD: configuration loaded/);
    assert.match(text, /\[error\] container=ctr-log-test ADD failed: incompatible CNI versions/);
    const umask = Number.parseInt(
      /^Umask:\s*(\d+)/m.exec(await Deno.readTextFile("/proc/self/status"))![1],
      8,
    );
    for (const sub of ["var", "var/log", "var/log/multus"]) {
      const info = await Deno.stat(join(root.dir, sub));
      assert.equal(info.mode! & 0o777, 0o755 & ~umask, `mode of ${sub}`);
    }
    assert.equal((await Deno.stat(logFile)).mode! & 0o777, 0o600);
  } finally {
    await root.cleanup();
  }
});

Deno.test("an unwritable logFile: said once on stderr, and the lines meant for the file go to stderr instead of being lost", async () => {
  const root = await makeTestRoot();
  try {
    const logFile = join(root.dir, "a-directory");
    await Deno.mkdir(logFile);
    const run = await failingAdd(root, logFile, { logLevel: "debug", logToStderr: false });
    assert.match(run.stderr, /\[debug\] container=ctr-log-test ADD: configuration loaded/);
    assert.equal(run.stderr.match(/cannot write log file/g)?.length, 1, run.stderr);
    assert.match(run.stderr, new RegExp(`cannot write log file ${logFile}: .*stderr`));
    // The final error reaches stderr once, not once for stderr and once for the file.
    assert.equal(run.stderr.match(/ADD failed: incompatible CNI versions/g)?.length, 1);
  } finally {
    await root.cleanup();
  }
});

/** The lines of a log of `size` bytes, each numbered, so a wrong or cut copy shows. */
function logText(size: number): string {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const line = `2026-01-01T00:00:00.000Z [debug] container=ctr-old line ${i} ${
      "x".repeat(i % 97)
    }\n`;
    lines.push(line);
    length += line.length;
  }
  return lines.join("");
}

async function gunzip(path: string): Promise<string> {
  const file = await Deno.open(path);
  const text = file.readable.pipeThrough(new DecompressionStream("gzip"))
    .pipeThrough(new TextDecoderStream());
  let out = "";
  for await (const part of text) out += part;
  return out;
}

const BACKUP = /^multus-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log/;

Deno.test("log rotation with compress (Multus's default): the backup is gzipped with the log's content and mode, the uncompressed one removed", async () => {
  const root = await makeTestRoot();
  try {
    const dir = join(root.dir, "logs");
    await Deno.mkdir(dir);
    const logFile = join(dir, "multus.log");
    const old = logText(1024 * 1024 + 10);
    await Deno.writeTextFile(logFile, old, { mode: 0o600 });

    const run = await failingAdd(root, logFile, { logOptions: { maxSize: 1 } });
    assert.doesNotMatch(run.stderr, /cannot (write|compress)/);

    const after = await listDir(dir);
    const backups = after.filter((n) => BACKUP.test(n));
    assert.equal(backups.length, 1, `one backup: ${after.join(", ")}`);
    assert.match(backups[0], /\.log\.gz$/, "the backup is compressed");
    assert.deepEqual(after, [backups[0], "multus.log"], "no uncompressed backup, no temp file");
    assert.equal(await gunzip(join(dir, backups[0])), old, "the .gz holds the rotated log");
    assert.equal((await Deno.stat(join(dir, backups[0]))).mode! & 0o777, 0o600);
    assert.match(
      await Deno.readTextFile(logFile),
      /^\S+ \[error\] container=ctr-log-test ADD failed/,
    );
  } finally {
    await root.cleanup();
  }
});

Deno.test("log rotation with compress: false leaves the backup uncompressed", async () => {
  const root = await makeTestRoot();
  try {
    const logFile = join(root.dir, "multus.log");
    const old = logText(1024 * 1024 + 10);
    await Deno.writeTextFile(logFile, old);
    await failingAdd(root, logFile, { logOptions: { maxSize: 1, compress: false } });
    const backups = (await listDir(root.dir)).filter((n) => BACKUP.test(n));
    assert.equal(backups.length, 1);
    assert.match(backups[0], /\.log$/);
    assert.equal(await Deno.readTextFile(join(root.dir, backups[0])), old);
  } finally {
    await root.cleanup();
  }
});

Deno.test("log rotation with compress finishes what an interrupted compression left: kept plain backups gzipped, a plain twin of a .gz removed, stale temp files removed, pruned ones not compressed", async () => {
  const root = await makeTestRoot();
  try {
    const dir = join(root.dir, "logs");
    await Deno.mkdir(dir);
    const logFile = join(dir, "multus.log");
    await Deno.writeTextFile(logFile, logText(1024 * 1024 + 10));
    // Left by runs stopped mid-compression: a plain backup, a plain backup whose .gz was
    // completed, and the temp file of a process that is gone.
    const plain = `multus-${stamp(1)}.log`;
    const twin = `multus-${stamp(2)}.log`;
    const plainText = logText(5000);
    await Deno.writeTextFile(join(dir, plain), plainText);
    await Deno.writeTextFile(join(dir, twin), "plain twin\n");
    await Deno.writeFile(
      join(dir, `${twin}.gz`),
      await new Response(
        new Blob(["compressed twin\n"]).stream().pipeThrough(new CompressionStream("gzip")),
      ).bytes(),
    );
    const staleTemp = `.${plain}.gz.tmp-2147483646-0badf00d`;
    await Deno.writeTextFile(join(dir, staleTemp), "half a gzip");
    // Beyond maxBackups: removed, not compressed.
    const pruned = `multus-${stamp(3)}.log`;
    await Deno.writeTextFile(join(dir, pruned), "old\n");

    await failingAdd(root, logFile, { logOptions: { maxSize: 1, maxBackups: 3 } });

    const after = await listDir(dir);
    const made = after.filter((n) => BACKUP.test(n) && ![`${plain}.gz`, `${twin}.gz`].includes(n));
    assert.equal(made.length, 1, `the new backup: ${after.join(", ")}`);
    assert.match(made[0], /\.log\.gz$/);
    assert.deepEqual(after, ["multus.log", made[0], `${plain}.gz`, `${twin}.gz`].sort());
    assert.equal(await gunzip(join(dir, `${plain}.gz`)), plainText);
    assert.equal(await gunzip(join(dir, `${twin}.gz`)), "compressed twin\n");
  } finally {
    await root.cleanup();
  }
});
