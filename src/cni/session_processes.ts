/**
 * @module
 * The processes of one session as `/proc` shows them: what a plugin (started as a session
 * leader) left running after it exited.
 */

/** A process: its id and command name. */
export interface ProcessInfo {
  pid: number;
  /** The command name (`comm`, at most 15 characters). */
  name: string;
}

/**
 * Processes whose session id is `sid`, in pid order, at most `limit`; [] when `/proc`
 * cannot be read. Processes that end while the list is read are left out.
 */
export async function processesInSession(sid: number, limit = 5): Promise<ProcessInfo[]> {
  const found: ProcessInfo[] = [];
  try {
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      const info = await sessionMember(Number(entry.name), sid);
      if (info) found.push(info);
    }
  } catch {
    // no /proc: nothing to name
  }
  return found.sort((a, b) => a.pid - b.pid).slice(0, limit);
}

/** `pid` as a ProcessInfo when its session is `sid` (fields of `proc_pid_stat(5)`). */
async function sessionMember(pid: number, sid: number): Promise<ProcessInfo | undefined> {
  let stat: string;
  try {
    stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp session ...": comm may itself contain ") ".
  const open = stat.indexOf("(");
  const close = stat.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const fields = stat.slice(close + 2).split(" ");
  if (Number(fields[3]) !== sid || fields[0] === "Z") return undefined;
  return { pid, name: stat.slice(open + 1, close) };
}

/** `process 123 (sleep)`, `processes 123 (sleep), 124 (sh)`, for messages. */
export function describeProcesses(processes: ProcessInfo[]): string {
  const list = processes.map((p) => `${p.pid} (${p.name})`).join(", ");
  return `${processes.length === 1 ? "process" : "processes"} ${list}`;
}
