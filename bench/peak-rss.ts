/**
 * Peak resident memory of this process, from the kernel's per-address-space high-water mark
 * (`VmHWM` in /proc/self/status). Not `process.resourceUsage().maxRSS`: getrusage keeps maxRSS
 * across execve, so a benchmark child spawned by a bigger parent would report the parent's peak.
 */
import { readFileSync } from 'node:fs';

export function peakRssMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('no VmHWM in /proc/self/status: peak RSS cannot be measured on this system');
  return Number(m[1]) / 1024;
}
