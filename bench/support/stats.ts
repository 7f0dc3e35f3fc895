/** Latency summaries (nearest-rank percentiles) and a sequential timing loop. */

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Nearest-rank percentile of ascending samples. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function summarize(samplesMs: number[]): LatencySummary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const total = sorted.reduce((sum, value) => sum + value, 0);
  return {
    count: sorted.length,
    meanMs: round(total / sorted.length),
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    maxMs: round(sorted[sorted.length - 1]),
  };
}

/** Runs `operation(i)` for i in [0, count) one after another; resolves to each call's duration in ms and the total. */
export async function timeSequential(
  count: number,
  operation: (i: number) => Promise<unknown>,
): Promise<{ samplesMs: number[]; totalMs: number }> {
  const samplesMs: number[] = new Array(count);
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const before = process.hrtime.bigint();
    await operation(i);
    samplesMs[i] = Number(process.hrtime.bigint() - before) / 1e6;
  }
  return { samplesMs, totalMs: Number(process.hrtime.bigint() - started) / 1e6 };
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** A deterministic pseudo-random sequence (mulberry32), so every run looks up the same records. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
