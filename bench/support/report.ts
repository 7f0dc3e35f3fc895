/** Output of a benchmark area: plain-text tables on stdout and one JSON file per area under bench/results/. */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

export type Cell = string | number | null | undefined;

/** A plain-text table: a header row, a rule, then one line per row; numbers are right-aligned. */
export function table(headers: string[], rows: Cell[][]): string {
  const text = rows.map((row) => row.map(formatCell));
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...text.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[], numeric: boolean[]) =>
    cells
      .map((cell, column) => (numeric[column] ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd();
  const numericColumns = headers.map(
    (_, column) => rows.length > 0 && rows.every((row) => typeof row[column] === 'number' || row[column] == null),
  );
  return [
    line(headers, numericColumns),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...text.map((row) => line(row, rows.length ? numericColumns : [])),
  ].join('\n');
}

function formatCell(value: Cell): string {
  if (value === null || value === undefined) return '-';
  if (typeof value !== 'number') return value;
  if (!Number.isFinite(value)) return '-';
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return Math.abs(value) >= 1000 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}

/** 100000 → "100k", 1000000 → "1M"; other numbers with thousands separators. */
export function formatCount(value: number): string {
  if (value >= 1_000_000 && value % 1_000_000 === 0) return `${value / 1_000_000}M`;
  if (value >= 1000 && value % 1000 === 0) return `${value / 1000}k`;
  return value.toLocaleString('en-US');
}

export function heading(title: string): string {
  return `\n${title}\n${'='.repeat(title.length)}`;
}

export interface TargetResult {
  target: string;
  value: string;
  status: 'PASS' | 'MISS' | 'NOT RUN';
}

export function targetLines(targets: TargetResult[]): string {
  return targets.map((t) => `${t.status.padEnd(7)} ${t.target}: ${t.value}`).join('\n');
}

/** Writes bench/results/<area>.json (through a temporary file, so a killed run never leaves half a file). */
export function writeResults(area: string, results: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${area}.json`);
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(temporary, file);
  return file;
}

/** Progress lines go to stderr, so stdout holds only the tables. */
export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}
