/**
 * A process's own resource use, from /proc (Linux): CPU seconds (utime + stime of every thread, libuv's thread pool
 * included), resident memory now (VmRSS) and at its peak since start (VmHWM), and a sampler for the peak over a phase.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on every mainstream Linux build). */
const TICKS_PER_SECOND = 100;

/** CPU seconds the process has used so far (user + system), or NaN when it is gone or unreadable. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: the fields after it start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

function statusKiB(pid: number, key: 'VmRSS' | 'VmHWM'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

/** Resident set size now, MiB. */
export function rssMiB(pid: number): number {
  return mib(statusKiB(pid, 'VmRSS'));
}

/** Peak resident set size since the process started (the kernel's high-water mark), MiB. */
export function peakRssMiB(pid: number): number {
  return mib(statusKiB(pid, 'VmHWM'));
}

/** Samples VmRSS every `intervalMs` until stopped; resolves to the largest sample. */
export function sampleRss(pid: number, intervalMs = 200): { stop(): number } {
  let peak = rssMiB(pid);
  const timer = setInterval(() => {
    const now = rssMiB(pid);
    if (now > peak) peak = now;
  }, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const now = rssMiB(pid);
      return Number.isFinite(now) && now > peak ? now : peak;
    },
  };
}
