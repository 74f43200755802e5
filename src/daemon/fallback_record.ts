/**
 * @module
 * Reads the record shims keep of the requests they ran without the daemon
 * (`<socketDir>/fallbacks.log`, one JSON line each) and counts them by command and reason,
 * incrementally: each read takes only the lines appended since the last one. Lines written
 * while the daemon was away are counted when it starts.
 */

/** One count per command and reason. */
export interface FallbackCount {
  command: string;
  reason: string;
  count: number;
}

/** Past this size the daemon starts the record afresh (its counts are kept in memory). */
const MAX_RECORD_BYTES = 256 * 1024;

/** Incremental counts of a fallback record file. */
export class FallbackRecord {
  #path: string;
  #offset = 0;
  #partial = "";
  #counts = new Map<string, FallbackCount>();

  constructor(path: string) {
    this.#path = path;
  }

  /** The counts so far, after reading what was appended since the last call. */
  read(): FallbackCount[] {
    this.#readNew();
    return [...this.#counts.values()];
  }

  #readNew(): void {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(this.#path, { read: true });
    } catch {
      return; // no fallback yet
    }
    try {
      const size = file.statSync().size;
      if (size < this.#offset) {
        // Started afresh by someone else: read it from the beginning.
        this.#offset = 0;
        this.#partial = "";
      }
      if (size === this.#offset) return;
      const bytes = new Uint8Array(size - this.#offset);
      file.seekSync(this.#offset, Deno.SeekMode.Start);
      let got = 0;
      while (got < bytes.length) {
        const n = file.readSync(bytes.subarray(got));
        if (n === null) break;
        got += n;
      }
      this.#offset += got;
      this.#count(new TextDecoder().decode(bytes.subarray(0, got)));
    } finally {
      file.close();
    }
    if (this.#offset > MAX_RECORD_BYTES && this.#partial === "") {
      try {
        Deno.truncateSync(this.#path, 0);
        this.#offset = 0;
      } catch {
        // read-only or gone: counts stay right, the file keeps growing
      }
    }
  }

  #count(text: string): void {
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() === "") continue;
      let entry: { command?: unknown; reason?: unknown };
      try {
        entry = JSON.parse(line);
      } catch {
        entry = {};
      }
      const command = typeof entry.command === "string" ? entry.command : "unknown";
      const reason = typeof entry.reason === "string" ? entry.reason : "unknown";
      const key = `${command}\n${reason}`;
      const count = this.#counts.get(key) ?? { command, reason, count: 0 };
      count.count++;
      this.#counts.set(key, count);
    }
  }
}
