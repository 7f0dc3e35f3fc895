/** Benchmark scale: `BENCH_SCALE=full` runs the largest sizes; anything else but unset is refused by name. */
export type Scale = 'default' | 'full';

export function benchScale(): Scale {
  const value = process.env.BENCH_SCALE;
  if (value === undefined || value === '' || value === 'default') return 'default';
  if (value === 'full') return 'full';
  throw new Error(`BENCH_SCALE: expected "full" or unset, got "${value}"`);
}
