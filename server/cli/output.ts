/** What the commands print on stdout: JSON for machines, aligned tables for people. */

/** `--json` output: the value as indented JSON. */
export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** Rows (the first is the header) as columns two spaces apart; control characters in a cell show as `?`. */
export function formatTable(rows: string[][]): string {
  const clean = rows.map((row) => row.map((cell) => cell.replace(/[\u0000-\u001f\u007f]/g, '?')));
  const widths = clean[0].map((_, column) => Math.max(...clean.map((row) => row[column].length)));
  return clean
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
