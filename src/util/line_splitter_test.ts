import assert from "node:assert/strict";
import { LineTooLongError, splitLines } from "./line_splitter.ts";

async function* chunksOf(...parts: string[]): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder();
  for (const part of parts) yield encoder.encode(part);
}

async function collect(source: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of source) out.push(line);
  return out;
}

Deno.test("splitLines() joins lines split across chunks and splits chunks holding several", async () => {
  const lines = await collect(
    splitLines(chunksOf('{"a":', '1}\n{"b":2}\n{"c"', ":3}\n\n", "tail"), { maxLineBytes: 100 }),
  );
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}', "", "tail"]);
});

Deno.test("splitLines() decodes UTF-8 split inside a character", async () => {
  const bytes = new TextEncoder().encode("é€\n");
  async function* split(): AsyncGenerator<Uint8Array> {
    yield bytes.subarray(0, 1);
    yield bytes.subarray(1, 3);
    yield bytes.subarray(3);
  }
  assert.deepEqual(await collect(splitLines(split(), { maxLineBytes: 10 })), ["é€"]);
});

Deno.test("splitLines() rejects a line past the limit before it ends", async () => {
  let pulled = 0;
  async function* endless(): AsyncGenerator<Uint8Array> {
    for (;;) {
      pulled++;
      yield new Uint8Array(64).fill(0x61);
    }
  }
  await assert.rejects(
    () => collect(splitLines(endless(), { maxLineBytes: 1000 })),
    (err: unknown) => err instanceof LineTooLongError && err.limit === 1000,
  );
  assert.equal(pulled, 16, "stopped at the chunk that crossed the limit");
  // exactly at the limit is fine
  const ok = await collect(splitLines(chunksOf("x".repeat(10) + "\n"), { maxLineBytes: 10 }));
  assert.deepEqual(ok, ["x".repeat(10)]);
});
