/**
 * Progress on stderr for long work: samples/s, kept ratio, errors. On a TTY one line is redrawn
 * in place; otherwise (CI, logs) a plain line is printed every `intervalMs`. Machine-readable
 * output never goes here: stdout stays clean for piping.
 */
export interface ProgressCounts {
  samples: number;
  kept: number;
  errors: number;
  duplicates?: number;
  /** Optional total, to show a percentage. */
  total?: number;
}

export interface ProgressOptions {
  /** Label before the counters, e.g. "pass 1" or "run". */
  label: string;
  /** Where to write; default process.stderr. */
  stream?: NodeJS.WriteStream;
  /** Minimum ms between updates; default 250 on a TTY, 10,000 otherwise. */
  intervalMs?: number;
  /** Disable output entirely (--quiet). */
  quiet?: boolean;
  /** Word before the `kept` percentage; default "kept" (`embed` says "embedded"). */
  keptLabel?: string;
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly started = performance.now();
  private last = 0;
  private drawn = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
    this.intervalMs = opts.intervalMs ?? (this.tty ? 250 : 10_000);
  }

  /** Call as often as you like; it draws at most once per interval. */
  update(c: ProgressCounts, force = false): void {
    if (this.opts.quiet) return;
    const now = performance.now();
    if (!force && now - this.last < this.intervalMs) return;
    this.last = now;
    const line = this.format(c, now);
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  /** Final line; ends the in-place line on a TTY. */
  done(c: ProgressCounts): void {
    if (this.opts.quiet) return;
    const line = this.format(c, performance.now());
    this.stream.write(this.tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
    this.drawn = false;
  }

  /** Clears an in-place line before other stderr output. */
  clear(): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }

  private format(c: ProgressCounts, now: number): string {
    const secs = Math.max(1e-9, (now - this.started) / 1000);
    const rate = c.samples / secs;
    const pct = c.total ? ` (${((100 * c.samples) / c.total).toFixed(1)}%)` : '';
    const kept = c.samples > 0 ? ((100 * c.kept) / c.samples).toFixed(1) : '0.0';
    const dup = c.duplicates ? ` dup ${c.duplicates}` : '';
    return `dbprune ${this.opts.label}: ${fmtInt(c.samples)} samples${pct} ${fmtInt(Math.round(rate))}/s ${this.opts.keptLabel ?? 'kept'} ${kept}%${dup} errors ${fmtInt(c.errors)} ${secs.toFixed(1)}s`;
  }
}

export function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}
