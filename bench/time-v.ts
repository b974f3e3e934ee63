/**
 * Shared by the whole-process benchmarks: the report of `/usr/bin/time -v` parsed once, and the
 * median they all take over alternating runs.
 */

/** What `/usr/bin/time -v` reports about one process (CPU = user + system). */
export interface TimeV {
  wallS: number;
  userS: number;
  sysS: number;
  cpuS: number;
  maxRssMB: number;
}

/** Parses the `/usr/bin/time -v` report at the end of `stderr`. @throws when a field is missing. */
export function parseTimeV(stderr: string): TimeV {
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(stderr);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  const user = /User time \(seconds\): ([\d.]+)/.exec(stderr);
  const sys = /System time \(seconds\): ([\d.]+)/.exec(stderr);
  if (!wall || !rss || !user || !sys) throw new Error(`cannot parse /usr/bin/time output: ${stderr.slice(-1000)}`);
  const userS = Number(user[1]);
  const sysS = Number(sys[1]);
  return {
    wallS: Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]),
    userS,
    sysS,
    cpuS: userS + sysS,
    maxRssMB: Number(rss[1]) / 1024,
  };
}

/** The median (the upper one of an even count), as every benchmark here reports it. */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Medians (and the wall range) of alternating runs of one command over `n` samples. */
export function summarizeRuns(xs: readonly Pick<TimeV, 'wallS' | 'cpuS' | 'maxRssMB'>[], n: number): Record<string, unknown> {
  const wall = xs.map((x) => x.wallS);
  return {
    wallSMedian: median(wall),
    wallSRange: [Math.min(...wall), Math.max(...wall)],
    samplesPerSecMedian: Math.round(n / median(wall)),
    cpuSMedian: median(xs.map((x) => x.cpuS)),
    maxRssMBMedian: median(xs.map((x) => x.maxRssMB)),
  };
}
