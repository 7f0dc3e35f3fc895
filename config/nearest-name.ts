/**
 * The known names closest to a misspelt one, for "did you mean" hints: edit distance (insertions, deletions,
 * substitutions and swaps of neighbours each count one) within a small bound that grows with the name, so a short
 * name needs a near-exact match and an unrelated name gets no suggestion at all.
 */

/** Optimal string alignment distance between `a` and `b`. */
export function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const substitution = rows[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      rows[i][j] = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        rows[i][j] = Math.min(rows[i][j], rows[i - 2][j - 2] + 1);
    }
  }
  return rows[a.length][b.length];
}

/** Edits allowed between a name and a candidate of this length: 1 up to 7 characters, 2 from 8. */
export function allowedEdits(length: number): number {
  return length >= 8 ? 2 : 1;
}

/**
 * The candidates nearest to `name` (all of them at the smallest distance, in the given order) when that distance is
 * within allowedEdits of the candidate, else none. `key` maps both sides to what is compared (e.g. without `_`).
 */
export function nearestNames(
  name: string,
  candidates: readonly string[],
  key: (text: string) => string = (text) => text,
): string[] {
  const target = key(name);
  let best = Infinity;
  let nearest: string[] = [];
  for (const candidate of candidates) {
    const compared = key(candidate);
    const distance = editDistance(target, compared);
    if (distance > allowedEdits(compared.length) || distance > best) continue;
    if (distance < best) nearest = [];
    best = distance;
    nearest.push(candidate);
  }
  return nearest;
}
