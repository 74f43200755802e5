/**
 * @module
 * "Did you mean": the known name closest to a misspelt one (keys of configs, selection
 * elements and NADs, plugin types), or nothing when none is close enough to be a typo.
 */

/**
 * The known key closest to `key` (case-insensitive edit distance, a swap of two neighbours
 * counting as one edit), or undefined when none is close enough to be a typo.
 */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = Math.max(2, Math.floor(Math.max(lower.length, 4) / 4));
  if (best !== undefined && bestDistance <= limit && bestDistance < lower.length) return best;
  // A prefix or a plural: "binDirs", "namespace" (for namespaceIsolation is too far).
  return known.find((k) => {
    const l = k.toLowerCase();
    return lower.length >= 5 && (l.startsWith(lower) || lower.startsWith(l)) &&
      Math.abs(l.length - lower.length) <= 3;
  });
}

/** Optimal string alignment distance. */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => {
    const row = new Array<number>(cols).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j < cols; j++) d[0][j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[rows - 1][cols - 1];
}
