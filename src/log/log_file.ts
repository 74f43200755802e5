/**
 * @module
 * The log file on disk, named and rotated as Multus's lumberjack (gopkg.in/natefinch/
 * lumberjack.v2) does it, so a node moving between Go Multus and this plugin keeps one set of
 * backups: `<dir>/<stem><ext>` is moved to `<dir>/<stem>-<UTC 2006-01-02T15-04-05.000><ext>`,
 * optionally compressed to `….gz`. Only names of exactly that form are backups; anything else
 * in the directory (`multus-daemon.log`, `multus-keep.conf`) is never touched.
 */

import { basename, dirname } from "../util/path.ts";

/** Rotation limits of the log file (Multus `logOptions`). */
export interface LogRotation {
  /** Rotate when the file reaches this many megabytes (default 100). */
  maxSize: number;
  /** Backups to keep (default 5). */
  maxBackups: number;
  /** Delete backups older than this many days (default 5). */
  maxAge: number;
  /** Gzip the backups (default true, as Multus sets it). */
  compress: boolean;
}

/** The parts of a log file's path that name its backups (Go's filepath.Dir, Base and Ext). */
interface LogFileName {
  dir: string;
  stem: string;
  ext: string;
}

const COMPRESSED = ".gz";

/**
 * Mode of the directories created for the log file: lumberjack's since v2.1 (Multus v4.0.2
 * pins v2.0.0, whose 0744 leaves the directory untraversable for anyone but root).
 */
const DIR_MODE = 0o755;

const STAMP = /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}$/;

function splitPath(path: string): LogFileName {
  const dir = dirname(path);
  const base = basename(path);
  const dot = base.lastIndexOf(".");
  return dot >= 0
    ? { dir, stem: base.slice(0, dot), ext: base.slice(dot) }
    : { dir, stem: base, ext: "" };
}

/** lumberjack's backup timestamp of `time` (ms): "2006-01-02T15-04-05.000" in UTC. */
function backupStamp(time: number): string {
  return new Date(time).toISOString().slice(0, 23).replaceAll(":", "-");
}

/** The time (ms) a backup stamp stands for; undefined unless `backupStamp` writes it so. */
function stampTime(stamp: string): number | undefined {
  if (!STAMP.test(stamp)) return undefined;
  const time = Date.parse(`${stamp.slice(0, 10)}T${stamp.slice(11).replaceAll("-", ":")}Z`);
  // The round trip refuses what no clock shows (month 13, 30 February, hour 24).
  return Number.isNaN(time) || backupStamp(time) !== stamp ? undefined : time;
}

/** The name a backup made at `time` gets. */
function backupName(path: string, time: number): string {
  const { dir, stem, ext } = splitPath(path);
  return `${dir}/${stem}-${backupStamp(time)}${ext}`;
}

/**
 * When `entry` (a name in the log file's directory) is a backup of `log`: its time and its
 * name without the compression suffix (a backup and its compressed copy count once).
 */
function asBackup(entry: string, log: LogFileName): { time: number; plain: string } | undefined {
  const prefix = `${log.stem}-`;
  if (!entry.startsWith(prefix)) return undefined;
  for (const suffix of [log.ext, `${log.ext}${COMPRESSED}`]) {
    if (!entry.endsWith(suffix) || entry.length < prefix.length + suffix.length) continue;
    const time = stampTime(entry.slice(prefix.length, entry.length - suffix.length));
    if (time !== undefined) {
      return { time, plain: entry.slice(0, entry.length - suffix.length) + log.ext };
    }
  }
  return undefined;
}

/**
 * Rotates the file at `path` when it has reached `rotation.maxSize`, then removes the
 * backups beyond `maxBackups` (newest kept) or older than `maxAge` days, by the time in their
 * names, as lumberjack does. Failures are left for the next rotation: another run may have
 * rotated the file first, and a backup that cannot be removed now can be later.
 *
 * Returns, when it rotated and `rotation.compress` is set, the paths of the kept backups that
 * are not compressed yet, newest first: the one just made, and any an interrupted compression
 * left (lumberjack compresses every kept backup without `.gz`). Otherwise `[]`.
 */
export function rotateLogFile(path: string, rotation: LogRotation, now: number): string[] {
  let size: number;
  try {
    size = Deno.statSync(path).size;
  } catch {
    return []; // not there yet, or the append will say what is wrong
  }
  if (size < rotation.maxSize * 1024 * 1024) return [];
  const backup = backupName(path, now);
  try {
    Deno.renameSync(path, backup);
  } catch {
    return []; // another run rotated it first
  }
  try {
    return pruneBackups(path, rotation, now);
  } catch {
    // directory unreadable: the next rotation tries again
    return rotation.compress ? [backup] : [];
  }
}

/** Removes the backups beyond the limits; returns the kept uncompressed ones to compress. */
function pruneBackups(path: string, rotation: LogRotation, now: number): string[] {
  if (rotation.maxBackups === Infinity && rotation.maxAge === Infinity && !rotation.compress) {
    return [];
  }
  const log = splitPath(path);
  const backups: { name: string; time: number; plain: string }[] = [];
  for (const entry of Deno.readDirSync(log.dir)) {
    if (!entry.isFile) continue;
    const backup = asBackup(entry.name, log);
    if (backup) backups.push({ name: entry.name, ...backup });
  }
  backups.sort((a, b) => b.time - a.time);
  const cutoff = now - rotation.maxAge * 86_400_000;
  const kept = new Set<string>();
  const uncompressed: string[] = [];
  for (const backup of backups) {
    kept.add(backup.plain);
    if (kept.size <= rotation.maxBackups && backup.time >= cutoff) {
      if (rotation.compress && backup.name === backup.plain) {
        uncompressed.push(`${log.dir}/${backup.name}`);
      }
      continue;
    }
    try {
      Deno.removeSync(`${log.dir}/${backup.name}`);
    } catch {
      // already gone (another run pruned it)
    }
  }
  return uncompressed;
}

/**
 * Appends `bytes` to the file with one write (concurrent runs' lines never interleave),
 * creating the file (0600) and, as lumberjack does, its missing directories.
 */
export function appendToLogFile(path: string, bytes: Uint8Array): void {
  const options = { append: true, create: true, mode: 0o600 } as const;
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, options);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    Deno.mkdirSync(splitPath(path).dir, { recursive: true, mode: DIR_MODE });
    file = Deno.openSync(path, options);
  }
  try {
    let written = 0;
    while (written < bytes.length) {
      const n = file.writeSync(bytes.subarray(written));
      if (n <= 0) throw new Error("the file system took no bytes");
      written += n;
    }
  } finally {
    file.close();
  }
}
