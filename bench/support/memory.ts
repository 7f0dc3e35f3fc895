/**
 * Memory of this process while work runs: RSS and V8 heap sampled every `intervalMs` (start, peak, end, and a short
 * timeline), plus the heap after a full garbage collection before and after, which tells retained memory (a leak) apart
 * from garbage not yet collected. RSS minus the V8 heap's reserved size (`heapTotal`) is the native part (SQLite,
 * drivers, buffers): V8 grows its reserve in steps up to its own limits, whatever the work, so a leak shows as retained
 * heap (JavaScript) or as native growth, not as the raw RSS steps.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const MiB = 2 ** 20;

export interface MemoryPoint {
  seconds: number;
  rssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  /** rss − heapTotal. */
  nativeMiB: number;
  /** Work done so far (e.g. sessions swept), as reported by the caller. */
  progress: number;
}

export interface MemoryReport {
  intervalMs: number;
  samples: number;
  start: MemoryPoint;
  peakRssMiB: number;
  peakHeapUsedMiB: number;
  end: MemoryPoint;
  /** Heap used after a full GC, before the work and after it. */
  heapAfterGcStartMiB: number;
  heapAfterGcEndMiB: number;
  peakHeapTotalMiB: number;
  peakNativeMiB: number;
  rssGrowthMiB: number;
  heapGrowthMiB: number;
  nativeGrowthMiB: number;
  /**
   * Native growth over the second half of the work (peak after the sample at half the final progress, minus that
   * sample): a fixed allocation early on (caches, thread stacks) does not count; memory that grows with the work does.
   */
  nativeGrowthSecondHalfMiB: number;
  retainedHeapMiB: number;
  /** About twenty evenly spaced samples, for the results file. */
  timeline: MemoryPoint[];
}

const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;

export async function measureMemory<T>(
  intervalMs: number,
  progress: () => number,
  work: () => Promise<T>,
): Promise<{ value: T; memory: MemoryReport }> {
  collectGarbage();
  const heapAfterGcStart = process.memoryUsage().heapUsed;
  const started = process.hrtime.bigint();
  const points: MemoryPoint[] = [];
  const sample = () => {
    const usage = process.memoryUsage();
    points.push({
      seconds: Math.round(Number(process.hrtime.bigint() - started) / 1e7) / 100,
      rssMiB: mib(usage.rss),
      heapUsedMiB: mib(usage.heapUsed),
      heapTotalMiB: mib(usage.heapTotal),
      nativeMiB: mib(usage.rss - usage.heapTotal),
      progress: progress(),
    });
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  let value: T;
  try {
    value = await work();
  } finally {
    clearInterval(timer);
  }
  sample();
  collectGarbage();
  const heapAfterGcEnd = process.memoryUsage().heapUsed;
  const start = points[0];
  const end = points[points.length - 1];
  const peakRssMiB = Math.max(...points.map((p) => p.rssMiB));
  const peakHeapUsedMiB = Math.max(...points.map((p) => p.heapUsedMiB));
  const peakHeapTotalMiB = Math.max(...points.map((p) => p.heapTotalMiB));
  const peakNativeMiB = Math.max(...points.map((p) => p.nativeMiB));
  const growth = (peak: number, from: number) => Math.round((peak - from) * 10) / 10;
  const halfway = Math.max(
    0,
    points.findIndex((p) => p.progress >= end.progress / 2),
  );
  const secondHalf = points.slice(halfway);
  const step = Math.max(1, Math.floor(points.length / 20));
  return {
    value,
    memory: {
      intervalMs,
      samples: points.length,
      start,
      peakRssMiB,
      peakHeapUsedMiB,
      end,
      heapAfterGcStartMiB: mib(heapAfterGcStart),
      heapAfterGcEndMiB: mib(heapAfterGcEnd),
      peakHeapTotalMiB,
      peakNativeMiB,
      rssGrowthMiB: growth(peakRssMiB, start.rssMiB),
      heapGrowthMiB: growth(peakHeapUsedMiB, start.heapUsedMiB),
      nativeGrowthMiB: growth(peakNativeMiB, start.nativeMiB),
      nativeGrowthSecondHalfMiB: growth(Math.max(...secondHalf.map((p) => p.nativeMiB)), secondHalf[0].nativeMiB),
      retainedHeapMiB: mib(heapAfterGcEnd - heapAfterGcStart),
      timeline: points.filter((_, i) => i % step === 0 || i === points.length - 1),
    },
  };
}
