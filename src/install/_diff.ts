/**
 * @module
 * A small line diff for the installer's log: what changed in a config it rewrote.
 */

/**
 * Returns the lines of a diff from `before` to `after`: `-` removed, `+` added, and up to
 * `context` unchanged lines around each change (`  ` prefix); `...` marks skipped lines.
 * A missing old file (`before` undefined) shows every line as added.
 */
export function lineDiff(before: string | undefined, after: string, context = 2): string[] {
  const a = before === undefined ? [] : splitLines(before);
  const b = splitLines(after);
  if (a.length * b.length > 4_000_000) return ["(file replaced; too large to compare)"];
  // Longest common subsequence table, filled from the end.
  const n = a.length;
  const m = b.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops: { kind: " " | "-" | "+"; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ kind: " ", text: a[i] });
      i++;
      j++;
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.push({ kind: "-", text: a[i++] }); // removals first, as in unified diffs
    } else {
      ops.push({ kind: "+", text: b[j++] });
    }
  }
  const keep = ops.map((op) => op.kind !== " ");
  const show = ops.map((_, k) => {
    for (let d = -context; d <= context; d++) if (keep[k + d]) return true;
    return false;
  });
  const out: string[] = [];
  let skipped = false;
  ops.forEach((op, k) => {
    if (!show[k]) {
      if (!skipped) out.push("  ...");
      skipped = true;
      return;
    }
    skipped = false;
    out.push(`${op.kind} ${op.text}`);
  });
  return out;
}

function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}
