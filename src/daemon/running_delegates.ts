/**
 * @module
 * The daemon's running delegates, recorded in `<socketDir>/delegates/<containerId>@<pid>` (the
 * file holds the process's start time, so a reused pid is never taken for it) while each runs.
 * Whoever finds the daemon dead stops what it left running: the shim whose ADD broke off, a DEL
 * run without the daemon, the next daemon at start. Each delegate runs in its own process group,
 * so stopping it stops what it started too (an IPAM plugin, a helper). A delegate left running
 * would otherwise attach a pod after its ADD was reported failed and released.
 *
 * Small and dependency-free: the shim imports it only when the daemon broke off.
 */

/** The records' directory under the socket directory. */
export const RUNNING_DIR_NAME = "delegates";

/** How long {@linkcode stopLeftDelegates} waits for stopped processes to be gone. */
const STOP_WAIT_MS = 2_000;

function runningDir(socketDir: string): string {
  return `${socketDir.replace(/\/+$/, "")}/${RUNNING_DIR_NAME}`;
}

/**
 * Records a delegate process that just started; returns the function that removes the record
 * once it has ended. A record that cannot be written is skipped (the process is then not
 * stopped if the daemon dies), never an error for the request.
 */
export function recordDelegate(socketDir: string, containerId: string, pid: number): () => void {
  const start = startTime(pid);
  if (start === undefined) return () => {};
  const dir = runningDir(socketDir);
  const file = `${dir}/${containerId || "-"}@${pid}`;
  try {
    try {
      Deno.writeTextFileSync(file, start, { mode: 0o600 });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      Deno.writeTextFileSync(file, start, { mode: 0o600 });
    }
  } catch {
    return () => {};
  }
  return () => {
    try {
      Deno.removeSync(file);
    } catch {
      // gone already
    }
  };
}

/**
 * Stops (SIGKILL to the process group) every recorded delegate of `containerId` (all of them
 * when undefined) that still runs, removes the records, and waits a little for the processes to
 * be gone. Returns how many were stopped.
 */
export async function stopLeftDelegates(
  socketDir: string,
  containerId?: string,
): Promise<number> {
  const dir = runningDir(socketDir);
  const stopped: number[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const at = entry.name.lastIndexOf("@");
    if (at < 0 || (containerId !== undefined && entry.name.slice(0, at) !== (containerId || "-"))) {
      continue;
    }
    const pid = Number(entry.name.slice(at + 1));
    const file = `${dir}/${entry.name}`;
    let recorded = "";
    try {
      recorded = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    if (Number.isInteger(pid) && pid > 1 && startTime(pid) === recorded) {
      try {
        Deno.kill(-pid, "SIGKILL");
        stopped.push(pid);
      } catch {
        // ended meanwhile
      }
    }
    try {
      Deno.removeSync(file);
    } catch {
      // removed by its daemon meanwhile
    }
  }
  for (let waited = 0; waited < STOP_WAIT_MS && stopped.some(groupRuns); waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return stopped.length;
}

/** The start time of a process (field 22 of `/proc/<pid>/stat`), or undefined when gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** True while a process of the group runs (zombies do not count). */
function groupRuns(pgid: number): boolean {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // fields[0] is the state, fields[2] the process group.
      if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") return true;
    } catch {
      // ended meanwhile
    }
  }
  return false;
}
