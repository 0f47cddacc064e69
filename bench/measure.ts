// Reads a process's CPU time and memory, and the machine's per-core busy time, from /proc.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** CPU time of a whole process (all threads), in clock ticks. */
export interface CpuTicks {
  utime: number;
  stime: number;
}

/** Busy and total jiffies of one core, from a `cpuN` line of /proc/stat. */
export interface CoreTicks {
  busy: number;
  total: number;
}

/** Parses /proc/<pid>/stat. The command name may hold spaces and ')' so fields are counted after the last ')'. */
export function parseStat(text: string): CpuTicks {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error('malformed /proc stat: no ")"');
  const fields = text.slice(close + 2).trim().split(/\s+/);
  // After ')' come field 3 (state) onward; utime and stime are fields 14 and 15.
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('malformed /proc stat: utime/stime');
  return { utime, stime };
}

/** Reads a `Key:   123 kB` line from /proc/<pid>/status or smaps_rollup; returns kB. */
export function parseKbField(text: string, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
  if (match === null) throw new Error(`no ${key} field`);
  return Number(match[1]);
}

/** Parses the per-core lines of /proc/stat; idle and iowait count as not busy. */
export function parseCoreTicks(text: string): CoreTicks[] {
  const cores: CoreTicks[] = [];
  for (const line of text.split('\n')) {
    const match = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (match === null) continue;
    const values = match[2].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest is already inside user)
    const total = values.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = values[3] + (values[4] ?? 0);
    cores[Number(match[1])] = { busy: total - idle, total };
  }
  return cores;
}

/** Fraction of each core that was busy between two /proc/stat readings (0..1). */
export function coreBusy(before: CoreTicks[], after: CoreTicks[]): number[] {
  return after.map((a, i) => {
    const b = before[i];
    const total = a.total - b.total;
    return total > 0 ? (a.busy - b.busy) / total : 0;
  });
}

/** Microseconds of CPU per request, from two stat readings of the same process. */
export function cpuUsPerRequest(before: CpuTicks, after: CpuTicks, requests: number, ticksPerSecond: number): number {
  if (requests <= 0) return 0;
  const ticks = after.utime + after.stime - before.utime - before.stime;
  return (ticks / ticksPerSecond) * 1e6 / requests;
}

let cachedTicks = 0;
/** USER_HZ; 100 on every Linux the benchmark targets, asked once from getconf in case it is not. */
/** The median of a series: the lower middle for an even count (so it is always one measured value). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)];
}

export function ticksPerSecond(): number {
  if (cachedTicks === 0) {
    try {
      cachedTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim()) || 100;
    } catch {
      cachedTicks = 100;
    }
  }
  return cachedTicks;
}

export function readCpu(pid: number): CpuTicks {
  return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

export function readCores(): CoreTicks[] {
  return parseCoreTicks(readFileSync('/proc/stat', 'utf8'));
}

/** Peak RSS (VmHWM) and current anonymous memory of a process, in MiB. */
export function readMemory(pid: number): { rssMb: number; anonMb: number } {
  const hwm = parseKbField(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmHWM');
  const anon = parseKbField(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Anonymous');
  return { rssMb: hwm / 1024, anonMb: anon / 1024 };
}
