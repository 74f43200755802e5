/**
 * @module
 * Splits a byte stream into text lines without holding more than one line: the reader of a
 * never-ending stream (a Kubernetes watch) needs each line as it arrives and a bound on how
 * long one may grow.
 */

/** A line longer than the limit given to {@linkcode splitLines}. */
export class LineTooLongError extends RangeError {
  override name = "LineTooLongError";
  /** The limit, in bytes. */
  readonly limit: number;

  constructor(limit: number) {
    super(`Cannot read line: it is longer than ${limit} bytes`);
    this.limit = limit;
  }
}

/** Options of {@linkcode splitLines}. */
export interface SplitLinesOptions {
  /** Longest line accepted, in bytes, without its newline. */
  maxLineBytes: number;
}

const NEWLINE = 0x0a;

/**
 * Yields each `\n`-terminated line of `chunks` (UTF-8, newline removed) as soon as it is
 * complete; a last line without newline is yielded at the end.
 *
 * @throws {LineTooLongError} as soon as a line grows past `maxLineBytes`, before it ends.
 *
 * @example
 * ```ts ignore
 * for await (const line of splitLines(response.body!, { maxLineBytes: 1 << 20 })) {
 *   handle(JSON.parse(line));
 * }
 * ```
 */
export async function* splitLines(
  chunks: AsyncIterable<Uint8Array>,
  options: SplitLinesOptions,
): AsyncGenerator<string, void, undefined> {
  const limit = options.maxLineBytes;
  const decoder = new TextDecoder();
  /** Pieces of the line read so far (kept apart: joining on each chunk would be quadratic). */
  let parts: Uint8Array[] = [];
  let pending = 0;
  for await (const chunk of chunks) {
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(NEWLINE, start);
      const stop = end === -1 ? chunk.length : end;
      if (pending + (stop - start) > limit) throw new LineTooLongError(limit);
      if (end === -1) {
        parts.push(chunk.subarray(start));
        pending += chunk.length - start;
        break;
      }
      const tail = chunk.subarray(start, end);
      yield decoder.decode(
        parts.length === 0 ? tail : join([...parts, tail], pending + tail.length),
      );
      parts = [];
      pending = 0;
      start = end + 1;
    }
  }
  if (pending > 0) yield decoder.decode(join(parts, pending));
}

function join(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
