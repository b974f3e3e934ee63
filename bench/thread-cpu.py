#!/usr/bin/env python3
"""Per-thread CPU of a command, and what its wall time would be on an idle 2-core machine.

On a shared machine wall times measure the scheduler; per-thread CPU time does not. This runs the
command, reads every thread's utime + stime from /proc/PID/task/*/stat every 10 ms, and cuts the run
into phases where a thread that used >= 0.3 CPU-s starts or ends (for `dbprune prune`: start-up,
pass 1 while the assign workers live, the plan, pass 2 while the Parquet encoder worker lives, the
end). Per phase it prints the main thread's CPU, the other threads' CPU (workers, V8's GC helpers,
libuv) and the critical-path estimate for an idle 2-core machine: max(main thread, all threads / 2)
— the main thread cannot go faster than its own CPU time, and two cores cannot do more than two
CPU-seconds a second. The sum over phases is a lower bound of the idle wall time (it ignores I/O
waits and scheduling), good for comparing two builds measured alternately in the same session.

Usage: python3 bench/thread-cpu.py node dist/src/cli/main.js prune --embeddings X.npy ... --out DIR
Prints one line per thread, one per phase, then `estimate S s; process cpu C s`.
"""
import os
import subprocess
import sys
import time

BIG_THREAD_CPU_S = 0.3


def snapshot(pid: int, tick: int) -> dict:
    snap = {}
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{tid}/stat') as f:
                st = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = st[st.rindex(')') + 2:].split()
        snap[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return snap


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
    pid = proc.pid
    tick = os.sysconf('SC_CLK_TCK')
    samples = []
    t0 = time.time()
    while proc.poll() is None:
        try:
            samples.append((time.time() - t0, snapshot(pid, tick)))
        except FileNotFoundError:
            break
        time.sleep(0.01)
    wall = time.time() - t0
    if proc.returncode != 0:
        sys.exit(f'command exited {proc.returncode}')
    first, last, cpu = {}, {}, {}
    for t, snap in samples:
        for tid, v in snap.items():
            first.setdefault(tid, t)
            last[tid] = t
            cpu[tid] = v
    print(f'wall {wall:.2f} s (this machine, now)')
    for tid in sorted(first):
        if cpu[tid] >= 0.05:
            role = 'main' if tid == pid else 'thread'
            print(f'  {role} {tid}: {first[tid]:.2f}-{last[tid]:.2f} s, {cpu[tid]:.2f} CPU-s')
    big = [t for t in first if cpu[t] >= BIG_THREAD_CPU_S and t != pid]
    cuts = sorted(set([0.0, wall] + [first[t] for t in big] + [last[t] for t in big]))

    def cpu_at(t: float, tid: int) -> float:
        v = 0.0
        for ts, snap in samples:
            if ts > t:
                break
            v = snap.get(tid, v)
        return v

    total = 0.0
    for a, b in zip(cuts, cuts[1:]):
        main_s = cpu_at(b, pid) - cpu_at(a, pid)
        other_s = sum(cpu_at(b, t) - cpu_at(a, t) for t in first if t != pid)
        estimate = max(main_s, (main_s + other_s) / 2)
        total += estimate
        if b - a >= 0.05:
            print(f'  phase {a:6.2f}-{b:6.2f} s: main {main_s:5.2f}, others {other_s:5.2f} CPU-s -> idle 2-core {estimate:5.2f} s')
    print(f'estimate {total:.2f} s; process cpu {sum(cpu.values()):.2f} s')


if __name__ == '__main__':
    main()
