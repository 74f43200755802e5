import assert from "node:assert/strict";
import { FallbackRecord } from "./fallback_record.ts";

Deno.test("FallbackRecord counts lines by command and reason, reading only what was appended", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/fallbacks.log`;
    const record = new FallbackRecord(path);
    assert.deepEqual(record.read(), []);
    const line = (command: string, reason: string) =>
      JSON.stringify({ time: "t", command, reason }) + "\n";
    await Deno.writeTextFile(path, line("ADD", "no-socket") + line("DEL", "refused") + '{"comm');
    assert.deepEqual(record.read(), [
      { command: "ADD", reason: "no-socket", count: 1 },
      { command: "DEL", reason: "refused", count: 1 },
    ]);
    await Deno.writeTextFile(path, 'and":"ADD","reason":"no-socket"}\n' + "garbage\n", {
      append: true,
    });
    assert.deepEqual(record.read(), [
      { command: "ADD", reason: "no-socket", count: 2 },
      { command: "DEL", reason: "refused", count: 1 },
      { command: "unknown", reason: "unknown", count: 1 },
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
