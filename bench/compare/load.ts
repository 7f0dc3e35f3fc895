/**
 * The load generator: `concurrency` workers on loopback, each running one operation after another until the
 * deadline (an operation started before it finishes and counts). Bounded: never more requests in flight than workers.
 * A failed operation is counted as an error (never as a fast operation) and the worker pauses briefly.
 */
export interface LoadResult {
  operations: number;
  errors: number;
  /** Wall time from the first start to the last completion. */
  seconds: number;
  samplesMs: number[];
  firstError?: string;
}

export async function runLoad(
  concurrency: number,
  durationMs: number,
  operation: (worker: number) => Promise<unknown>,
): Promise<LoadResult> {
  const samplesMs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async (index: number) => {
    while (performance.now() < deadline) {
      const before = performance.now();
      try {
        await operation(index);
        samplesMs.push(performance.now() - before);
      } catch (error) {
        errors++;
        firstError ??= (error as Error).message;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, index) => worker(index)));
  return { operations: samplesMs.length, errors, seconds: (performance.now() - started) / 1000, samplesMs, firstError };
}
